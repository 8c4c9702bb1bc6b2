"""Exactness of the static baselines (``random``, ``ultrafeedback``, ``maxmin``, ``delta_model``).

Randomized rules are checked against their exact distributions, enumerated here by brute force (all ordered
pairs, all 4-subsets), with a fixed seed and a statistical tolerance; deterministic rules against direct
per-prompt references.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import agents
import baselines

N_DRAWS = 60_000


def make_obs(
    judge: np.ndarray,
    valid: np.ndarray | None = None,
    model_ids: np.ndarray | None = None,
    prompt_valid: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    judge = np.asarray(judge, np.float32)
    valid = np.ones(judge.shape, np.int8) if valid is None else np.asarray(valid, np.int8)
    prompt_valid = np.ones(judge.shape[0], np.int8) if prompt_valid is None else np.asarray(prompt_valid, np.int8)
    valid = valid * prompt_valid[:, None]
    model_ids = np.tile(np.arange(judge.shape[1]), (judge.shape[0], 1)) if model_ids is None else model_ids
    zeros = np.zeros(judge.shape, np.float32)
    return {
        "mean": zeros,
        "lower": zeros,
        "upper": zeros,
        "valid": valid,
        "model_ids": np.where(valid == 1, model_ids, 0).astype(np.int64),
        "prompt_valid": prompt_valid,
        "budget_remaining": np.ones(1, np.float32),
        "judge_scores": np.where(valid == 1, judge, 0).astype(np.float32),
    }


def draw_pairs(name: str, obs_row: dict[str, np.ndarray], n: int = N_DRAWS, seed: int = 0) -> np.ndarray:
    """``n`` i.i.d. pairs for one prompt: the prompt repeated ``n`` times in one batch."""
    obs = {
        key: (np.repeat(value, n, axis=0) if value.ndim and key != "budget_remaining" else value)
        for key, value in obs_row.items()
    }
    agent = agents.make(name)
    agent.reset(seed=seed)
    return agent.select(obs)


def assert_distribution(pairs: np.ndarray, expected: dict[tuple[int, int], float]) -> None:
    n = len(pairs)
    counts: dict[tuple[int, int], int] = {}
    for pair in map(tuple, pairs.tolist()):
        counts[pair] = counts.get(pair, 0) + 1
    assert set(counts) <= {pair for pair, p in expected.items() if p > 0}, set(counts) - set(expected)
    for pair, p in expected.items():
        observed = counts.get(pair, 0) / n
        assert abs(observed - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-3, (pair, observed, p)


def test_baselines_package_exports():
    assert {
        cls.name for cls in (baselines.RandomPair, baselines.UltraFeedback, baselines.MaxMin, baselines.DeltaModel)
    } == {"random", "ultrafeedback", "maxmin", "delta_model"}


def test_random_is_uniform_over_ordered_valid_pairs():
    valid = np.array([[1, 0, 1, 1, 0, 1]])
    pairs = draw_pairs("random", make_obs(np.zeros((1, 6)), valid))
    slots = [k for k in range(6) if valid[0, k]]
    ordered = list(itertools.permutations(slots, 2))
    assert_distribution(pairs, {pair: 1 / len(ordered) for pair in ordered})


def ultrafeedback_reference(scores: list[float], valid: list[int]) -> dict[tuple[int, int], float]:
    """Exact ``P(i, j)``: uniform 4-subset S of the valid slots, i uniform over S's best, j uniform over S - {i}."""
    slots = [k for k, v in enumerate(valid) if v]
    size = min(4, len(slots))
    subsets = list(itertools.combinations(slots, size))
    probs: dict[tuple[int, int], float] = {}
    for subset in subsets:
        top = max(scores[k] for k in subset)
        best = [k for k in subset if scores[k] == top]
        for i in best:
            for j in subset:
                if j != i:
                    p = 1 / len(subsets) / len(best) / (size - 1)
                    probs[i, j] = probs.get((i, j), 0.0) + p
    return probs


@pytest.mark.parametrize(
    ("scores", "valid"),
    [
        ([3.0, 1.0, 4.0, 1.5, 5.0, 2.0, 0.5], [1, 1, 1, 1, 1, 1, 0]),  # distinct scores, one padded slot
        ([2.0, 2.0, 4.0, 2.0, 1.0, 4.0], [1, 1, 1, 1, 1, 1]),  # ties in the best of the sample
        ([1.0, 3.0, 2.0, 9.0], [1, 1, 1, 0]),  # fewer than 4 valid: the sample is all of them
        ([1.0, 3.0], [1, 1]),
    ],
)
def test_ultrafeedback_distribution(scores, valid):
    pairs = draw_pairs("ultrafeedback", make_obs(np.array([scores]), np.array([valid])))
    assert_distribution(pairs, ultrafeedback_reference(scores, valid))


def maxmin_reference(scores: list[float], valid: list[int]) -> dict[tuple[int, int], float]:
    slots = [k for k, v in enumerate(valid) if v]
    top = max(scores[k] for k in slots)
    firsts = [k for k in slots if scores[k] == top]
    probs: dict[tuple[int, int], float] = {}
    for i in firsts:
        others = [k for k in slots if k != i]
        low = min(scores[k] for k in others)
        seconds = [k for k in others if scores[k] == low]
        for j in seconds:
            probs[i, j] = 1 / len(firsts) / len(seconds)
    return probs


@pytest.mark.parametrize(
    ("scores", "valid"),
    [
        ([3.0, 1.0, 4.0, 1.5, 5.0, 2.0, 9.0], [1, 1, 1, 1, 1, 1, 0]),
        ([2.0, 1.0, 4.0, 1.0, 1.0, 4.0], [1, 1, 1, 1, 1, 1]),  # ties at both ends
        ([2.5, 2.5, 2.5, 2.5], [1, 1, 1, 1]),  # all equal: i uniform, j uniform over the others
    ],
)
def test_maxmin_is_best_vs_worst_with_random_ties(scores, valid):
    pairs = draw_pairs("maxmin", make_obs(np.array([scores]), np.array([valid])))
    assert_distribution(pairs, maxmin_reference(scores, valid))


def test_maxmin_brute_force_on_random_batches():
    rng = np.random.default_rng(0)
    judge = rng.uniform(1, 5, size=(64, 30))
    valid = (rng.random((64, 30)) < 0.7).astype(np.int8)
    valid[:, :2] = 1
    obs = make_obs(judge, valid)
    agent = agents.make("maxmin")
    agent.reset(seed=0)
    pairs = agent.select(obs)
    for row in range(64):
        scores = {k: float(obs["judge_scores"][row, k]) for k in range(30) if valid[row, k]}
        assert pairs[row, 0] == max(scores, key=scores.get)
        assert pairs[row, 1] == min(scores, key=scores.get)


def test_delta_model_locates_models_through_model_ids():
    rng = np.random.default_rng(1)
    n_prompts, n_slots = 32, 10
    others = np.array([m for m in range(30) if m not in (7, 8)])
    model_ids = np.array([rng.permutation(30)[:n_slots] for _ in range(n_prompts)])
    for row in range(n_prompts // 2):  # half the prompts surely hold both defaults, once each
        model_ids[row] = rng.permutation(np.concatenate([[7, 8], rng.choice(others, n_slots - 2, replace=False)]))
    valid = np.ones((n_prompts, n_slots), np.int8)
    valid[5, list(model_ids[5]).index(7)] = 0  # model 7's response of prompt 5 is padding
    obs = make_obs(np.zeros((n_prompts, n_slots)), valid, model_ids)
    pairs = agents.make("delta_model").select(obs)
    for row in range(n_prompts):
        ids = [int(obs["model_ids"][row, k]) if valid[row, k] else None for k in range(n_slots)]
        if 8 in ids and 7 in ids:
            assert pairs[row].tolist() == [ids.index(8), ids.index(7)]
        else:
            assert pairs[row].tolist() == [0, 0]
    assert pairs[5].tolist() == [0, 0]


def test_delta_model_custom_pair_first_slot_and_inactive_prompts():
    model_ids = np.array([[4, 2, 4, 9], [2, 4, 1, 1], [2, 4, 0, 0]])
    obs = make_obs(np.zeros((3, 4)), model_ids=model_ids, prompt_valid=np.array([1, 1, 0]))
    agent = agents.make("delta_model", chosen_model=4, rejected_model=2)
    assert agent.select(obs).tolist() == [[0, 1], [1, 0], [0, 0]]
    # The reversed pair labels the smaller model chosen: allowed, the user asked for it.
    assert agents.make("delta_model", chosen_model=2, rejected_model=4).select(obs).tolist() == [[1, 0], [0, 1], [0, 0]]
