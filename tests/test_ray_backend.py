"""``--backend ray``: the benchmark's episodes as Ray tasks on a local Ray instance give the process backend's table
row for row, a task whose worker is killed is run again, and the output folder (episode store, ``--resume``) is the
process backend's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY_ENV_KWARGS

from activeuf_env.runner import run_benchmark
from activeuf_env.runner.ray_backend import RayBackend

pytest.importorskip("pandas")
ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'activeuf-env[ray]')")

ENV_ID = "ActiveUF/Synthetic-v0"
QUIET: dict[str, Any] = {"env_kwargs": TINY_ENV_KWARGS, "plots": False, "progress": False}
ROOT = Path(__file__).resolve().parents[1]
DIES_ONCE = "helpers:DiesOnceAgent"

# All in one xdist worker (make test runs --dist loadgroup), so that one local Ray instance serves them; the tests that
# start their own instance come first, before the shared one starts.
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray instance with 2 CPUs whose workers import this folder's helpers (as spawned workers do)."""
    paths = os.pathsep.join([str(Path(__file__).parent), str(ROOT)])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": paths}})
    yield
    ray.shutdown()


def _rows(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every stored episode's rows, by file name (the wall time and the W&B fields left out)."""
    return {path.name: json.loads(path.read_text())["rows"] for path in sorted((out / "episodes").glob("*.json"))}


def test_the_cli_starts_and_stops_its_own_local_ray(tmp_path: Path) -> None:
    env_kwargs = json.dumps({"instances": {"n_prompts": 100, "feature_dim": 8}, "batch_size": 20, "eval_size": 40})
    command = [
        sys.executable, "-m", "activeuf_env.cli", "bench", "--backend", "ray", "--workers", "2", "--agents", "random",
        "--seeds", "2", "--out", str(tmp_path), "--no-wandb", "--no-progress", "--env-kwargs", env_kwargs,
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["backend"] == {
        "name": "ray", "address": None, "cpus_per_task": 1.0, "max_retries": 3, "local_cpus": 2, "runtime_env": None,
    }  # fmt: skip
    assert len(list((tmp_path / "episodes").glob("*.json"))) == 2


def test_a_sweep_on_ray_connects_once_for_all_its_benchmarks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from activeuf_env.runner.sweep import run_sweep

    inits = []
    init = ray.init
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: inits.append(kwargs) or init(*args, **kwargs))
    grid = {"reward_model": {"replay_factor": [50, 100]}}
    quiet = {"env_kwargs": TINY_ENV_KWARGS, "progress": False}
    result = run_sweep(ENV_ID, grid, ["random"], [0], [1], tmp_path, backend=RayBackend(local_cpus=2), **quiet)
    assert len(inits) == 1 and not ray.is_initialized()
    assert sorted(p.name for p in (tmp_path / "selection").iterdir()) == ["c00", "c01"]
    assert set(result.table["phase"]) == {"selection", "report"}


def test_without_ray_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'activeuf-env\[ray\]'"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path, backend="ray", **QUIET)


def test_ray_tasks_give_the_process_backends_table_row_for_row(tmp_path: Path, local_ray: None) -> None:
    agents = ["random", "drts"]
    processes = run_benchmark(ENV_ID, agents, 2, tmp_path / "processes", workers=2, **QUIET)
    on_ray = run_benchmark(ENV_ID, agents, 2, tmp_path / "ray", backend="ray", **QUIET)
    assert not on_ray.failures and len(on_ray.results) == len(processes.results) == 2 * 2 * 4
    assert (tmp_path / "ray" / "results.csv").read_bytes() == (tmp_path / "processes" / "results.csv").read_bytes()
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "processes")
    config = json.loads((tmp_path / "ray" / "config.json").read_text())
    assert config["backend"]["name"] == "ray" and config["status"] == "done"
    assert "on Ray" in on_ray.summary_markdown


def test_a_killed_ray_task_is_run_again_and_the_table_is_complete(tmp_path: Path, local_ray: None) -> None:
    """The first episode to select kills its worker process (SIGKILL); Ray runs that task again."""
    flag = tmp_path / "killed.pid"
    flag.write_text("")  # present: the process-backend reference run never dies
    kwargs = {DIES_ONCE: {"flag": str(flag)}}
    run_benchmark(ENV_ID, [DIES_ONCE, "random"], 2, tmp_path / "reference", agent_kwargs=kwargs, **QUIET)
    flag.unlink()
    on_ray = run_benchmark(
        ENV_ID, [DIES_ONCE, "random"], 2, tmp_path / "ray", agent_kwargs=kwargs, backend=RayBackend(max_retries=2),
        **QUIET,
    )  # fmt: skip
    assert flag.read_text().strip().isdigit(), "no task was killed"
    assert not on_ray.failures and on_ray.results.groupby(["agent", "seed"]).ngroups == 4
    assert (tmp_path / "ray" / "results.csv").read_bytes() == (tmp_path / "reference" / "results.csv").read_bytes()


def test_a_task_that_keeps_dying_is_a_recorded_failure_and_resume_finishes_it(tmp_path: Path, local_ray: None) -> None:
    flag = tmp_path / "killed.pid"
    kwargs = {DIES_ONCE: {"flag": str(flag)}}
    with pytest.warns(RuntimeWarning, match="1 of 2 episodes failed"):
        failed = run_benchmark(
            ENV_ID, [DIES_ONCE], 2, tmp_path / "out", agent_kwargs=kwargs, backend=RayBackend(max_retries=0), **QUIET
        )
    assert len(failed.failures) == 1 and "Ray task failed after 0 retries" in failed.failures[0].error
    resumed = run_benchmark(
        ENV_ID, [DIES_ONCE], 2, tmp_path / "out", agent_kwargs=kwargs, backend="ray", resume=True, **QUIET
    )
    assert resumed.resumed == 1 and not resumed.failures and resumed.results.groupby("seed").ngroups == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpus_per_task": 0}, r"cpus_per_task must be a finite number > 0, got 0"),
        ({"max_retries": -1}, r"max_retries must be an integer >= 0, got -1"),
        ({"local_cpus": 0}, r"local_cpus must be an integer >= 1 or None, got 0"),
    ],
)
def test_bad_ray_settings_name_the_value(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RayBackend(**kwargs)


def test_an_unknown_backend_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"backend must be 'process' or 'ray', got 'dask'"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path, backend="dask", **QUIET)
