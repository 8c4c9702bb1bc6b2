"""A frozen copy of the downstream proxies' full-batch optimiser as it was before the O(n) consistency (commit
88a41df), the "before" of ``bench_env.py``'s ``legacy`` implementation (with ``legacy_ensemble.py``: the episode as
it was when issue 13 was filed).

Only the full-batch steps changed, so only they are frozen (verbatim, inside a function of the package's signature);
the minibatch SGD, unchanged, is the package's. The old steps form every per-pair gradient ``[n, D]`` for the
consistency; the package's :func:`~activeuf_env.core.proxy_training.fit_logistic` gets the same quantity from
per-pair scalars, which changes the floats by rounding only (``tests/test_downstream.py`` checks the two agree to
1e-12). Not part of the package: nothing in ``activeuf_env`` imports it.
"""

from __future__ import annotations

import numpy as np
import torch

from activeuf_env.core.proxy_training import fit_logistic

__all__ = ["legacy_fit_logistic"]

_CONVERGED = 1e-12


def legacy_fit_logistic(
    delta: np.ndarray,
    beta: float,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    weight: np.ndarray | None = None,
    decay: float = 0.0,
    full_batch: bool = False,
    push: np.ndarray | None = None,
    consistency_power: float = 0.0,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """:func:`~activeuf_env.core.proxy_training.fit_logistic` with the full-batch steps of commit 88a41df (CPU only).

    Example:
        >>> delta = np.array([[1.0, 0.0], [1.0, 0.5]])
        >>> theta = legacy_fit_logistic(delta, 1.0, 2, 0.5, 1, np.random.default_rng(0), full_batch=True)
        >>> bool(theta[0] > 0)
        True
    """
    if not full_batch:
        return fit_logistic(delta, beta, epochs, lr, batch_size, rng, weight, decay, False, push, 0.0, device)
    if torch.device(device).type != "cpu":
        raise ValueError(f"the frozen full-batch steps ran on the CPU only, got device={device!r}")
    theta = np.zeros(delta.shape[1])
    n = len(delta)
    # The same number of steps as minibatch SGD, each on every pair: no dependence on the order, no forgetting.
    w = np.ones(n) if weight is None else weight
    for _ in range(epochs * -(-n // batch_size) if n else 0):
        margin = beta * (delta @ theta)
        gain = 0.5 * (1.0 - np.tanh(0.5 * margin)) * w
        step = gain @ delta if push is None else gain @ delta - gain @ push
        level = _consistency(gain, delta, push, step / n, batch_size) ** consistency_power if consistency_power else 1.0
        update = lr * (level * beta * step / n - decay * theta)
        theta += update
        # Steps grow with n, so a large pair set would cost O(n²); once θ sits at its fixed point (to float
        # precision) further steps change nothing, and stopping keeps an evaluation O(n).
        if np.max(np.abs(update)) <= _CONVERGED * np.max(np.abs(theta)):
            break
    return theta


def _consistency(
    gain: np.ndarray, delta: np.ndarray, push: np.ndarray | None, mean: np.ndarray, batch_size: int
) -> float:
    """``ρ = |E g|² / (|E g|² + tr Cov(g) / batch_size)`` of the per-pair gradients ``g_i = gain_i (Δ_i − push_i)``.

    The share of signal in a minibatch-mean gradient of ``batch_size`` pairs drawn from the pair set: 1 when every
    pair pushes the same way, near 0 when the pairs disagree (small, partly mislabelled contrasts). ``|E g|²`` is
    estimated without the sample's own noise (``|mean|² − var / n``), so a few noisy pairs do not look consistent.
    Normalised optimisers (Adam, as in DPO practice) move far only along such agreeing directions. A pair set whose
    mean gradient at the reference is indistinguishable from its noise (``ρ = 0``) does not move the policy at all:
    the fit stops at ``θ = 0`` after one step.
    """
    n = len(gain)
    if n < 2:
        return 1.0
    per_pair = gain[:, None] * (delta if push is None else delta - push)
    var = float(np.sum((per_pair - mean) ** 2)) / (n - 1)
    signal = max(float(mean @ mean) - var / n, 0.0)
    return signal / max(signal + var / batch_size, 1e-300)
