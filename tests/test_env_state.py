"""Env states (issue 11 #7, #11, #9): resuming through ``gymnasium.make``'s wrappers, a fingerprint that refuses an
env the state does not fit, pickle-free state files that load without running code, atomic saves and unknown
constructor keywords named with their closest match."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import data_equivalence
from helpers import SMALL_POOL, TINY_ENV_KWARGS, random_pairs

import activeuf_env  # noqa: F401  (registers the ids)
from activeuf_env import ActiveUFEnv, SyntheticPoolConfig
from activeuf_env.core.reward_model import RewardModelConfig
from activeuf_env.core.synthetic import make_synthetic_pool
from activeuf_env.envs.state_file import read_state, write_state

FAST_MODEL = RewardModelConfig(n_heads=4, hidden_dim=16, max_steps=10)
KWARGS: dict[str, Any] = {**TINY_ENV_KWARGS, "reward_model": FAST_MODEL}
"""``ActiveUF/Synthetic-v0`` with 60 train prompts in 3 rounds of 20 and a small ensemble."""


def make_env(**overrides: Any) -> gym.Env:
    return gym.make("ActiveUF/Synthetic-v0", **{**KWARGS, **overrides})


def play(env: gym.Env, obs: dict[str, np.ndarray], rng: np.random.Generator) -> list[tuple[Any, ...]]:
    """Step ``env`` with the seeded random policy until the episode ends; every (obs, reward, term, trunc, info)."""
    steps, terminated = [], False
    while not terminated:
        step = env.step(random_pairs(obs, rng))
        obs, terminated = step[0], step[2]
        steps.append(step)
    return steps


def saved_mid_episode(tmp_path: Path, **overrides: Any) -> tuple[Path, tuple[Any, ...], list[tuple[Any, ...]]]:
    """Save after the first step; return the path, that step and the rest of the uninterrupted episode."""
    env, rng = make_env(**overrides), np.random.default_rng(7)
    obs, _ = env.reset(seed=3)
    first = env.step(random_pairs(obs, rng))
    path = env.unwrapped.save(tmp_path / "episode.npz")
    rest = play(env, first[0], np.random.default_rng(8))
    env.close()
    return path, first, rest


class _Touch:
    """A pickle payload: unpickling it creates ``marker`` (standing in for any code a crafted file could run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


# ---------------------------------------------------------------------- #7: resuming through the wrappers


def test_reset_with_a_state_path_resumes_through_gym_make_wrappers(tmp_path: Path) -> None:
    path, first, rest = saved_mid_episode(tmp_path)
    env = make_env()
    obs, info = env.reset(options={"state": path})
    assert data_equivalence(obs, first[0], exact=True)
    assert info == {**first[4], "model_names": info["model_names"]} and len(info["model_names"]) > 1
    assert data_equivalence(play(env, obs, np.random.default_rng(8)), rest, exact=True)


def test_reset_with_an_in_memory_state_and_a_seed_the_states_generator_wins(tmp_path: Path) -> None:
    path, first, rest = saved_mid_episode(tmp_path)
    env = make_env()
    obs, _ = env.reset(seed=123, options={"state": read_state(path)})
    assert data_equivalence(obs, first[0], exact=True)
    assert data_equivalence(play(env, obs, np.random.default_rng(8)), rest, exact=True)
    with pytest.raises(ValueError, match=r"options\['state'\] takes no other option, got \['instance', 'state'\]"):
        env.reset(options={"state": path, "instance": 0})


def test_bare_load_still_resumes_the_unwrapped_env(tmp_path: Path) -> None:
    path, first, rest = saved_mid_episode(tmp_path)
    env = make_env()
    env.unwrapped.load(path)
    assert data_equivalence(play(env.unwrapped, first[0], np.random.default_rng(8)), rest, exact=True)


def test_round_trip_restores_the_optimizer_buffer_and_generator_exactly(tmp_path: Path) -> None:
    env = make_env().unwrapped
    obs, _ = env.reset(seed=0)
    env.step(random_pairs(obs, np.random.default_rng(0)))
    resumed = make_env().unwrapped
    resumed.load(env.save(tmp_path / "state.npz"))
    ours, theirs = env.episode.model.optimizer.state_dict(), resumed.episode.model.optimizer.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    for index, values in ours["state"].items():
        for key, tensor in values.items():
            assert theirs["state"][index][key].dtype == tensor.dtype, (index, key)
            assert torch.equal(theirs["state"][index][key], tensor), (index, key)
    assert resumed.np_random.bit_generator.state == env.np_random.bit_generator.state
    assert data_equivalence(resumed.episode.buffer.state_dict(), env.episode.buffer.state_dict(), exact=True)
    clone = pickle.loads(pickle.dumps(resumed))  # vector envs pickle the env; a resumed one too
    action = random_pairs(resumed.episode.observation, np.random.default_rng(1))
    assert data_equivalence(clone.step(action), env.step(action), exact=True)


def test_get_and_set_state_are_deep_copies() -> None:
    env = make_env().unwrapped
    obs, _ = env.reset(seed=0)
    state = env.get_state()
    action = random_pairs(obs, np.random.default_rng(0))
    first = env.step(action)  # a step after get_state does not change the state
    env.set_state(state)
    assert data_equivalence(env.step(action), first, exact=True)
    env.set_state(state)  # nor does a step after set_state
    assert data_equivalence(env.step(action), first, exact=True)


# ---------------------------------------------------------------------- #7: the fingerprint


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 10}, r"expected batch_size=10 \(this env\), got 20 \(the state\)"),
        ({"budget": 30}, r"expected budget=30 \(this env\), got None \(the state\)"),
        (
            {"reward_model": dataclasses.replace(FAST_MODEL, n_heads=5)},
            r"expected reward_model\.n_heads=5 \(this env\), got 4 \(the state\)",
        ),
        ({"reward": "dpo"}, r"expected reward='dpo' \(this env\), got 'score' \(the state\)"),
    ],
)
def test_a_state_refuses_an_env_with_other_settings_naming_them(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    path, *_ = saved_mid_episode(tmp_path)
    env = make_env(**overrides)
    with pytest.raises(ValueError, match=message) as raised:
        env.reset(options={"state": path})
    assert str(path) in str(raised.value)
    with pytest.raises(ValueError, match=rf"cannot resume the state on this env: {message}"):
        env.unwrapped.set_state(read_state(path))
    with pytest.raises(gym.error.ResetNeeded):  # the refused state left no episode behind
        env.unwrapped.step(np.zeros((20, 2), dtype=np.int64))


def test_a_state_refuses_a_different_synthetic_pool(tmp_path: Path) -> None:
    path, *_ = saved_mid_episode(tmp_path)
    other = dataclasses.replace(TINY_ENV_KWARGS["instances"], seed=1)
    with pytest.raises(ValueError, match=r"the state was saved on a different pool \(fingerprint [0-9a-f]{16} vs"):
        make_env(instances=other).reset(options={"state": path})


def test_a_state_refuses_an_edited_replay_dataset(tmp_path: Path) -> None:
    pool = make_synthetic_pool(SyntheticPoolConfig(n_prompts=60, feature_dim=8))
    scores = pool.judge_scores.copy()
    scores[0, 0] += 1.0  # one edited score, nothing else
    edited = dataclasses.replace(pool, judge_scores=scores)
    kwargs = {"batch_size": 10, "eval_size": 20, "reward_model": FAST_MODEL}
    env = gym.make("ActiveUF/Replay-v0", data_path=pool.save(tmp_path / "a.npz"), **kwargs)
    obs, _ = env.reset(seed=0)
    env.step(random_pairs(obs, np.random.default_rng(0)))
    path = env.unwrapped.save(tmp_path / "state.npz")
    same = gym.make("ActiveUF/Replay-v0", data_path=pool.save(tmp_path / "copy.npz"), **kwargs)
    same.reset(options={"state": path})  # the same content under another name resumes
    other = gym.make("ActiveUF/Replay-v0", data_path=edited.save(tmp_path / "b.npz"), **kwargs)
    with pytest.raises(ValueError, match=r"different pool \(fingerprint [0-9a-f]{16} vs [0-9a-f]{16} of this env\)"):
        other.reset(options={"state": path})


def test_a_state_records_its_env_fingerprint(make_small_env) -> None:
    env = make_small_env()
    env.reset(seed=0)
    fingerprint = env.get_state()["fingerprint"]
    assert fingerprint["batch_size"] == 16 and fingerprint["n_responses"] == 30 and fingerprint["feature_dim"] == 16
    assert fingerprint["reward_model.n_heads"] == 20 and fingerprint["downstream.rm_epochs"] == 2
    assert len(fingerprint["pool"]) == 16 and "device" not in fingerprint
    other = make_small_env(instances=dataclasses.replace(SMALL_POOL, seed=5))
    other.reset(seed=0)
    assert other.get_state()["fingerprint"]["pool"] != fingerprint["pool"]


# ---------------------------------------------------------------------- #7, #11: the file


@pytest.mark.parametrize("keep", [0, 100, 0.5, -10])
def test_a_truncated_file_is_a_value_error_naming_the_path(tmp_path: Path, keep: float) -> None:
    path, *_ = saved_mid_episode(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match=rf"{path.name}'? is not a readable activeuf-env state file"):
        make_env().reset(options={"state": path})
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        make_env().unwrapped.load(tmp_path / "missing.npz")


def test_a_pickle_payload_is_refused_without_running(tmp_path: Path) -> None:
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Touch(live)))  # the payload is live: unpickling it runs code
    assert live.exists()

    marker = tmp_path / "marker"
    old_format = tmp_path / "old.pkl"  # states of version 3 and before were pickles
    old_format.write_bytes(pickle.dumps({"version": 3, "payload": _Touch(marker)}))
    with pytest.raises(ValueError, match=r"old\.pkl'? is not a readable .*pickled data is never loaded"):
        make_env().reset(options={"state": old_format})

    path, *_ = saved_mid_episode(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        members = {name: archive[name] for name in archive.files}
    members["a0"] = np.array([_Touch(marker)], dtype=object)  # np.savez pickles object arrays
    crafted = tmp_path / "crafted.npz"
    np.savez(crafted, **members)
    with pytest.raises(ValueError, match=r"crafted\.npz'? is not a readable .*pickle"):
        make_env().reset(options={"state": crafted})
    with pytest.raises(ValueError, match=r"crafted\.npz"):
        make_env().unwrapped.load(crafted)
    assert not marker.exists()


def test_a_state_file_holds_only_arrays_and_json(tmp_path: Path) -> None:
    path, *_ = saved_mid_episode(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        dtypes = {archive[name].dtype.kind for name in archive.files}
    assert dtypes <= set("biuf")  # bool, ints, floats; the JSON document is uint8
    with pytest.raises(TypeError, match=r"state\['x'\]: a state holds arrays, tensors and plain data only, got _Touch"):
        write_state(tmp_path / "bad.npz", {"x": _Touch(tmp_path / "never")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode.npz"]


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    path, *_ = saved_mid_episode(tmp_path)
    before = path.read_bytes()
    env = make_env().unwrapped
    env.reset(seed=9)

    def fail(file: Any, **arrays: np.ndarray) -> None:
        file.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", fail)
    for target in (path, tmp_path / "new.npz"):
        with pytest.raises(OSError, match="No space left"):
            env.save(target)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode.npz"]


def test_a_save_over_the_file_size_limit_leaves_no_temporary_file(tmp_path: Path) -> None:
    # A real write failure: the kernel refuses to grow the file past RLIMIT_FSIZE (EFBIG once SIGXFSZ is ignored).
    script = textwrap.dedent(
        f"""
        import resource, signal
        import gymnasium as gym
        import activeuf_env
        from activeuf_env.core.reward_model import RewardModelConfig
        from activeuf_env.core.synthetic import SyntheticPoolConfig

        env = gym.make("ActiveUF/Synthetic-v0", instances=SyntheticPoolConfig(n_prompts=100, feature_dim=8),
                       batch_size=20, eval_size=40, reward_model=RewardModelConfig(n_heads=4, hidden_dim=16))
        env.reset(seed=0)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            env.unwrapped.save({str(tmp_path / "state.npz")!r})
        except OSError as err:
            print("refused", err.errno)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.startswith("refused"), done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- #9: unknown constructor keywords


def test_an_unknown_constructor_keyword_names_the_closest_known_one() -> None:
    with pytest.raises(ValueError, match=r"ActiveUFEnv got an unknown keyword 'batchsize'; did you mean 'batch_size'"):
        gym.make("ActiveUF/Synthetic-v0", batchsize=16)
    with pytest.raises(ValueError, match=r"unknown keyword 'obsrve_features'; did you mean 'observe_features'\? Known"):
        ActiveUFEnv(obsrve_features=True)
    with pytest.raises(ValueError, match=r"unknown keyword 'zzz'\. Known: batch_size, budget, "):
        ActiveUFEnv(zzz=1)
    parameters = inspect.signature(ActiveUFEnv).parameters  # still the constructor's own (real_data reads it)
    assert "batch_size" in parameters and all(p.kind != p.VAR_KEYWORD for p in parameters.values())
    assert list(ActiveUFEnv(**KWARGS).settings()) == [name for name in parameters if name != "render_mode"]
