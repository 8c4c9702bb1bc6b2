"""The benchmark keeps every finished episode: stored as it ends, kept through full disks, interrupts and kill -9,
finished by ``--resume`` into the same tables as an uninterrupted run, and its workers never outlive it."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import TINY_ENV_KWARGS

from activeuf_env.cli import parse_env_kwargs
from activeuf_env.runner import run_benchmark
from activeuf_env.runner.benchmark import ResultsNotWritten
from activeuf_env.runner.store import EpisodeStore

pytest.importorskip("pandas")

ENV_ID = "ActiveUF/Synthetic-v0"
SMALL = TINY_ENV_KWARGS
QUIET = {"env_kwargs": SMALL, "plots": False, "progress": False}
CLI_ENV_KWARGS = json.dumps({"instances": {"n_prompts": 120, "feature_dim": 8}, "batch_size": 32, "eval_size": 40})
ROOT = Path(__file__).resolve().parents[1]


def _stored(out: Path) -> dict[str, int]:
    """The stored episode files and their modification times (ns)."""
    return {path.name: path.stat().st_mtime_ns for path in sorted((out / "episodes").glob("*.json"))}


def _leftover_temporaries(out: Path) -> list[str]:
    return sorted(str(path.relative_to(out)) for path in out.rglob("*") if ".tmp" in path.name)


def test_a_failed_episode_write_stops_the_run_and_resume_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On today's main results lived in memory until the end: a disk that filled up mid-run lost every episode."""
    full = run_benchmark(ENV_ID, ["random", "drts"], 2, tmp_path / "full", **QUIET)

    write = EpisodeStore.write
    calls = []

    def disk_fills_up(self: EpisodeStore, outcome: Any) -> Path:
        calls.append(outcome)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, outcome)

    monkeypatch.setattr(EpisodeStore, "write", disk_fills_up)
    out = tmp_path / "out"
    with pytest.raises(ResultsNotWritten, match=r"2 of 4 episodes are kept there: .* resume=True \(--resume\)"):
        run_benchmark(ENV_ID, ["random", "drts"], 2, out, **QUIET)
    kept = _stored(out)
    assert len(kept) == 2 and not _leftover_temporaries(out)
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "stopped: ResultsNotWritten" and config["stored_episodes"] == 2
    assert not (out / "results.csv").exists()

    monkeypatch.setattr(EpisodeStore, "write", write)
    with pytest.raises(ValueError, match=r"pass resume=True \(--resume\) to run only its missing episodes"):
        run_benchmark(ENV_ID, ["random", "drts"], 2, out, **QUIET)
    resumed = run_benchmark(ENV_ID, ["random", "drts"], 2, out, resume=True, **QUIET)
    assert resumed.resumed == 2
    assert {name: mtime for name, mtime in _stored(out).items() if name in kept} == kept  # not rerun
    pd.testing.assert_frame_equal(resumed.results, full.results)
    assert (out / "results.csv").read_bytes() == (tmp_path / "full" / "results.csv").read_bytes()
    assert "resumed: 2 of 4 episodes were stored by an earlier run, 2 ran now" in resumed.summary_markdown


def test_resume_reruns_failed_episodes_and_may_add_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from baselines.random_pair import RandomPair

    select = RandomPair._select_pairs

    def explode(self: Any, batch: Any) -> Any:
        raise RuntimeError("selector exploded")

    monkeypatch.setattr(RandomPair, "_select_pairs", explode)
    with pytest.warns(RuntimeWarning, match="1 of 2 episodes failed"):
        run_benchmark(ENV_ID, ["random", "drts"], 1, tmp_path, **QUIET)
    monkeypatch.setattr(RandomPair, "_select_pairs", select)
    result = run_benchmark(ENV_ID, ["random", "drts"], 2, tmp_path, resume=True, **QUIET)
    assert result.resumed == 1 and not result.failures  # drts seed 0 kept; random seed 0 and both seeds 1 ran
    fresh = run_benchmark(ENV_ID, ["random", "drts"], 2, tmp_path / "fresh", **QUIET)
    pd.testing.assert_frame_equal(result.results, fresh.results)


def test_resume_refuses_other_settings_naming_each_difference(tmp_path: Path) -> None:
    run_benchmark(ENV_ID, ["random"], 1, tmp_path, **QUIET)
    other = {**QUIET, "env_kwargs": {**SMALL, "batch_size": 16}}
    with pytest.raises(ValueError, match=r"cannot resume: .*env\.batch_size: stored 20, this run 16"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path, resume=True, **other)
    run_benchmark(ENV_ID, ["drts"], 1, tmp_path / "b", **QUIET)
    with pytest.raises(ValueError, match=r"agents\.drts\.beta: stored 1\.0, this run 2\.0"):
        run_benchmark(ENV_ID, ["drts"], 1, tmp_path / "b", resume=True, agent_kwargs={"drts": {"beta": 2.0}}, **QUIET)
    with pytest.raises(ValueError, match="choose one"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path, resume=True, overwrite=True, **QUIET)
    # --overwrite starts afresh: the stored episodes of the old run are gone.
    run_benchmark(ENV_ID, ["random"], 1, tmp_path, overwrite=True, **{**QUIET, "env_kwargs": other["env_kwargs"]})
    assert list(_stored(tmp_path)) == ["random--seed-0.json"]


def test_a_custom_agent_path_gets_a_safe_distinct_file_name(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path)
    names = {store.path(name, 3).name for name in ("pkg.mod:Agent", "pkg.mod_Agent", "drts")}
    assert len(names) == 3 and "drts--seed-3.json" in names
    assert all(":" not in name and "/" not in name for name in names)


def _bench(out: Path, seeds: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "activeuf_env.cli", "bench", "--agents", "random,drts", "--seeds", str(seeds),
        "--out", str(out), "--no-wandb", "--no-progress", "--env-kwargs", CLI_ENV_KWARGS, *extra,
    ]  # fmt: skip


def test_a_full_disk_at_the_tables_keeps_every_episode_without_a_traceback(tmp_path: Path) -> None:
    """A 3.5 KiB file-size limit: config and episode files fit, results.csv (6 episodes) does not."""
    limit = 3584

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death when a write passes the limit
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "out"
    run = subprocess.run(
        _bench(out, 3, "--workers", "1"), capture_output=True, text=True, cwd=ROOT, preexec_fn=small_files, timeout=300
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert "all 6 episodes are kept in" in run.stderr and "--resume" in run.stderr
    assert len(_stored(out)) == 6 and not _leftover_temporaries(out)
    assert not (out / "results.csv").exists()
    finished = subprocess.run(_bench(out, 3, "--workers", "1", "--resume"), capture_output=True, text=True, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr
    assert "resumed: 6 of 6 episodes" in (out / "summary.md").read_text()
    assert len(pd.read_csv(out / "results.csv")) == 6 * 4


def _children(pid: int) -> set[int]:
    """The live descendants of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _start_and_stop(out: Path, stop: signal.Signals) -> tuple[subprocess.Popen[str], set[int]]:
    """Start a 2-worker grid, wait for its first stored episodes, send ``stop``; return the process and its
    descendants."""
    out.mkdir()
    log = (out.parent / "stderr.txt").open("w")  # a file, not a pipe: a full pipe would block the run
    proc = subprocess.Popen(_bench(out, 10, "--workers", "2"), cwd=ROOT, text=True, stderr=log)
    log.close()
    deadline = time.monotonic() + 240
    while len(_stored(out)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the benchmark ended before it could be stopped"
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(stop)
    assert len(_stored(out)) < 20, "every episode had finished: nothing was interrupted"
    return proc, workers


def _wait_until_gone(pids: set[int], seconds: float = 20.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process trees from /proc (Linux)")
def test_kill_9_mid_grid_then_resume_gives_the_uninterrupted_table(tmp_path: Path) -> None:
    """On today's main the workers of a killed benchmark ran on (about 0.5 GB each) and nothing was kept."""
    out = tmp_path / "out"
    proc, workers = _start_and_stop(out, signal.SIGKILL)
    proc.wait(timeout=30)
    assert workers, "the benchmark had no worker processes"
    assert _wait_until_gone(workers) == set(), "worker processes outlived their killed parent"
    episodes = _stored(out)
    assert len(episodes) < 20 and not _leftover_temporaries(out)

    finished = subprocess.run(_bench(out, 10, "--workers", "2", "--resume"), capture_output=True, text=True, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr
    assert {name: mtime for name, mtime in _stored(out).items() if name in episodes} == episodes  # not rerun
    assert f"resumed: {len(episodes)} of 20 episodes" in (out / "summary.md").read_text()
    cli_kwargs = {**QUIET, "env_kwargs": parse_env_kwargs(CLI_ENV_KWARGS)}
    uninterrupted = run_benchmark(ENV_ID, ["random", "drts"], 10, tmp_path / "whole", **cli_kwargs)
    assert (out / "results.csv").read_bytes() == uninterrupted.files["results_csv"].read_bytes()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process trees from /proc (Linux)")
def test_sigterm_stops_the_run_its_workers_and_says_what_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc, workers = _start_and_stop(out, signal.SIGTERM)
    proc.wait(timeout=60)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130, stderr
    assert f"interrupted; the finished episodes are kept in {out / 'episodes'}" in stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert _wait_until_gone(workers) == set()
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "interrupted" and config["stored_episodes"] == len(_stored(out))


@pytest.mark.parametrize("where", ["read-only", "below a file"])
def test_an_unwritable_out_is_a_clear_error(where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On today's main a read-only --out gave a raw traceback."""
    from activeuf_env.cli import main

    if where == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o555)
    else:
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "out"
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", "--agents", "random", "--seeds", "1", "--out", str(out), "--no-wandb", "--no-progress"])
    finally:
        if out.is_dir():
            out.chmod(0o755)
    assert exit_info.value.code == 2
    assert f"cannot write into the output directory {str(out)!r}" in capsys.readouterr().err
