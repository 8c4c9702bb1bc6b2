"""Same seed, same trajectory; different seeds, different trajectories."""

from __future__ import annotations

import numpy as np
from gymnasium.utils.env_checker import data_equivalence
from helpers import run_episode


def test_same_seed_gives_identical_episode(make_small_env) -> None:
    first = run_episode(make_small_env(), seed=7)
    second = run_episode(make_small_env(), seed=7)
    assert len(first) == len(second) == 11
    for a, b in zip(first, second, strict=False):
        assert data_equivalence(a, b, exact=True)


def test_different_seeds_differ(make_small_env) -> None:
    first = run_episode(make_small_env(), seed=7)
    second = run_episode(make_small_env(), seed=8)
    assert not np.array_equal(first[0][0]["mean"], second[0][0]["mean"])
    assert any(a[4]["pair_gap"] != b[4]["pair_gap"] for a, b in zip(first[1:], second[1:], strict=False))


def test_reset_without_seed_continues_the_generator(make_small_env) -> None:
    env = make_small_env()
    first, _ = env.reset(seed=3)
    second, _ = env.reset()
    assert not np.array_equal(first["mean"], second["mean"])
