"""The W&B recorder: labels as step metric, config, one run per episode, offline mode, and failures that never raise."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
from helpers import TINY_ENV_KWARGS

import activeuf_env  # noqa: F401 - registers the ActiveUF ids
import agents
from activeuf_env.runner import play_episode
from activeuf_env.tracking import (
    WandbRecorder,
    WandbWarning,
    describe_env,
    read_offline_run,
    resolve_wandb_mode,
    to_jsonable,
)

ENV_ID = "ActiveUF/Synthetic-v0"
SMALL = TINY_ENV_KWARGS


class FakeRun:
    """Records what the recorder asks of a W&B run."""

    def __init__(self, calls: list[tuple[str, Any]], fail_log: bool) -> None:
        self.calls, self.fail_log = calls, fail_log
        self.dir = "/nonexistent/offline-run-fake/files"

    def define_metric(self, name: str, **kwargs: Any) -> None:
        self.calls.append(("define_metric", (name, kwargs)))

    def log(self, row: dict[str, Any]) -> None:
        if self.fail_log:
            raise OSError("disk full")
        self.calls.append(("log", row))

    def finish(self, exit_code: int | None = None) -> None:
        self.calls.append(("finish", exit_code))


def fake_wandb(fail_init: bool = False, fail_log: bool = False) -> tuple[types.ModuleType, list[tuple[str, Any]]]:
    calls: list[tuple[str, Any]] = []
    module = types.ModuleType("wandb")
    module.__version__ = "0.31.0"  # type: ignore[attr-defined]

    class Settings:
        model_fields = {"silent": None, "console": None, "x_disable_stats": None}

        def __init__(self, **kwargs: Any) -> None:
            calls.append(("settings", kwargs))

    def init(**kwargs: Any) -> FakeRun:
        calls.append(("init", kwargs))
        if fail_init:
            raise RuntimeError("cannot reach W&B")
        return FakeRun(calls, fail_log)

    module.Settings = Settings  # type: ignore[attr-defined]
    module.init = init  # type: ignore[attr-defined]
    return module, calls


def play(env: gymnasium.Env[Any, Any], agent_name: str = "random", seed: int = 0) -> list[dict[str, Any]]:
    return [step.info for step in play_episode(env, agents.make(agent_name), seed)]


def test_recorder_logs_against_labels_with_env_and_agent_config(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_wandb()
    monkeypatch.setitem(sys.modules, "wandb", module)
    env = WandbRecorder(gymnasium.make(ENV_ID, **SMALL), agent=agents.make("drts"), mode="offline")
    infos = play(env, "drts", seed=4)
    (_, init), *_ = [call for call in calls if call[0] == "init"]
    assert init["name"] == "drts-seed4" and init["group"] == ENV_ID and init["mode"] == "offline"
    assert init["reinit"] == "create_new" and init["project"] == "activeuf-env"
    assert init["config"]["agent"] == {"name": "drts", "beta": 1.0, "max_tries": 30}
    assert init["config"]["env"]["batch_size"] == 20 and init["config"]["env"]["instances"][0]["n_prompts"] == 100
    assert init["config"]["seed"] == 4 and init["config"]["reference_score"] == pytest.approx(
        infos[0]["score"] + infos[0]["regret"]
    )
    settings = next(kwargs for name, kwargs in calls if name == "settings")
    assert settings == {"silent": True, "console": "off", "x_disable_stats": True}  # only names the Settings knows
    metrics = [args for name, args in calls if name == "define_metric"]
    assert metrics == [
        ("labels", {}),
        ("*", {"step_metric": "labels"}),
        ("regret", {"step_metric": "labels", "summary": "min"}),
    ]
    logs = [row for name, row in calls if name == "log"]
    assert [row["labels"] for row in logs] == [info["labels"] for info in infos]
    assert [row["regret"] for row in logs] == [info["regret"] for info in infos]
    assert "reward" not in logs[0] and all("reward" in row for row in logs[1:])
    spent = np.diff([info["labels"] for info in infos], prepend=0)
    assert logs[-1]["cumulative_regret"] == pytest.approx(float(np.sum(spent * [i["regret"] for i in infos])))
    assert calls[-1] == ("finish", None)  # the run finishes with the episode
    assert env.error is None
    env.close()
    assert [name for name, _ in calls].count("finish") == 1


def test_recorder_starts_one_run_per_episode(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_wandb()
    monkeypatch.setitem(sys.modules, "wandb", module)
    env = WandbRecorder(gymnasium.make(ENV_ID, **SMALL), agent="random", mode="offline", name=None)
    env.reset(seed=1)
    env.reset(seed=2)  # an unfinished episode's run is finished before the next starts
    env.close()
    assert [kwargs["name"] for name, kwargs in calls if name == "init"] == ["random-seed1", "random-seed2"]
    assert [name for name, _ in calls if name in ("init", "finish")] == ["init", "finish", "init", "finish"]


@pytest.mark.parametrize(
    ("fail_init", "fail_log", "stage"), [(True, False, "wandb.init: RuntimeError"), (False, True, "wandb log: OSError")]
)
def test_a_wandb_failure_warns_once_and_the_episodes_go_on(
    monkeypatch: pytest.MonkeyPatch, fail_init: bool, fail_log: bool, stage: str
) -> None:
    module, calls = fake_wandb(fail_init=fail_init, fail_log=fail_log)
    monkeypatch.setitem(sys.modules, "wandb", module)
    env = WandbRecorder(gymnasium.make(ENV_ID, **SMALL), agent="random", mode="offline")
    with pytest.warns(WandbWarning, match="W&B logging turned off") as caught:
        recorded = play(env, seed=0)
        env.reset(seed=1)
    env.close()
    assert len(caught) == 1
    assert env.error is not None and env.error.startswith(stage)
    assert [name for name, _ in calls].count("init") == 1  # no retry after the failure
    assert recorded == play(gymnasium.make(ENV_ID, **SMALL), seed=0)  # the env never noticed


def test_missing_wandb_or_unwritable_dir_only_warns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    env = WandbRecorder(gymnasium.make(ENV_ID, **SMALL), agent="random", mode="offline")
    with pytest.warns(WandbWarning, match="import wandb: (ModuleNotFound|Import)Error"):
        env.reset(seed=0)
    env.close()

    module, _ = fake_wandb()
    monkeypatch.setitem(sys.modules, "wandb", module)
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = WandbRecorder(gymnasium.make(ENV_ID, **SMALL), agent="random", dir=blocker / "sub", mode="offline")
    with pytest.warns(WandbWarning, match="wandb.init: (NotADirectoryError|FileExistsError)"):
        env.reset(seed=0)
    env.close()


def test_recorder_validates_its_arguments() -> None:
    env = gymnasium.make(ENV_ID, **SMALL)
    with pytest.raises(ValueError, match="mode must be 'online', 'offline', 'disabled' or None, got 'cloud'"):
        WandbRecorder(env, mode="cloud")
    with pytest.raises(TypeError, match="config must be a mapping or None, got list"):
        WandbRecorder(env, config=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be 'online', 'offline', 'disabled' or None, got 'cloud'"):
        resolve_wandb_mode("cloud")


def test_resolve_wandb_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert resolve_wandb_mode() == "offline"
    assert resolve_wandb_mode("online") == "online"
    netrc.write_text("machine api.wandb.ai login user password secret\n")
    assert resolve_wandb_mode() is None  # configured: W&B decides (online)
    netrc.write_text("")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode() is None
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode() == "disabled"  # respected
    assert resolve_wandb_mode("offline") == "offline"  # an explicit mode wins


def test_describe_env_and_to_jsonable() -> None:
    settings = describe_env(gymnasium.make(ENV_ID, **SMALL, eval_every=2))
    assert settings["env_id"] == ENV_ID and settings["eval_every"] == 2 and settings["judge"] == "score"
    assert settings["reward_model"]["type"] == "RewardModelConfig"
    assert to_jsonable({"x": float("nan"), "a": np.arange(3), "p": Path("/tmp")}) == {
        "x": "nan",
        "a": [0, 1, 2],
        "p": "/tmp",
    }


def test_a_real_offline_run_can_be_read_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    env = WandbRecorder(gymnasium.make(ENV_ID, **SMALL), agent=agents.make("random"), dir=tmp_path)
    infos = play(env, seed=5)
    env.close()
    assert env.error is None and len(env.run_dirs) == 1
    assert env.run_dirs[0].parent == tmp_path / "wandb" and env.run_dirs[0].name.startswith("offline-run-")
    run = read_offline_run(env.run_dirs[0])
    assert run.name == "random-seed5" and run.group == ENV_ID
    assert run.config["agent"]["name"] == "random" and run.config["seed"] == 5
    assert [row["labels"] for row in run.history] == [info["labels"] for info in infos]
    assert [row["score"] for row in run.history] == pytest.approx([info["score"] for info in infos])
    assert run.summary["regret"] == {"min": pytest.approx(min(info["regret"] for info in infos))}
    with pytest.raises(ValueError, match="is not a W&B transaction log"):
        read_offline_run(tmp_path / "wandb" / "debug.log")
    with pytest.raises(FileNotFoundError, match=r"no \.wandb file"):
        read_offline_run(tmp_path)


def test_one_failed_init_turns_wandb_off_for_the_rest_of_the_benchmark(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With a W&B key and no network every episode used to wait out wandb.init's timeout again; now the first
    failure is written to a flag in the output directory and every later episode (in any worker) skips W&B."""
    from activeuf_env.runner import run_benchmark
    from activeuf_env.runner.artefacts import WANDB_FAILURE_FLAG

    module, calls = fake_wandb(fail_init=True)
    monkeypatch.setitem(sys.modules, "wandb", module)
    out = tmp_path / "bench"
    with pytest.warns(Warning, match=r"W&B logging failed in 3 of 3 episodes .*cannot reach W&B"):
        result = run_benchmark(ENV_ID, ["random"], 3, out, env_kwargs=SMALL, wandb=True, plots=False, progress=False)
    assert [name for name, _ in calls].count("init") == 1  # not once per episode
    assert not result.failures and len(result.results) > 0
    assert "cannot reach W&B" in (out / WANDB_FAILURE_FLAG).read_text()
    # A new benchmark in the same folder starts from a clean slate (W&B is tried again).
    module_ok, calls_ok = fake_wandb()
    monkeypatch.setitem(sys.modules, "wandb", module_ok)
    run_benchmark(ENV_ID, ["random"], 1, out, env_kwargs=SMALL, wandb=True, plots=False, progress=False, overwrite=True)
    assert [name for name, _ in calls_ok].count("init") == 1 and not (out / WANDB_FAILURE_FLAG).exists()


def test_wandb_init_gets_a_short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from activeuf_env.tracking.recorder import INIT_TIMEOUT_S, _make_settings

    module, calls = fake_wandb()
    module.Settings.model_fields = {"init_timeout": None, "silent": None}  # type: ignore[attr-defined]
    _make_settings(module)
    assert calls == [("settings", {"init_timeout": INIT_TIMEOUT_S, "silent": True})] and INIT_TIMEOUT_S <= 30


def test_every_run_of_a_benchmark_shares_its_group_and_tag_across_a_resume(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    from activeuf_env.runner import run_benchmark
    from activeuf_env.runner.benchmark import BENCH_TAG

    module, calls = fake_wandb()
    monkeypatch.setitem(sys.modules, "wandb", module)
    quiet = {"env_kwargs": SMALL, "wandb": True, "plots": False, "progress": False}
    run_benchmark(ENV_ID, ["random"], 2, tmp_path / "a", **quiet)
    run_benchmark(ENV_ID, ["random"], 3, tmp_path / "a", resume=True, **quiet)  # one more seed
    run_benchmark(ENV_ID, ["random"], 1, tmp_path / "b", **quiet)
    inits = [kwargs for name, kwargs in calls if name == "init"]
    assert len(inits) == 4 and all(kwargs["tags"] == [BENCH_TAG] for kwargs in inits)
    group = json.loads((tmp_path / "a" / "config.json").read_text())["wandb"]["group"]
    assert group.startswith("a-") and [kwargs["group"] for kwargs in inits[:3]] == [group] * 3
    assert inits[3]["group"].startswith("b-")  # another benchmark, another group


def test_a_run_whose_set_up_fails_is_still_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk left 4 W&B run folders and the summary counted 3: the run that failed after init was not."""
    module, _ = fake_wandb()

    def no_space(self: FakeRun, name: str, **kwargs: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(FakeRun, "define_metric", no_space)
    monkeypatch.setitem(sys.modules, "wandb", module)
    env = WandbRecorder(gymnasium.make(ENV_ID, **SMALL), agent=agents.make("random"), warn=False)
    play(env)
    assert env.error is not None and "No space left" in env.error
    assert env.run_dirs == [Path("/nonexistent/offline-run-fake")]
