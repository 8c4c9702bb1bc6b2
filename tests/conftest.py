"""Shared fixtures: small synthetic instances so that whole episodes run in well under a second."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from activeuf_env import ActiveUFEnv, SyntheticPoolConfig

SMALL_POOL = SyntheticPoolConfig(n_prompts=200, feature_dim=16)
TINY_ENV_KWARGS: dict[str, Any] = {
    "instances": SyntheticPoolConfig(n_prompts=100, feature_dim=8),
    "batch_size": 20,
    "eval_size": 40,
}
"""Overrides of ``ActiveUF/Synthetic-v0`` for benchmark tests: 60 train prompts in 3 rounds of 20, D = 8."""


@pytest.fixture
def make_small_env() -> Callable[..., ActiveUFEnv]:
    """Factory of small envs: 160 train prompts in 10 rounds of 16, D = 16."""

    def make(**kwargs: Any) -> ActiveUFEnv:
        options: dict[str, Any] = {"instances": SMALL_POOL, "batch_size": 16, "eval_size": 40, **kwargs}
        return ActiveUFEnv(**options)

    return make


def random_pairs(obs: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Two distinct valid responses per prompt, uniformly (a seeded test policy with no dependency on agents/)."""
    scores = np.where(obs["valid"] == 1, rng.random(obs["valid"].shape), -1.0)
    top2 = np.argsort(-scores, axis=1)[:, :2]
    return np.where(obs["prompt_valid"][:, None] == 1, top2, 0).astype(np.int64)


def run_episode(env: Any, seed: int, policy_seed: int = 0) -> list[tuple[Any, ...]]:
    """Run one episode with :func:`random_pairs`; return every (obs, reward, terminated, truncated, info)."""
    rng = np.random.default_rng(policy_seed)
    obs, info = env.reset(seed=seed)
    trajectory: list[tuple[Any, ...]] = [(obs, 0.0, False, False, info)]
    terminated = truncated = False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(random_pairs(obs, rng))
        trajectory.append((obs, reward, terminated, truncated, info))
    return trajectory
