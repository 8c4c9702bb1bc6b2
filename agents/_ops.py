"""Vectorized array helpers shared by the agents: masked argmax, random tie-breaking, Thompson draws.

Every helper works on a whole batch ``[B, K]`` at once (no Python loop over prompts or responses). Masked-out
entries never win: they are replaced by ``-inf`` (or ``+inf``) before the reduction, never used in arithmetic.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "argmax_random_ties",
    "masked_argmax",
    "masked_argmin",
    "pair_indices",
    "sigmoid",
    "sigmoid_width",
    "thompson_argmax",
    "thompson_second",
    "uniform_choice",
]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, overflow-free for any finite or infinite input.

    Example:
        >>> sigmoid(np.array([-1e300, 0.0, 1e300])).tolist()
        [0.0, 0.5, 1.0]
    """
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def sigmoid_width(upper_i: np.ndarray, lower_i: np.ndarray, upper_j: np.ndarray, lower_j: np.ndarray) -> np.ndarray:
    """``sigmoid(U_i - L_j) - sigmoid(L_i - U_j)``: the width of the plausible range of ``P(i > j)``.

    Computed as ``(tanh((U_i - L_j)/2) - tanh((L_i - U_j)/2)) / 2`` (no overflow, never negative for
    ``U >= L``). Broadcasts over its arguments.
    """
    return 0.5 * (np.tanh(0.5 * (upper_i - lower_j)) - np.tanh(0.5 * (lower_i - upper_j)))


def masked_argmax(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise argmax over the entries where ``mask`` is true (the lowest index among exact ties).

    Rows without any true entry return 0; callers discard them.
    """
    return np.where(mask, x, -np.inf).argmax(axis=-1)


def masked_argmin(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise argmin over the entries where ``mask`` is true (the lowest index among exact ties)."""
    return np.where(mask, x, np.inf).argmin(axis=-1)


def uniform_choice(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row, uniform over the true entries of ``mask`` (0 for an all-false row).

    The row-wise argmax of i.i.d. uniform keys restricted to the mask is uniform over the mask.
    """
    keys = np.where(mask, rng.random(mask.shape), -1.0)
    return keys.argmax(axis=-1)


def argmax_random_ties(x: np.ndarray, mask: np.ndarray, rng: np.random.Generator, tol: float = 0.0) -> np.ndarray:
    """Row-wise argmax over ``mask``, uniform at random among entries within ``tol`` of the row's maximum.

    Args:
        x: float ``[..., K]``.
        mask: bool ``[..., K]``, the eligible entries.
        rng: the agent's generator (one ``random`` draw of ``x.shape``).
        tol: absolute tolerance; entries ``>= max - tol`` are tied.

    Returns:
        int ``[...]``; 0 for rows without an eligible entry.
    """
    masked = np.where(mask, x, -np.inf)
    best = masked.max(axis=-1, keepdims=True)
    return uniform_choice(mask & (masked >= best - tol), rng)


def thompson_argmax(
    mean: np.ndarray, spread: np.ndarray, valid: np.ndarray, beta: float, rng: np.random.Generator
) -> np.ndarray:
    """One Thompson draw per prompt: ``argmax_k mean_k + beta * z_k * spread_k`` with ``z_k ~ U(-1, 1)``."""
    z = rng.uniform(-1.0, 1.0, size=mean.shape)
    return masked_argmax(mean + beta * z * spread, valid)


def thompson_second(
    first: np.ndarray,
    mean: np.ndarray,
    spread: np.ndarray,
    valid: np.ndarray,
    beta: float,
    rng: np.random.Generator,
    max_tries: int,
) -> np.ndarray:
    """The second index of DTS/DRTS: fresh draws until one differs from ``first``, then uniform over the others.

    Try ``t`` is ``argmax_k mean_k + beta * z_tk * spread_k`` with fresh ``z_t ~ U(-1, 1)^K`` (pass ``-mean``
    for DRTS). The first try is drawn for every prompt; the remaining ``max_tries - 1`` tries are drawn in
    rounds of 2, 4, 8, ... tries at once (``[n_draws, n_failed, K]``), each round only for the prompts whose
    tries all collided so far, and the first non-colliding try wins; prompts where all tries collide get a
    uniform valid index other than ``first``. Prompts where ``first`` surely wins every draw
    (``mean_first - beta * spread_first >= max_{k != first} mean_k + beta * spread_k``, e.g. constant inputs or a
    clearly dominant response) skip the tries, which cannot succeed. This is the same distribution as redrawing
    one try at a time; the loop runs over rounds of tries (at most 5 for 30 tries), never over prompts.

    Args:
        first: int ``[B]``, the first index of each pair.
        mean: float ``[B, K]``, the (possibly negated) mean.
        spread: float ``[B, K]``, the half-width ``s``.
        valid: bool ``[B, K]``.
        beta: the multiplier of the spread.
        rng: the agent's generator.
        max_tries: the number of draws before the uniform fallback (>= 1).

    Returns:
        int ``[B]``, distinct from ``first`` on every row with at least two valid entries.
    """
    second = thompson_argmax(mean, spread, valid, beta, rng)
    collided = (second == first) & (valid.sum(axis=-1) >= 2)
    if not collided.any():
        return second
    # Prompts where `first` wins every draw surely (its lowest value is at least every other's highest) go
    # straight to the fallback: their tries cannot succeed, so skipping them leaves the distribution unchanged.
    width = beta * spread
    others = valid & (np.arange(valid.shape[-1]) != first[:, None])
    highest_other = np.where(others, mean + width, -np.inf).max(axis=-1)
    lowest_first = np.take_along_axis(mean - width, first[:, None], axis=-1)[:, 0]
    sure = collided & (lowest_first >= highest_other)
    failed = np.flatnonzero(collided & ~sure)
    tries_left, chunk = max_tries - 1, 2
    while failed.size and tries_left:  # at most ~log2(max_tries) rounds, each over all colliding prompts
        n_draws = min(chunk, tries_left)
        first_f, valid_f = first[failed], valid[failed]
        z = rng.uniform(-1.0, 1.0, size=(n_draws, failed.size, mean.shape[-1]))
        tries = masked_argmax(mean[failed] + beta * z * spread[failed], valid_f)  # [n_draws, n_failed]
        ok = tries != first_f
        success = ok.any(axis=0)
        second[failed[success]] = tries[ok.argmax(axis=0), np.arange(failed.size)][success]
        failed = failed[~success]
        tries_left -= n_draws
        chunk *= 2
    failed = np.union1d(failed, np.flatnonzero(sure))
    if failed.size:
        second[failed] = uniform_choice(others[failed], rng)
    return second


@lru_cache(maxsize=64)
def pair_indices(n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """The unordered pairs ``i < j`` of ``n_slots`` slots, row-major (``numpy.triu_indices(n_slots, 1)``).

    The arrays are cached and read-only.

    Example:
        >>> [a.tolist() for a in pair_indices(3)]
        [[0, 0, 1], [1, 2, 2]]
    """
    first, second = np.triu_indices(n_slots, 1)
    first.setflags(write=False)
    second.setflags(write=False)
    return first, second
