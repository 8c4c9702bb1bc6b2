"""Property-based tests (hypothesis) for every registered agent and baseline.

On random observations, including ties, constant inputs, K = 2, padded responses and prompts, and huge and tiny
values: the pairs are int64 ``[B, 2]``, in range, valid and distinct (``delta_model`` skips on purpose), inactive
prompts get ``(0, 0)``, the observation is left untouched, and the choice is a function of the seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_test_agent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agents

NAMES = agents.registered_names()
SKIPPING = {"delta_model", "learned"}  # delta_model skips prompts lacking one of its models; learned may skip any

# Value regimes: (strategy of one value, strategy of one non-negative spread).
_F32 = {"width": 32, "allow_nan": False, "allow_infinity": False}
REGIMES = {
    "normal": (st.floats(-10, 10, **_F32), st.floats(0, 3, **_F32)),
    "ties": (st.sampled_from([-1.0, 0.0, 1.0]), st.sampled_from([0.0, 0.5])),
    "huge": (st.floats(-(2.0**123), 2.0**123, **_F32), st.floats(0, 2.0**123, **_F32)),  # ~1e37
    "tiny": (
        st.floats(-(2.0**-100), 2.0**-100, allow_subnormal=True, **_F32),  # ~1e-30
        st.floats(0, 2.0**-100, allow_subnormal=True, **_F32),
    ),
    "extreme": (st.sampled_from([-3e38, -1e-45, 0.0, 1e-45, 3e38]), st.sampled_from([0.0, 1e-45, 1e37])),
    "clipped": (st.sampled_from([-1e4, 1e4, 0.0]), st.sampled_from([0.0, 2e4])),
}


@st.composite
def observations(draw: st.DrawFn, max_slots: int = 8) -> dict[str, np.ndarray]:
    n_prompts = draw(st.integers(1, 4))
    n_slots = draw(st.integers(2, max_slots))
    regime = draw(st.sampled_from(sorted(REGIMES)))
    values, spreads = REGIMES[regime]
    shape = (n_prompts, n_slots)
    if draw(st.booleans()) and regime != "extreme":  # constant inputs
        mean = np.full(shape, draw(values))
        std = np.full(shape, draw(spreads))
        judge = np.full(shape, draw(values))
    else:
        size = n_prompts * n_slots
        mean = np.array(draw(st.lists(values, min_size=size, max_size=size))).reshape(shape)
        std = np.array(draw(st.lists(spreads, min_size=size, max_size=size))).reshape(shape)
        judge = np.array(draw(st.lists(values, min_size=size, max_size=size))).reshape(shape)
    prompt_valid = np.array(draw(st.lists(st.booleans(), min_size=n_prompts, max_size=n_prompts)), np.int8)
    valid = np.zeros(shape, np.int8)
    model_ids = np.zeros(shape, np.int64)
    for row in range(n_prompts):
        ids = draw(
            st.permutations(
                draw(st.sampled_from([[8, 7], [8], [7], []]))
                + draw(st.lists(st.integers(9, 29), min_size=n_slots, max_size=n_slots, unique=True))
            )
        )[:n_slots]
        model_ids[row] = ids
        if prompt_valid[row]:
            mask = draw(st.lists(st.booleans(), min_size=n_slots, max_size=n_slots))
            forced = draw(st.lists(st.integers(0, n_slots - 1), min_size=2, max_size=2, unique=True))
            valid[row] = mask
            valid[row, forced] = 1
    garbage = draw(st.sampled_from([0.0, np.nan, 1e30]))  # what padded entries hold (the env writes 0)
    with np.errstate(over="ignore"):
        lower = (mean - std).astype(np.float32)
        upper = (mean + std).astype(np.float32)
    upper = np.clip(upper, None, np.finfo(np.float32).max)  # keep valid entries finite
    lower = np.clip(lower, np.finfo(np.float32).min, None)
    pad = valid == 0
    obs = {
        "mean": np.where(pad, garbage, mean).astype(np.float32),
        "lower": np.where(pad, garbage, lower).astype(np.float32),
        "upper": np.where(pad, garbage, upper).astype(np.float32),
        "valid": valid,
        "model_ids": np.where(pad, 0, model_ids),
        "prompt_valid": prompt_valid,
        "budget_remaining": np.array([0.5], np.float32),
        "judge_scores": np.where(pad, garbage, judge).astype(np.float32),
    }
    return obs


def check_pairs(name: str, obs: dict[str, np.ndarray], pairs: np.ndarray) -> None:
    n_prompts, n_slots = obs["valid"].shape
    assert pairs.dtype == np.int64
    assert pairs.shape == (n_prompts, 2)
    for row in range(n_prompts):
        i, j = (int(x) for x in pairs[row])
        if not obs["prompt_valid"][row]:
            assert (i, j) == (0, 0)
            continue
        if name in SKIPPING and i == j:
            assert (i, j) == (0, 0)
            continue
        assert 0 <= i < n_slots and 0 <= j < n_slots
        assert i != j
        assert obs["valid"][row, i] == 1 and obs["valid"][row, j] == 1


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", NAMES)
@PROPERTY_SETTINGS
@given(obs=observations(), seed=st.integers(0, 2**32 - 1))
def test_pairs_are_valid_distinct_and_seeded(name, obs, seed):
    before = {key: value.copy() for key, value in obs.items()}
    agent = make_test_agent(name)
    agent.reset(seed=seed)
    pairs = agent.select(obs)
    check_pairs(name, obs, pairs)
    for key, value in before.items():  # the observation is never modified
        np.testing.assert_array_equal(obs[key], value)
    again = make_test_agent(name)
    again.reset(seed=seed)
    np.testing.assert_array_equal(again.select(obs), pairs)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY_SETTINGS
@given(obs=observations(max_slots=3))
def test_small_prompts_including_k2(name, obs):
    agent = make_test_agent(name)
    agent.reset(seed=0)
    check_pairs(name, obs, agent.select(obs))


@pytest.mark.parametrize("name", NAMES)
def test_exactly_two_valid_responses_are_paired(name):
    n_slots = 6
    valid = np.zeros((n_slots - 1, n_slots), np.int8)
    for row in range(n_slots - 1):
        valid[row, [row, row + 1]] = 1
    mean = np.where(valid == 1, np.arange(n_slots, dtype=np.float32), 0).astype(np.float32)
    model_ids = np.where(valid == 1, np.tile([8, 7, 8, 7, 8, 7], (n_slots - 1, 1)), 0)
    obs = {
        "mean": mean,
        "lower": mean,
        "upper": mean,
        "valid": valid,
        "model_ids": model_ids,
        "prompt_valid": np.ones(n_slots - 1, np.int8),
        "judge_scores": mean,
    }
    agent = make_test_agent(name)
    agent.reset(seed=0)
    pairs = agent.select(obs)
    for row in range(n_slots - 1):
        if name in SKIPPING and pairs[row, 0] == pairs[row, 1]:
            continue
        assert sorted(pairs[row].tolist()) == [row, row + 1]


@pytest.mark.parametrize("name", NAMES)
def test_all_prompts_padded_and_empty_batch(name):
    agent = make_test_agent(name)
    agent.reset(seed=0)
    zeros = np.zeros((3, 5), np.float32)
    obs = {
        "mean": zeros,
        "lower": zeros,
        "upper": zeros,
        "valid": zeros.astype(np.int8),
        "judge_scores": zeros,
        "model_ids": zeros.astype(np.int64),
        "prompt_valid": np.zeros(3, np.int8),
    }
    np.testing.assert_array_equal(agent.select(obs), np.zeros((3, 2), np.int64))
    empty = {key: value[:0] for key, value in obs.items()}
    pairs = agent.select(empty)
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64


@pytest.mark.parametrize("name", NAMES)
def test_different_seeds_give_a_reproducible_stream(name):
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(64, 30)).astype(np.float32)
    std = rng.uniform(0.1, 1.0, size=(64, 30)).astype(np.float32)
    obs = {
        "mean": mean,
        "lower": mean - std,
        "upper": mean + std,
        "valid": np.ones((64, 30), np.int8),
        "model_ids": np.tile(np.arange(30), (64, 1)),
        "prompt_valid": np.ones(64, np.int8),
        "judge_scores": mean,
    }
    agent = make_test_agent(name)
    agent.reset(seed=1)
    first_run = [agent.select(obs) for _ in range(3)]
    agent.reset(seed=1)
    second_run = [agent.select(obs) for _ in range(3)]
    for a, b in zip(first_run, second_run, strict=True):
        np.testing.assert_array_equal(a, b)
