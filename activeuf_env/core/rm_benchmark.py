"""The reward-model benchmark of the downstream evaluator, built like RewardBench 2 from true quality.

For each eval prompt one chosen and :data:`N_REJECTED` rejected responses in each of :data:`CATEGORIES`:
*focus* (a good response against clearly worse ones), *precise* (the best against the next best) and *same-skill*
(responses of models of similar skill, where model identity says nothing; chosen = the truly best of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activeuf_env.core.pool import ResponsePool

__all__ = ["CATEGORIES", "N_REJECTED", "Benchmark", "build_benchmark", "model_skill_quantiles"]

CATEGORIES: tuple[str, ...] = ("focus", "precise", "same_skill")
"""The benchmark's categories, in the order of :attr:`DownstreamScores.rm_accuracy`."""

N_REJECTED = 3
"""Rejected responses per benchmark item (RewardBench 2: one chosen against three rejected)."""


@dataclass(frozen=True)
class Benchmark:
    """RewardBench-2-style items: per category, response indices ``[n_eval, 1 + N_REJECTED]`` (column 0 chosen)
    and a mask of the eval prompts that have an item in that category."""

    items: dict[str, np.ndarray]
    included: dict[str, np.ndarray]


def model_skill_quantiles(*pools: ResponsePool) -> np.ndarray:
    """Each model's skill quantile in ``[0, 1]``: the rank of its mean true quality over the pools' valid responses.

    Args:
        *pools: pools sharing one model list (e.g. the train and eval pools of an instance).

    Returns:
        float64 ``[n_models]``: 0 for the weakest model, 1 for the strongest (ties broken by model id); models
        without a valid response get the quantile 0.5.

    Example:
        >>> pool = ResponsePool(np.zeros((1, 3, 1), np.float32), np.zeros((1, 3), np.float32),
        ...     np.array([[2.0, 0.0, 1.0]], np.float32), np.array([[0, 1, 2]]), np.ones((1, 3), bool),
        ...     ["a", "b", "c"], ["p"])
        >>> model_skill_quantiles(pool).tolist()
        [1.0, 0.0, 0.5]
    """
    n_models = max(pool.n_models for pool in pools)
    total = np.zeros(n_models)
    count = np.zeros(n_models)
    for pool in pools:
        ids = pool.model_ids[pool.valid]
        total += np.bincount(ids, weights=pool.true_quality[pool.valid].astype(np.float64), minlength=n_models)
        count += np.bincount(ids, minlength=n_models)
    present = count > 0
    quantile = np.full(n_models, 0.5)
    if present.sum() > 1:
        mean = total[present] / count[present]
        rank = np.argsort(np.argsort(mean, kind="stable"), kind="stable")
        quantile[present] = rank / (present.sum() - 1)
    return quantile


def _sample_among(candidates: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Per row, ``count`` indices drawn uniformly without replacement from the True entries of ``candidates``
    (cycling, i.e. repeating, when a row has fewer than ``count``); rows with none give index 0."""
    keys = np.where(candidates, rng.random(candidates.shape), np.inf)
    order = np.argsort(keys, axis=1, kind="stable")
    n_candidates = np.maximum(candidates.sum(axis=1), 1)
    columns = np.arange(count)[None, :] % n_candidates[:, None]
    return np.take_along_axis(order, columns, axis=1)


def build_benchmark(
    pool: ResponsePool,
    skill_quantile: np.ndarray,
    focus_top_fraction: float,
    focus_bottom_fraction: float,
    rng: np.random.Generator,
) -> Benchmark:
    """Draw the RewardBench-2-style items of every prompt of ``pool`` (vectorized over prompts).

    Args:
        pool: the held-out eval pool.
        skill_quantile: each model's skill quantile (:func:`model_skill_quantiles`).
        focus_top_fraction: *focus* draws its chosen response from this top fraction by true quality.
        focus_bottom_fraction: and its rejected ones from this bottom fraction (strictly worse than the chosen).
        rng: the generator of the draws.
    """
    valid = pool.valid
    quality = np.where(valid, pool.true_quality, -np.inf).astype(np.float64)
    n_valid = valid.sum(axis=1)
    by_quality = np.argsort(-quality, axis=1, kind="stable")  # best first, padded last
    rank = np.argsort(by_quality, axis=1, kind="stable")
    rows = np.arange(pool.n_prompts)
    items, included = {}, {}

    # (a) focus: chosen among the top fraction, rejected among the bottom fraction and strictly worse.
    n_top = np.maximum(np.ceil(focus_top_fraction * n_valid), 1)
    chosen = _sample_among(valid & (rank < n_top[:, None]), 1, rng)[:, 0]
    n_bottom = np.maximum(np.ceil(focus_bottom_fraction * n_valid), 1)
    worse = valid & (rank >= (n_valid - n_bottom)[:, None]) & (quality < quality[rows, chosen][:, None])
    items["focus"] = np.concatenate([chosen[:, None], _sample_among(worse, N_REJECTED, rng)], axis=1)
    included["focus"] = worse.any(axis=1)

    # (b) precise: the best against the next best that are strictly worse.
    best = by_quality[:, 0]
    below = valid & (quality < quality[rows, best][:, None])
    next_best = np.argsort(np.where(below, -quality, np.inf), axis=1, kind="stable")
    n_below = np.maximum(below.sum(axis=1), 1)
    columns = np.arange(N_REJECTED)[None, :] % n_below[:, None]
    items["precise"] = np.concatenate([best[:, None], np.take_along_axis(next_best, columns, axis=1)], axis=1)
    included["precise"] = below.any(axis=1)

    # (c) same-skill: a random window of 1 + N_REJECTED responses adjacent in model skill; chosen = truly best.
    window = 1 + N_REJECTED
    skill = np.where(valid, skill_quantile[pool.model_ids], np.inf)
    by_skill = np.argsort(skill, axis=1, kind="stable")
    start = np.floor(rng.random(pool.n_prompts) * np.maximum(n_valid - window + 1, 1)).astype(np.int64)
    group = np.take_along_axis(by_skill, np.minimum(start[:, None] + np.arange(window), pool.n_responses - 1), axis=1)
    group_quality = np.take_along_axis(quality, group, axis=1)
    order = np.argsort(-group_quality, axis=1, kind="stable")
    group = np.take_along_axis(group, order, axis=1)
    sorted_quality = np.take_along_axis(group_quality, order, axis=1)
    items["same_skill"] = group
    included["same_skill"] = (n_valid >= window) & (sorted_quality[:, 0] > sorted_quality[:, 1])
    return Benchmark(items=items, included=included)
