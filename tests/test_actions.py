"""Bad actions raise ValueError naming the prompt and value, and leave the environment exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from helpers import random_pairs
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from activeuf_env import ActiveUFEnv, ResponsePool
from activeuf_env.envs.actions import validate_pairs


def _good_action(env: ActiveUFEnv, obs: dict[str, np.ndarray]) -> np.ndarray:
    return random_pairs(obs, np.random.default_rng(0))


BAD_ACTIONS = {
    "wrong shape": (lambda good: good[:5], r"shape \(32,\) or \(16, 2\), got \(5, 2\)"),
    "flat wrong length": (lambda good: good.reshape(-1)[:-1], r"got \(31,\)"),
    "out of range": (lambda good: _set(good, 3, 1, 30), r"batch row 3 \(prompt 'syn\d+'\) has index 30"),
    "negative": (lambda good: _set(good, 0, 0, -1), r"batch row 0 \(prompt 'syn\d+'\) has index -1"),
    "float": (lambda good: good.astype(np.float64), r"integer response indices, got dtype float64"),
    "nan": (lambda good: _set(good.astype(np.float64), 2, 1, np.nan), r"value np\.float64\(nan\) at batch row 2"),
    "bool": (lambda good: good.astype(bool), r"dtype bool"),
    "string": (lambda good: good.astype(str), r"integer response indices"),
    # The offending entry is named, wherever it is (not "value 0 at batch row 0").
    "None in a list": (lambda good: _listed(good, 2, 1, None), r"value None at batch row 2 \(prompt 'syn\d+'\)"),
    "huge int in a list": (lambda good: _listed(good, 2, 0, 2**70), rf"value {2**70} at batch row 2"),
    "bool in an int list": (lambda good: _listed(good, 4, 1, True), r"value True at batch row 4"),
    "uint64 max": (lambda good: _set(good.astype(np.uint64), 1, 0, 2**64 - 1), rf"batch row 1 .* index {2**64 - 1}"),
    "timedelta64": (lambda good: good.astype("timedelta64[s]"), r"got dtype timedelta64\[s\]"),
    "masked entry": (lambda good: np.ma.array(good, mask=_mask(good, 3, 0)), r"masked entry at batch row 3"),
}


def _listed(array: np.ndarray, row: int, col: int, value: object) -> list[list[object]]:
    out: list[list[object]] = array.tolist()
    out[row][col] = value
    return out


def _mask(array: np.ndarray, row: int, col: int) -> np.ndarray:
    mask = np.zeros(array.shape, dtype=bool)
    mask[row, col] = True
    return mask


def _set(array: np.ndarray, row: int, col: int, value: float) -> np.ndarray:
    out = array.copy()
    out[row, col] = value
    return out


@pytest.mark.parametrize("case", sorted(BAD_ACTIONS))
def test_bad_action_raises_and_changes_nothing(make_small_env, case: str) -> None:
    corrupt, message = BAD_ACTIONS[case]
    env, reference = make_small_env(), make_small_env()
    obs, _ = env.reset(seed=5)
    reference.reset(seed=5)
    good = _good_action(env, obs)
    env.step(good)
    obs_after_first, *_ = reference.step(good)
    good = _good_action(env, obs_after_first)

    with pytest.raises(ValueError, match=message):
        env.step(corrupt(good))

    assert data_equivalence(env.step(good), reference.step(good), exact=True)
    np.testing.assert_array_equal(env.unwrapped.collected_pairs(), reference.unwrapped.collected_pairs())


def _padded_pool() -> ResponsePool:
    valid = np.ones((6, 4), dtype=bool)
    valid[:, 3] = False
    return ResponsePool(
        features=np.random.default_rng(0).normal(size=(6, 4, 3)).astype(np.float32),
        judge_scores=np.arange(24, dtype=np.float32).reshape(6, 4),
        true_quality=np.arange(24, dtype=np.float32).reshape(6, 4),
        model_ids=np.tile(np.arange(4), (6, 1)),
        valid=valid,
        model_names=["a", "b", "c", "d"],
        prompt_ids=[f"q{i}" for i in range(6)],
    )


def test_padded_response_is_rejected_with_prompt_id() -> None:
    env = ActiveUFEnv(_padded_pool(), batch_size=2, eval_size=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"batch row 1 \(prompt 'q\d'\) picks response 3, which is padding"):
        env.step(np.array([[0, 1], [3, 0]]))
    _obs, *_ = env.step(np.array([[0, 1], [2, 0]]))
    assert env.collected_pairs().shape == (2, 4)


def test_skip_on_padded_index_is_allowed() -> None:
    env = ActiveUFEnv(_padded_pool(), batch_size=2, eval_size=2)
    env.reset(seed=0)
    *_, info = env.step(np.array([[3, 3], [1, 1]]))
    assert info["labels"] == 0 and info["skipped"] == 2


@settings(max_examples=150, deadline=None)
@given(
    action=hnp.arrays(
        dtype=st.sampled_from([np.int64, np.int32, np.float64]),
        shape=st.sampled_from([(8,), (4, 2), (3, 2), (8, 1)]),
        elements=st.integers(-3, 6),
    )
)
def test_validate_pairs_accepts_exactly_the_legal_actions(action: np.ndarray) -> None:
    pool = _padded_pool()
    prompts = np.array([0, 1, 2, -1])
    legal_shape = action.shape in ((8,), (4, 2))
    pairs = action.reshape(4, 2) if legal_shape else None
    legal = (
        legal_shape
        and np.issubdtype(action.dtype, np.integer)
        and bool(np.all((pairs[:3] >= 0) & (pairs[:3] < 4)))
        and all(
            i == j or (pool.valid[p, i] and pool.valid[p, j]) for p, (i, j) in zip(prompts[:3], pairs[:3], strict=True)
        )
    )
    if legal:
        np.testing.assert_array_equal(validate_pairs(action, 4, 4, prompts, pool), pairs)
    else:
        with pytest.raises(ValueError):
            validate_pairs(action, 4, 4, prompts, pool)
