"""Every registered ActiveUF id passes Gymnasium's env checker with no warning at all.

Ids over real data get what they need: ``ActiveUF/Replay-v0`` a small AUF dataset written to ``tmp_path`` (with
precomputed embeddings, so no encoder runs, and no padded responses: ``check_env`` steps with unmasked samples of the
action space, which the env rejects when they pick a padded response); ``ActiveUF/AlpacaEval-v0`` the shared data,
skipped with the expected path when it is absent (only 10 of its 45,885 slots are padding, and the checker's
seeded samples miss them).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from helpers import write_replay_dataset

import activeuf_env  # noqa: F401  (registers the ids)
from activeuf_env.data.readers import locate_alpaca_eval

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("ActiveUF/"))


def make_kwargs(env_id: str, tmp_path: Path) -> dict[str, Any]:
    """What ``gym.make(env_id, **kwargs)`` needs here; skips an id whose data is absent."""
    if env_id == "ActiveUF/Replay-v0":
        return write_replay_dataset(tmp_path)
    if env_id == "ActiveUF/AlpacaEval-v0":
        try:
            locate_alpaca_eval()
        except FileNotFoundError as err:
            pytest.skip(f"shared AlpacaEval data absent: {err}")
    return {}


def test_ids_are_registered() -> None:
    expected = {
        "ActiveUF/Synthetic-v0",
        "ActiveUF/SyntheticPaperScale-v0",
        "ActiveUF/Replay-v0",
        "ActiveUF/AlpacaEval-v0",
    }
    assert expected <= set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_without_warnings(env_id: str, tmp_path: Path) -> None:
    env = gym.make(env_id, **make_kwargs(env_id, tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_observation_is_in_space(env_id: str, tmp_path: Path) -> None:
    env = gym.make(env_id, **make_kwargs(env_id, tmp_path))
    obs, info = env.reset(seed=1)
    assert obs in env.observation_space
    assert info["labels"] == 0
    json.dumps(info)  # plain Python values only
    env.close()
