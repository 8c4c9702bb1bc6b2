"""The environment runs under Gymnasium's vector envs, in subprocesses spawned or forked (the default on Linux)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import activeuf_env  # noqa: F401
from activeuf_env import SyntheticPoolConfig

TESTS = Path(__file__).resolve().parent
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


FORKED_EPISODE = """
import multiprocessing, os, sys
import numpy as np, torch
import gymnasium as gym
import activeuf_env
from helpers import TINY_ENV_KWARGS, random_pairs

def episode(mode):
    envs = gym.make_vec("ActiveUF/Synthetic-v0", num_envs=2, vectorization_mode=mode, **TINY_ENV_KWARGS)
    rng = np.random.default_rng(0)
    obs, _ = envs.reset(seed=[1, 2])
    rewards, done = [], np.zeros(2, dtype=bool)
    while not done.all():
        action = np.stack([random_pairs({k: v[e] for k, v in obs.items()}, rng).reshape(-1) for e in range(2)])
        obs, reward, terminated, truncated, _ = envs.step(action)
        rewards.append(reward)
        done |= terminated | truncated
    envs.close()
    return np.stack(rewards), obs

if __name__ == "__main__":
    assert multiprocessing.get_start_method() == "fork", multiprocessing.get_start_method()
    torch.set_num_threads(2)  # an OpenMP team in the parent, whatever the machine's core count
    env = gym.make("ActiveUF/Synthetic-v0", **TINY_ENV_KWARGS)
    env.reset(seed=0)  # trains the reward model: the team now exists
    read, write = os.pipe()
    if os.fork() == 0:
        os.write(write, str(torch.get_num_threads()).encode())
        os._exit(0)
    print("child threads", os.read(read, 8).decode(), flush=True)
    forked = episode("async")  # Gymnasium's default context
    torch.set_num_threads(1)
    rewards, obs = episode("sync")
    same = np.array_equal(forked[0], rewards) and all(np.array_equal(forked[1][k], obs[k]) for k in obs)
    print("identical", same, "rounds", len(rewards), flush=True)
"""


@pytest.mark.skipif(multiprocessing.get_all_start_methods()[0] != "fork", reason="fork is not the default here")
def test_async_vector_env_forks_after_the_parent_ran_torch(tmp_path: Path) -> None:
    """Issue 11 #4: forked workers once hung in libgomp; they now run torch on one thread, bit for bit like a
    one-thread run in the parent (a subprocess with a timeout, so a regression fails instead of hanging)."""
    script = tmp_path / "forked_episode.py"
    script.write_text(FORKED_EPISODE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    try:
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"async vector env with the fork context hung (120 s); output: {err.stdout!r} {err.stderr!r}")
    assert run.returncode == 0, run.stderr
    assert "child threads 1" in run.stdout and "identical True rounds 3" in run.stdout, run.stdout
