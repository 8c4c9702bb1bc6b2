"""Benchmark metrics: regret, cumulative regret, labels-to-match, fractions of the budget, bootstrap CIs.

Regret is ``S* − score``, the gap between the downstream score of the pairs collected so far and the score of the
evaluator trained on oracle pairs; cumulative regret weights each round's regret by the labels spent in that round,
so an agent that gets good early is rewarded for it. All functions are pure and vectorized; the only randomness
(:func:`bootstrap_ci`) comes from the generator passed in. :func:`mean_ci` is the one bootstrap setting of the
package (:data:`BOOTSTRAP_RESAMPLES` resamples from a generator seeded with :data:`BOOTSTRAP_SEED`), used by both
the summary and the plots, so ``summary.md`` and ``final_scores.png`` show the same intervals for the same table.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

from activeuf_env._validation import check_int, check_number

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "NEVER",
    "REFERENCE_AGENT",
    "bootstrap_ci",
    "compute_regret",
    "cumulative_regret",
    "episode_cumulative_regret",
    "format_fraction",
    "labels_to_match",
    "mean_ci",
]

NEVER = -1
"""What :func:`labels_to_match` returns when a curve never reaches its target (an int, never None or NaN)."""

REFERENCE_AGENT = "random"
"""The agent whose full-budget mean score is the labels-to-match target (and that the plots draw in black)."""

BOOTSTRAP_RESAMPLES = 10_000
"""Bootstrap resamples of every confidence interval the benchmark reports (summary and plots alike)."""

BOOTSTRAP_SEED = 0
"""Seed of the bootstrap's generator: the same table always gives the same intervals."""

_BOOTSTRAP_CHUNK = 2**22  # resampled values held in memory at once


def _finite_1d(name: str, values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} must be finite, got {array[~np.isfinite(array)][0]} at index {int(np.argmax(~np.isfinite(array)))}"
        )
    return array


def compute_regret(reference_score: float, scores: ArrayLike) -> np.ndarray:
    """Regret of downstream scores against an instance's reference score: ``S* − score``.

    Args:
        reference_score: ``S*``, the score of the evaluator trained on oracle pairs.
        scores: one score or a curve of scores.

    Returns:
        float64 array of the shape of ``scores`` (0-d for a scalar; ``float(...)`` it for a plain number).

    Raises:
        ValueError: when the reference score or a score is not finite.

    Example:
        >>> compute_regret(0.5, [0.25, 0.5]).tolist()
        [0.25, 0.0]
        >>> float(compute_regret(0.5, 0.125))
        0.375
    """
    reference = check_number("reference_score", reference_score)
    array = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"scores must be finite, got {array[~np.isfinite(array)].ravel()[0]}")
    return reference - array


def cumulative_regret(regret: ArrayLike, labels_per_round: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative regret as a curve against cumulative labels: ``Σ_{rounds ≤ t} regret_t × labels_t``.

    Args:
        regret: per-round regret ``[T]`` (the regret after round ``t``'s labels were added).
        labels_per_round: labels spent in each round ``[T]`` (non-negative).

    Returns:
        ``(labels, cumulative)``, both float64 ``[T]``: cumulative labels after each round, and the cumulative
        regret at that point (plot ``cumulative`` against ``labels``).

    Raises:
        ValueError: for different lengths, non-finite values or negative label counts.

    Example:
        >>> labels, cum = cumulative_regret([0.5, 0.25, 0.0], [64, 64, 32])
        >>> labels.tolist(), cum.tolist()
        ([64.0, 128.0, 160.0], [32.0, 48.0, 48.0])
    """
    regret = _finite_1d("regret", regret)
    spent = _finite_1d("labels_per_round", labels_per_round)
    if regret.shape != spent.shape:
        raise ValueError(f"regret and labels_per_round must have the same length, got {len(regret)} and {len(spent)}")
    if np.any(spent < 0):
        raise ValueError(f"labels_per_round must be non-negative, got {spent[spent < 0][0]}")
    return np.cumsum(spent), np.cumsum(regret * spent)


def episode_cumulative_regret(regret: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Cumulative regret along one episode, from the regret and the cumulative labels at each point.

    The labels spent in a round are the increase of ``labels`` (the first point, usually the reset with 0 labels,
    spends its own count), then :func:`cumulative_regret` sums ``regret × spent``.

    Args:
        regret: the regret at each point of the episode ``[T]``.
        labels: the cumulative labels at each point ``[T]`` (non-decreasing).

    Returns:
        float64 ``[T]``: the cumulative regret at each point.

    Example:
        >>> episode_cumulative_regret([0.5, 0.5, 0.25, 0.0], [0, 64, 128, 160]).tolist()
        [0.0, 32.0, 48.0, 48.0]
    """
    spent = np.diff(np.asarray(labels), prepend=0)
    return cumulative_regret(regret, spent)[1]


def labels_to_match(labels: ArrayLike, scores: ArrayLike, target: float) -> int:
    """The fewest labels at which a score curve reaches ``target`` (``score >= target``).

    Args:
        labels: cumulative labels at each point of the curve, non-decreasing (include 0 for the initial score).
        scores: the score at each point.
        target: the score to reach, e.g. Random's full-budget score.

    Returns:
        The label count of the first point with ``score >= target``, or :data:`NEVER` (``-1``) when the curve
        never reaches it. Report it as a fraction of the full budget with :func:`format_fraction`.

    Raises:
        ValueError: for different lengths, an empty curve, non-finite values or decreasing labels.

    Example:
        >>> labels_to_match([0, 64, 128, 192], [0.1, 0.3, 0.5, 0.4], target=0.45)
        128
        >>> labels_to_match([0, 64], [0.1, 0.3], target=0.45)
        -1
    """
    labels = _finite_1d("labels", labels)
    scores = _finite_1d("scores", scores)
    if labels.shape != scores.shape or not len(labels):
        raise ValueError(f"labels and scores must be non-empty and of equal length, got {len(labels)}, {len(scores)}")
    if np.any(np.diff(labels) < 0):
        raise ValueError(
            f"labels must be non-decreasing, got {labels[1:][np.diff(labels) < 0][0]} after a larger value"
        )
    target = check_number("target", target)
    reached = scores >= target
    return int(labels[np.argmax(reached)]) if reached.any() else NEVER


def format_fraction(x: float, max_denominator: int = 12) -> str:
    """Write a fraction of the budget as the nearest simple fraction, e.g. ``0.1667`` → ``"1/6"``.

    The nearest fraction with denominator at most ``max_denominator`` (``Fraction.limit_denominator``); whole
    numbers are written without a denominator (``"0"``, ``"1"``).

    Args:
        x: a finite number (typically ``labels_to_match(...) / budget``).
        max_denominator: the largest denominator allowed (>= 1).

    Returns:
        ``"p/q"`` or ``"p"``, with a leading ``-`` for negative values.

    Raises:
        ValueError: for a non-finite ``x`` or ``max_denominator < 1``.

    Example:
        >>> format_fraction(0.1667), format_fraction(0.5), format_fraction(1.0), format_fraction(0.3)
        ('1/6', '1/2', '1', '3/10')
    """
    value = check_number("x", x)
    denominator = check_int("max_denominator", max_denominator, low=1)
    fraction = Fraction(value).limit_denominator(denominator)
    return str(fraction.numerator) if fraction.denominator == 1 else f"{fraction.numerator}/{fraction.denominator}"


def bootstrap_ci(
    values: ArrayLike, rng: np.random.Generator, n_resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Percentile-bootstrap confidence interval of the mean.

    Args:
        values: one value per independent run (e.g. a final score per seed), ``[n]`` with ``n >= 1``.
        rng: the generator that draws the resamples.
        n_resamples: number of bootstrap resamples.
        confidence: coverage of the interval, in (0, 1).

    Returns:
        ``(mean, low, high)`` as plain floats; the interval is the ``(1 ± confidence) / 2`` quantiles of the
        resampled means (a single value gives a zero-width interval).

    Raises:
        ValueError: for empty or non-finite values, ``n_resamples < 1`` or ``confidence`` outside (0, 1).

    Example:
        >>> mean, low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0], np.random.default_rng(0), n_resamples=2000)
        >>> mean, bool(1.0 <= low < mean < high <= 4.0)
        (2.5, True)
    """
    array = _finite_1d("values", values)
    if not len(array):
        raise ValueError("values must hold at least one value, got an empty array")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    n_resamples = check_int("n_resamples", n_resamples, low=1)
    confidence = check_number("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    n = len(array)
    per_chunk = max(1, _BOOTSTRAP_CHUNK // n)
    means = np.concatenate(
        [
            array[rng.integers(0, n, size=(min(per_chunk, n_resamples - start), n))].mean(axis=1)
            for start in range(0, n_resamples, per_chunk)
        ]
    )
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(array.mean()), float(low), float(high)


def mean_ci(values: ArrayLike) -> tuple[float, float, float]:
    """The benchmark's confidence interval of a mean: :func:`bootstrap_ci` with the package's one setting.

    :data:`BOOTSTRAP_RESAMPLES` resamples, 95% coverage, a fresh generator seeded with :data:`BOOTSTRAP_SEED` (so the
    result depends on ``values`` alone).

    Example:
        >>> mean_ci([1.0, 2.0, 3.0, 4.0]) == mean_ci([1.0, 2.0, 3.0, 4.0])
        True
    """
    return bootstrap_ci(values, np.random.default_rng(BOOTSTRAP_SEED), n_resamples=BOOTSTRAP_RESAMPLES)
