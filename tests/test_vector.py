"""The environment runs under Gymnasium's vector envs, including spawned subprocesses."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import activeuf_env  # noqa: F401
from activeuf_env import SyntheticPoolConfig

KWARGS = {"instances": SyntheticPoolConfig(n_prompts=120, feature_dim=8), "batch_size": 16, "eval_size": 24}


def _pairs(space: gym.Space, obs: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    n_envs, batch, k = obs["valid"].shape
    firsts = rng.integers(0, k, size=(n_envs, batch))
    seconds = (firsts + rng.integers(1, k, size=(n_envs, batch))) % k
    return np.stack([firsts, seconds], axis=-1).reshape(n_envs, 2 * batch)


@pytest.mark.parametrize("vectorization_mode", ["sync", "async"])
def test_vector_env_runs_a_full_episode(vectorization_mode: str) -> None:
    kwargs = {"context": "spawn"} if vectorization_mode == "async" else {}
    envs = gym.make_vec(
        "ActiveUF/Synthetic-v0", num_envs=2, vectorization_mode=vectorization_mode, vector_kwargs=kwargs, **KWARGS
    )
    rng = np.random.default_rng(0)
    obs, infos = envs.reset(seed=[1, 2])
    steps = 0
    done = np.zeros(2, dtype=bool)
    while not done.all():
        obs, rewards, terminated, truncated, infos = envs.step(_pairs(envs.single_action_space, obs, rng))
        done |= terminated | truncated
        steps += 1
    assert steps == 6  # 96 train prompts in rounds of 16
    assert rewards.shape == (2,)
    assert list(infos["labels"]) == [96, 96]
    envs.close()


def test_async_vector_env_with_explicit_spawn_context() -> None:
    envs = gym.vector.AsyncVectorEnv([lambda: gym.make("ActiveUF/Synthetic-v0", **KWARGS)] * 2, context="spawn")
    obs, _ = envs.reset(seed=0)
    assert obs["mean"].shape == (2, 16, 30)
    envs.close()
