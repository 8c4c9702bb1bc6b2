"""activeuf-env: Gymnasium environments for active preference-data selection (ActiveUltraFeedback).

Importing the package registers the environment ids in the ``ActiveUF`` namespace:

>>> import gymnasium as gym
>>> import activeuf_env
>>> sorted(i for i in gym.registry if i.startswith("ActiveUF/"))  # doctest: +NORMALIZE_WHITESPACE
['ActiveUF/AlpacaEval-v0', 'ActiveUF/Replay-v0', 'ActiveUF/Synthetic-v0', 'ActiveUF/SyntheticPaperScale-v0',
 'ActiveUF/SyntheticTasks-v0']

``ActiveUF/SyntheticTasks-v0`` plays a split of the meta-training task distribution
(:class:`activeuf_env.envs.task_env.SyntheticTasksEnv`).

``ActiveUF/Replay-v0`` needs ``data_path=`` (any real dataset, :func:`activeuf_env.envs.real_data.make_replay_env`);
``ActiveUF/AlpacaEval-v0`` reads the shared AlpacaEval multi-model data (``$ACTIVEUF_SHARED_DATA`` or
``../shared/data``, or ``data_dir=``; :func:`activeuf_env.envs.real_data.make_alpaca_eval_env`) and raises
``FileNotFoundError`` naming the expected path when it is absent.
"""

from __future__ import annotations

import importlib.metadata

import gymnasium

from activeuf_env import _fork, core
from activeuf_env.core import *  # noqa: F403 - the top level offers core's public API as it is
from activeuf_env.core.synthetic import SyntheticPoolConfig
from activeuf_env.data.pool_factory import DatasetPool
from activeuf_env.envs.active_uf import ActiveUFEnv
from activeuf_env.envs.real_data import make_alpaca_eval_env, make_replay_env

_fork.install()  # before any env runs torch, so async vector envs can fork their workers

try:
    __version__ = importlib.metadata.version("activeuf-env")  # the one place it is written is pyproject.toml
except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [*core.__all__, "PAPER_SCALE_POOL", "ActiveUFEnv", "DatasetPool", "make_alpaca_eval_env", "make_replay_env"]

PAPER_SCALE_EVAL_PROMPTS = 4096
PAPER_SCALE_POOL = SyntheticPoolConfig(n_prompts=60_829 + PAPER_SCALE_EVAL_PROMPTS)
"""AUF scale: 60,829 train prompts (951 rounds of 64) plus 4,096 held-out prompts, 30 responses each."""
PAPER_SCALE_EVAL_EVERY = 8
"""Downstream evaluation retrains on every pair collected so far, so at AUF scale it runs every 8th round."""


def _register(env_id: str, entry_point: str = "activeuf_env.envs.active_uf:ActiveUFEnv", **kwargs: object) -> None:
    if env_id not in gymnasium.registry:
        gymnasium.register(id=env_id, entry_point=entry_point, kwargs=kwargs)


_register("ActiveUF/Synthetic-v0", instances=SyntheticPoolConfig(), batch_size=64, eval_size=256)
_register(
    "ActiveUF/SyntheticPaperScale-v0",
    instances=PAPER_SCALE_POOL,
    batch_size=64,
    eval_size=PAPER_SCALE_EVAL_PROMPTS,
    eval_every=PAPER_SCALE_EVAL_EVERY,
)
_register("ActiveUF/Replay-v0", entry_point="activeuf_env.envs.real_data:make_replay_env")
_register("ActiveUF/AlpacaEval-v0", entry_point="activeuf_env.envs.real_data:make_alpaca_eval_env")
_register("ActiveUF/SyntheticTasks-v0", entry_point="activeuf_env.envs.task_env:SyntheticTasksEnv", split="train")
