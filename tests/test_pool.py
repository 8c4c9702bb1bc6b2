"""ResponsePool validation, splitting and lossless save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from activeuf_env import PoolTexts, ResponsePool, SyntheticPoolConfig, load_pool, make_synthetic_pool


def _arrays(n: int = 3, k: int = 4, d: int = 2) -> dict:
    rng = np.random.default_rng(0)
    return {
        "features": rng.normal(size=(n, k, d)).astype(np.float32),
        "judge_scores": rng.normal(size=(n, k)).astype(np.float32),
        "true_quality": rng.normal(size=(n, k)).astype(np.float32),
        "model_ids": np.tile(np.arange(k), (n, 1)),
        "valid": np.ones((n, k), dtype=bool),
        "model_names": [f"m{i}" for i in range(k)],
        "prompt_ids": [f"p{i}" for i in range(n)],
    }


def _with(**changes: object) -> dict:
    return {**_arrays(), **changes}


def _nan_at(name: str, index: tuple[int, ...]) -> np.ndarray:
    array = _arrays()[name].copy()
    array[index] = np.nan
    return array


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"judge_scores": np.zeros((3, 5), np.float32)}, r"judge_scores must have shape \(3, 4\).*got \(3, 5\)"),
        ({"features": np.zeros((3, 4), np.float32)}, r"features must have shape \[N, K, D\], got shape \(3, 4\)"),
        ({"prompt_ids": ["a", "b"]}, r"prompt_ids must have 3 entries.*got 2"),
        ({"judge_scores": _nan_at("judge_scores", (1, 2))}, r"judge_scores of prompt 'p1', response 2 is not finite"),
        ({"true_quality": _nan_at("true_quality", (2, 0))}, r"true_quality of prompt 'p2', response 0 is not finite"),
        ({"features": _nan_at("features", (0, 3, 1))}, r"features of prompt 'p0', response 3 is not finite"),
        ({"valid": np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)}, r"prompt 'p1' has 1 valid responses"),
        ({"model_ids": np.full((3, 4), 9)}, r"model_ids must lie in \[0, 4\), got 9"),
        ({"prompt_ids": ["a", "a", "b"]}, r"prompt_ids must be unique"),
    ],
)
def test_bad_pool_names_the_offending_field_or_prompt(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResponsePool(**_with(**changes))


def test_nan_in_padded_slot_is_allowed() -> None:
    arrays = _arrays()
    arrays["valid"][0, 3] = False
    arrays["judge_scores"][0, 3] = np.nan
    arrays["features"][0, 3] = np.nan
    assert ResponsePool(**arrays).n_prompts == 3


def test_save_load_round_trip_is_lossless(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["valid"][1, 0] = False
    texts = PoolTexts(["hi", "there", "ü"], [["a", "b", "c", "d"]] * 3)
    pool = ResponsePool(**arrays, texts=texts)
    path = pool.save(tmp_path / "pool")
    for mmap in (False, True):
        loaded = load_pool(path, mmap_features=mmap)
        for name in ("features", "judge_scores", "true_quality", "model_ids", "valid"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(pool, name))
            assert getattr(loaded, name).dtype == getattr(pool, name).dtype
        assert loaded.model_names == pool.model_names and loaded.prompt_ids == pool.prompt_ids
        assert loaded.texts == texts
    assert isinstance(load_pool(path, mmap_features=True).features, np.memmap)


def test_load_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz"):
        load_pool(tmp_path / "nowhere.npz")


def test_split_is_a_seeded_partition() -> None:
    pool = make_synthetic_pool(SyntheticPoolConfig(n_prompts=50, feature_dim=4))
    train, held_out = pool.split(0.2, np.random.default_rng(1))
    assert (train.n_prompts, held_out.n_prompts) == (40, 10)
    assert set(train.prompt_ids).isdisjoint(held_out.prompt_ids)
    assert set(train.prompt_ids) | set(held_out.prompt_ids) == set(pool.prompt_ids)
    again, _ = pool.split(0.2, np.random.default_rng(1))
    assert again.prompt_ids == train.prompt_ids
    with pytest.raises(ValueError, match="eval_size must"):
        pool.split(1.5, np.random.default_rng(0))
