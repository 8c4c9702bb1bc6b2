"""Every registered ActiveUF id passes Gymnasium's env checker with no warning at all."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import activeuf_env  # noqa: F401  (registers the ids)

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("ActiveUF/"))


def test_ids_are_registered() -> None:
    assert {"ActiveUF/Synthetic-v0", "ActiveUF/SyntheticPaperScale-v0"} <= set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_without_warnings(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_observation_is_in_space(env_id: str) -> None:
    env = gym.make(env_id)
    obs, info = env.reset(seed=1)
    assert obs in env.observation_space
    assert info["labels"] == 0
    env.close()
