"""``activeuf sweep``: every configuration of a grid on selection seeds, the best per agent and metric chosen there,
the chosen and default configurations re-run on fresh seeds, both rankings and the choice in ``summary.md``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import TINY_ENV_KWARGS

from activeuf_env.runner.grid import PAPER_GRID, agent_configurations, load_grid
from activeuf_env.runner.sweep import run_sweep

ENV_ID = "ActiveUF/Synthetic-v0"
GRID = {"agent": {"beta": [1.0, 2.0]}}
QUIET: dict[str, Any] = {"env_kwargs": TINY_ENV_KWARGS, "progress": False, "workers": 2}
ROOT = Path(__file__).resolve().parents[1]


def _final_means(folder: Path, metric: str) -> dict[str, float]:
    """Per agent, the mean over seeds of the final ``metric``, read from a benchmark folder's results.csv."""
    results = pd.read_csv(folder / "results.csv")
    finals = results.sort_values("round").groupby(["agent", "seed"]).tail(1)
    return finals.groupby("agent")[metric].mean().to_dict()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("sweep")
    return run_sweep(ENV_ID, GRID, ["drts", "random"], [0, 1], [5, 6], out, **QUIET)


def test_the_best_configuration_is_chosen_on_selection_seeds_and_reported_on_fresh_ones(sweep: Any) -> None:
    record = json.loads((sweep.out / "sweep.json").read_text())
    assert record["status"] == "done"
    assert {cid: entry["agents"] for cid, entry in record["configurations"].items()} == {
        "c00": ["drts"], "c01": ["drts"], "c02": ["random"],
    }  # fmt: skip
    for metric in ("dpo_score", "rm_score"):
        # drts: beta=1 (c00) against beta=2 (c01), recomputed from the selection runs' own tables.
        on_selection = {cid: _final_means(sweep.out / "selection" / cid, metric)["drts"] for cid in ("c00", "c01")}
        best = max(on_selection, key=lambda cid: (on_selection[cid], cid == "c00"))
        assert sweep.chosen["drts"][metric] == record["chosen"]["drts"][metric] == best
        assert sweep.chosen["random"][metric] == "c02"
        reported = _final_means(sweep.out / "report" / best, metric)["drts"]
        row = sweep.table.query("phase == 'report' and config == @best and agent == 'drts'")
        assert row[metric].item() == pytest.approx(reported)
    for phase, seeds in (("selection", [0, 1]), ("report", [5, 6])):
        for folder in (sweep.out / phase).iterdir():
            assert json.loads((folder / "config.json").read_text())["seeds"] == seeds, folder
    assert sorted(path.name for path in (sweep.out / "report").iterdir()) == sorted(
        {"default", *sweep.chosen["drts"].values(), "c02"}
    )
    # the two beta values do differ on this env (else the choice would test nothing)
    assert sweep.table.query("phase == 'selection' and agent == 'drts'")["dpo_score"].nunique() == 2


def test_summary_shows_both_rankings_and_the_chosen_configurations(sweep: Any) -> None:
    markdown = (sweep.out / "summary.md").read_text()
    assert markdown == sweep.summary_markdown
    for text in (
        "## Chosen by dpo_score", "## Chosen by rm_score", "| rank default | rank tuned |", "rank on selection seeds",
        "chosen on selection seeds [0, 1], reported on fresh seeds [5, 6]", "| c00 | beta=1.0 | drts |",
        "| c01 | beta=2.0 | drts |", "| c02 | defaults | random |", "Spearman correlation of the default and the tuned",
    ):  # fmt: skip
        assert text in markdown, text
    chosen = sweep.chosen["drts"]["dpo_score"]
    assert f"| {chosen}: beta={1.0 if chosen == 'c00' else 2.0} |" in markdown
    table = pd.read_csv(sweep.out / "sweep_results.csv")
    assert list(table.columns) == ["phase", "config", "agent", "seeds", "score", "dpo_score", "rm_score"]
    assert set(table["phase"]) == {"selection", "report"} and (table["seeds"] == 2).all()


def test_resume_runs_nothing_again_and_refuses_another_grid(sweep: Any) -> None:
    episodes = {p: p.stat().st_mtime_ns for p in sorted(sweep.out.rglob("episodes/*.json"))}
    with pytest.raises(ValueError, match=r"already holds a sweep; .* resume=True"):
        run_sweep(ENV_ID, GRID, ["drts", "random"], [0, 1], [5, 6], sweep.out, **QUIET)
    with pytest.raises(ValueError, match=r"cannot resume the sweep .*grid\.agent\.beta: stored \[1\.0, 2\.0\], this"):
        run_sweep(ENV_ID, {"agent": {"beta": [1.0, 3.0]}}, ["drts", "random"], [0, 1], [5, 6], sweep.out, resume=True,
                  **QUIET)  # fmt: skip
    again = run_sweep(ENV_ID, GRID, ["drts", "random"], [0, 1], [5, 6], sweep.out, resume=True, **QUIET)
    assert {p: p.stat().st_mtime_ns for p in sorted(sweep.out.rglob("episodes/*.json"))} == episodes
    pd.testing.assert_frame_equal(again.table, sweep.table)
    assert again.chosen == sweep.chosen


def test_the_cli_sweeps_a_yaml_grid(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("# a one-point grid\nreward_model:\n  replay_factor: [50]\n")
    env_kwargs = json.dumps({"instances": {"n_prompts": 100, "feature_dim": 8}, "batch_size": 20, "eval_size": 40})
    command = [
        sys.executable, "-m", "activeuf_env.cli", "sweep", "--grid", str(grid), "--agents", "random", "--seeds", "1",
        "--workers", "1", "--out", str(tmp_path / "out"), "--no-wandb", "--no-progress", "--env-kwargs", env_kwargs,
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "reported on fresh seeds [1]" in run.stdout and "c00: replay_factor=50" in run.stdout
    stored = json.loads((tmp_path / "out" / "selection" / "c00" / "config.json").read_text())
    assert stored["env"]["reward_model"]["replay_factor"] == 50
    assert stored["wandb"]["group"] == "out-sweep-c00"


def test_the_paper_grid_has_12_configurations_per_agent_with_a_beta() -> None:
    configurations = agent_configurations(PAPER_GRID, ["drts", "deltaucb", "random"])
    assert {name: len(c) for name, c in configurations.items()} == {"drts": 12, "deltaucb": 12, "random": 6}
    assert configurations["drts"][-1].label == "beta=2.0, anchor_decay=0.999, replay_factor=1000"


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"agnet": {"beta": [1]}}, r"grid got an unknown keyword 'agnet'; did you mean 'agent'\?"),
        ({"agent": {"beta": 1.0}}, r"agent\.beta must be a non-empty list of values, got 1\.0"),
        ({"agent": {"beta": []}}, r"agent\.beta must be a non-empty list of values, got \[\]"),
        ({"agent": {"beta": [1, 1]}}, r"agent\.beta lists a value twice: \[1, 1\]"),
        ({"agents": {"drts": {"betta": [1]}}}, r"agents\.drts .* got an unknown keyword 'betta'; did you mean 'beta'"),
        ({"agents": {"maxmin": {"beta": [1]}}}, r"agents section names agents that are not swept: \['maxmin'\]"),
        ({"env": {"reward_model": [1]}}, r"in the reward_model section, not env\.reward_model"),
    ],
)
def test_a_malformed_grid_names_the_entry(grid: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        agent_configurations(grid, ["drts", "random"])


def test_a_grid_file_that_does_not_parse_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "grid.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"cannot read the grid '.*grid\.json'"):
        load_grid(bad)
    wrong = tmp_path / "grid.yml"
    wrong.write_text("agent: {beta: 2}\n")
    with pytest.raises(ValueError, match=r"the grid '.*grid\.yml': agent\.beta must be a non-empty list"):
        load_grid(wrong)


def test_report_seeds_must_be_fresh(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"report_seeds must be fresh seeds, but \[1\] are selection seeds too"):
        run_sweep(ENV_ID, GRID, ["drts"], [0, 1], [1, 2], tmp_path, **QUIET)
    assert not (tmp_path / "sweep.json").exists()


def test_an_agent_without_a_successful_selection_episode_is_named() -> None:
    from activeuf_env.runner.sweep import _choose

    selection = pd.DataFrame(
        [("c00", "drts", 0.1), ("c01", "drts", 0.3), ("c02", "random", float("nan"))],
        columns=["config", "agent", "dpo_score"],
    )
    with pytest.raises(RuntimeError, match=r"every selection episode of \['random', 'maxmin'\] failed"):
        _choose(selection, "dpo_score", ["drts", "random", "maxmin"])
    assert _choose(selection, "dpo_score", ["drts"]) == {"drts": "c01"}


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"reward_model": {"anchor_decay": [0.9, 1.5]}}, r"configuration c01 \(anchor_decay=1\.5\): anchor_decay"),
        ({"reward_model": {"anchor_decya": [0.9]}}, r"configuration c00 \(anchor_decya=0\.9\): .*anchor_decya"),
        ({"agent": {"beta": [-1.0]}}, r"configuration c00 \(beta=-1\.0\): beta must be"),
    ],
)
def test_a_bad_value_fails_before_anything_runs(tmp_path: Path, grid: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_sweep(ENV_ID, grid, ["drts"], [0], [1], tmp_path / "out", **QUIET)
    assert not (tmp_path / "out").exists()
