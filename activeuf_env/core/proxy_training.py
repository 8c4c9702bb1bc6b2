"""The optimisers of the downstream proxies: logistic (Bradley–Terry / DPO) fits, the feature scale, scale solving.

Kept apart from :mod:`activeuf_env.core.downstream`, which defines what the proxies are and how they are scored.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from activeuf_env.core.pool import ResponsePool

__all__ = ["OracleTargetWarning", "feature_scale", "fit_logistic", "solve_scale", "weighted_mean_features"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)

_SCALE_PROMPTS = 1024  # prompts read to estimate the feature scale (a memmapped pool is never read whole)


class OracleTargetWarning(UserWarning):
    """The oracle pair set cannot reach an oracle target on this pool (tiny or signal-free pools); the largest
    scale is used instead."""


_CHUNK_PROMPTS = 256  # prompts per chunk when averaging features
_CONVERGED = 1e-12  # relative size of a full-batch update below which θ is at its fixed point


def feature_scale(pool: ResponsePool) -> float:
    """Root-mean-square norm of a valid response's feature minus its prompt's mean (valid) feature.

    Estimated on the first ``_SCALE_PROMPTS`` prompts (in float32: a scale needs no more precision).
    """
    rows = slice(0, min(pool.n_prompts, _SCALE_PROMPTS))
    valid = pool.valid[rows]
    features = np.where(valid[..., None], np.asarray(pool.features[rows], dtype=np.float32), np.float32(0.0))
    mean = features.sum(axis=1, keepdims=True) / valid.sum(axis=1)[:, None, None].astype(np.float32)
    centred = np.where(valid[..., None], features - mean, np.float32(0.0))
    scale = float(np.sqrt(np.sum(centred * centred, dtype=np.float64) / valid.sum()))
    return scale if scale > 0 else 1.0


def fit_logistic(
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
    """Gradient descent from zero on ``mean −weight · log sigmoid(β θ·Δ) + decay/2 |θ|²``; returns float64 ``θ``.

    The gradient of one pair is ``−weight β sigmoid(−β θ·Δ) (Δ − push)`` (``weight`` ``[n]``, ``None`` = all ones;
    ``push`` ``[n, D]``, the likelihood-displacement term, ``None`` = zeros). Minibatch SGD runs ``epochs`` shuffled
    passes in minibatches of ``batch_size`` (order from ``rng``); ``full_batch`` takes the same number of steps, each
    on all pairs, and stops early once θ has reached its fixed point. With ``consistency_power`` ``p > 0`` (full
    batch only) each step's loss gradient is multiplied by ``ρ^p``, ``ρ`` the consistency of the per-pair gradients
    (:func:`_consistency`). The loop runs over steps only. ``device`` other than ``"cpu"`` runs the full-batch steps
    in float64 torch on that device (the minibatch loop, many tiny steps, always runs in numpy).

    Example:
        >>> delta = np.array([[1.0, 0.0], [1.0, 0.5]])
        >>> theta = fit_logistic(delta, 1.0, 2, 0.5, 1, np.random.default_rng(0))
        >>> bool(theta[0] > 0)
        True
    """
    n = len(delta)
    if full_batch:
        steps = epochs * -(-n // batch_size) if n else 0
        return _fit_full_batch(delta, beta, steps, lr, batch_size, weight, decay, push, consistency_power, device)
    theta = np.zeros(delta.shape[1])
    for _ in range(epochs if n else 0):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            batch = delta[rows]
            margin = beta * (batch @ theta)
            gain = 0.5 * (1.0 - np.tanh(0.5 * margin))  # sigmoid(−margin), overflow-free
            if weight is not None:
                gain = gain * weight[rows]
            step = gain @ batch if push is None else gain @ batch - gain @ push[rows]
            theta += lr * (beta * step / len(batch) - decay * theta)
    return theta


def _fit_full_batch(
    delta: np.ndarray,
    beta: float,
    steps: int,
    lr: float,
    batch_size: int,
    weight: np.ndarray | None,
    decay: float,
    push: np.ndarray | None,
    consistency_power: float,
    device: str | torch.device,
) -> np.ndarray:
    """The full-batch steps of :func:`fit_logistic` (the same number as minibatch SGD, each on every pair: no
    dependence on the order, no forgetting), in numpy on the CPU or in float64 torch on another ``device``."""
    n = len(delta)
    direction = delta if push is None else delta - push  # a pair's gradient is gain_i · direction_i
    weights = np.ones(n) if weight is None else np.asarray(weight, np.float64)
    arrays = (delta, direction, weights, np.einsum("ij,ij->i", direction, direction))
    if torch.device(device).type == "cpu":
        return _full_batch_steps(*arrays, beta, steps, lr, batch_size, decay, consistency_power)
    on_device = (torch.as_tensor(a, dtype=torch.float64, device=device) for a in arrays)
    return _full_batch_steps(*on_device, beta, steps, lr, batch_size, decay, consistency_power).cpu().numpy()


def _full_batch_steps(
    delta: Array,
    direction: Array,
    weights: Array,
    norms2: Array,
    beta: float,
    steps: int,
    lr: float,
    batch_size: int,
    decay: float,
    consistency_power: float,
) -> Array:
    """The loop of :func:`_fit_full_batch` on numpy arrays or torch tensors (the result is of the same kind).

    ``direction`` is ``Δ − push``, ``norms2`` its per-pair squared norms. A step reads the ``[n, D]`` arrays twice
    (the margins and the gradient); the consistency needs only per-pair scalars (see :func:`_consistency`), so its
    cost is O(n), not another pass over the pairs.
    """
    n = len(delta)
    if isinstance(delta, torch.Tensor):
        theta, tanh = torch.zeros(delta.shape[1], dtype=delta.dtype, device=delta.device), torch.tanh
    else:
        theta, tanh = np.zeros(delta.shape[1]), np.tanh
    for _ in range(steps):
        gain = 0.5 * (1.0 - tanh(0.5 * (beta * (delta @ theta)))) * weights  # sigmoid(−margin) · weight
        mean = (gain @ direction) / n
        level = 1.0
        if consistency_power:
            level = _consistency(float(mean @ mean), float((gain * gain) @ norms2), n, batch_size) ** consistency_power
        update = lr * (level * beta * mean - decay * theta)
        theta += update
        # Steps grow with n, so a large pair set would cost O(n²); once θ sits at its fixed point (to float
        # precision) further steps change nothing, and stopping keeps an evaluation O(n).
        if float(abs(update).max()) <= _CONVERGED * float(abs(theta).max()):
            break
    return theta


def _consistency(mean2: float, sum_squares: float, n: int, batch_size: int) -> float:
    """``ρ = |E g|² / (|E g|² + tr Cov(g) / batch_size)`` of the per-pair gradients ``g_i``, from ``mean2 = |ḡ|²``
    and ``sum_squares = Σ |g_i|²``.

    The share of signal in a minibatch-mean gradient of ``batch_size`` pairs drawn from the pair set: 1 when every
    pair pushes the same way, near 0 when the pairs disagree (small, partly mislabelled contrasts). ``|E g|²`` is
    estimated without the sample's own noise (``|ḡ|² − var / n``), so a few noisy pairs do not look consistent.
    Normalised optimisers (Adam, as in DPO practice) move far only along such agreeing directions. A pair set whose
    mean gradient at the reference is indistinguishable from its noise (``ρ = 0``) does not move the policy at all:
    the fit stops at ``θ = 0`` after one step. ``tr Cov = (Σ |g_i|² − n |ḡ|²) / (n − 1)`` needs only the per-pair
    squared norms (``g_i = gain_i d_i``, so ``|g_i|² = gain_i² |d_i|²``).
    """
    if n < 2:
        return 1.0
    var = max(sum_squares - n * mean2, 0.0) / (n - 1)
    signal = max(mean2 - var / n, 0.0)
    return signal / max(signal + var / batch_size, 1e-300)


def solve_scale(
    score_at: Callable[[float], float], target: float, name: str, low: float = 1e-3, high: float = 1e4
) -> float:
    """The scale ``k`` (geometric bisection in ``[low, high]``) at which ``score_at(k)`` first reaches ``target``.

    Assumes ``score_at`` rises with ``k`` (a proxy's score as its output is scaled up). When even ``high`` falls short
    (a pool whose features carry no quality signal the oracle pairs could teach), it warns, naming ``name``, the
    target and the score reached, and returns ``high``.
    """
    reached = score_at(high)
    if reached < target:
        warnings.warn(
            f"{name}={target} is out of reach on this pool: the oracle pair set scores {reached:.4f} even at scale "
            f"{high:g}; using that scale (set {name}=None to keep the proxy's own scale)",
            OracleTargetWarning,
            stacklevel=3,
        )
        return high
    for _ in range(40):
        mid = float(np.sqrt(low * high))
        if score_at(mid) >= target:
            high = mid
        else:
            low = mid
    return float(high)


def weighted_mean_features(
    pool: ResponsePool, log_weight: np.ndarray, scale: float, features: np.ndarray | None = None
) -> np.ndarray:
    """Per prompt, the mean feature under ``softmax(log_weight)`` over its responses, float64 ``[n_prompts, D]``.

    ``log_weight`` is ``[n_prompts, K]`` with ``-inf`` on padded responses; features are ``pool.features / scale``
    unless ``features`` (already scaled) is given. Prompts are read in chunks, so a memory-mapped pool is never
    loaded whole.
    """
    weights = np.exp(log_weight - log_weight.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    out = np.zeros((pool.n_prompts, pool.feature_dim))
    for start in range(0, pool.n_prompts, _CHUNK_PROMPTS):
        rows = slice(start, start + _CHUNK_PROMPTS)
        chunk = features[rows] if features is not None else np.asarray(pool.features[rows], np.float64) / scale
        out[rows] = np.einsum("nk,nkd->nd", weights[rows], np.where(pool.valid[rows, :, None], chunk, 0.0))
    return out
