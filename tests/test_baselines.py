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
from helpers import RecordingAgent

import agents
import baselines
import baselines.delta_model
from activeuf_env.core.synthetic import SyntheticPoolConfig
from activeuf_env.runner.episode import play_episode

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
    pairs = agents.make("delta_model", chosen_model=8, rejected_model=7).select(obs)
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


# ---------------------------------------------------------------------------- delta_model by model family and size

ALPACA_EVAL_LIKE_NAMES = (
    "FuseChat-Gemma-2-9B-Instruct",
    "FuseChat-Llama-3.1-8B-Instruct",
    "FuseChat-Llama-3.2-1B-Instruct",
    "FuseChat-Llama-3.2-3B-Instruct",
    "Mixtral-8x7B-Instruct-v0.1_concise",
    "claude-2",
    "falcon-40b-instruct",
    "falcon-7b-instruct",
    "gemma-2b-it",
    "gemma-7b-it",
    "vicuna-13b-v1.5",
    "vicuna-7b-v1.3",
)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("gemma-7b-it", ("gemma-*-it", 7.0)),
        ("FuseChat-Llama-3.2-1B-Instruct", ("FuseChat-Llama-3.2-*-Instruct", 1.0)),
        ("Qwen3-0.6B", ("Qwen3-*", 0.6)),
        ("vicuna-13b-v1.5", ("vicuna-*-v1.5", 13.0)),
        ("fam3-xl", ("fam3-*", 5.0)),
        ("Mixtral-8x7B-Instruct-v0.1_concise", None),
        ("gpt-3.5-turbo-1106", None),
        ("phi-2", None),
    ],
)
def test_parse_model_size(name: str, parsed: tuple[str, float] | None) -> None:
    assert baselines.delta_model.parse_model_size(name) == parsed


def test_pick_delta_pair_takes_adjacent_middle_sizes_of_the_largest_family() -> None:
    pick = baselines.delta_model.pick_delta_pair
    assert pick(SyntheticPoolConfig().model_names()) == (3, 2)  # fam0-l vs fam0-m: equal families, lowest id
    # Every family of the AlpacaEval-like pool has two sizes: the largest ratio wins (falcon 40b / 7b = 5.7).
    assert pick(ALPACA_EVAL_LIKE_NAMES) == (6, 7)
    assert pick(ALPACA_EVAL_LIKE_NAMES[:4]) == (3, 2)  # FuseChat-Llama-3.2 3B vs 1B, the only family there
    assert pick(["a-1b", "a-2b", "b-1b", "b-2b"]) == (1, 0)  # equal ratios: the family of the lowest id
    assert pick(["q-0.5b", "q-1.5b", "q-3b", "q-7b", "q-14b", "x-1b", "x-2b"]) == (3, 2)  # 7b vs 3b
    with pytest.raises(ValueError, match="no model family with two sizes"):
        pick(["claude-2", "gemma-7b-it", "vicuna-13b-v1.5", "vicuna-7b-v1.3"])


def test_delta_model_resolves_names_from_the_reset_info() -> None:
    info = {"model_names": ALPACA_EVAL_LIKE_NAMES}
    agent = agents.make("delta_model", chosen_model="gemma-7b-it", rejected_model="gemma-2b-it")
    with pytest.raises(ValueError, match="needs the env's model names"):
        agent.select(make_obs(np.zeros((1, 2)), model_ids=np.array([[9, 8]])))
    agent.reset(seed=0, info=info)
    assert agent.model_pair == (9, 8)
    assert agent.select(make_obs(np.zeros((1, 3)), model_ids=np.array([[8, 1, 9]]))).tolist() == [[2, 0]]
    default = agents.make("delta_model")
    default.reset(seed=0, info=info)
    assert default.model_pair == (6, 7)
    with pytest.raises(ValueError, match="must name a model of the pool, got 'gemma-9b-it'"):
        agents.make("delta_model", chosen_model="gemma-9b-it", rejected_model="gemma-2b-it").reset(0, info)
    with pytest.raises(ValueError, match=r"must be a model id in \[0, 12\), got 12"):
        agents.make("delta_model", chosen_model=12, rejected_model=0).reset(0, info)


def test_delta_model_episode_uses_the_pools_family_pair(make_small_env) -> None:
    env = make_small_env(**agents.make("delta_model").env_kwargs())
    recorder = RecordingAgent(agents.make("delta_model"))
    steps = list(play_episode(env, recorder, seed=0))
    names = steps[0].info["model_names"]
    assert recorder.agent.model_pair == (names.index("fam0-l"), names.index("fam0-m"))
    collected = env.unwrapped.collected_pairs()
    pool = env.unwrapped.pool
    models = pool.model_ids[collected[:, 0], collected[:, 1]], pool.model_ids[collected[:, 0], collected[:, 2]]
    assert len(collected) and (models[0] == names.index("fam0-l")).all() and (models[1] == names.index("fam0-m")).all()
