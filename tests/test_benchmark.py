"""The benchmark runner: the episode loop, per-round records, determinism across worker counts, failures that do
not stop a run, and a package that imports cheaply and without cycles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from helpers import TINY_ENV_KWARGS, random_pairs

import agents
from activeuf_env.runner import (
    ARTEFACTS,
    RESULT_COLUMNS,
    format_summary,
    merge_env_kwargs,
    play_episode,
    run_benchmark,
    run_episode,
    summarize_results,
)
from activeuf_env.runner.metrics import cumulative_regret
from activeuf_env.tracking import WandbWarning

ENV_ID = "ActiveUF/Synthetic-v0"
SMALL = TINY_ENV_KWARGS


def test_play_episode_takes_an_agent_or_a_plain_policy() -> None:
    env = gym.make(ENV_ID, **SMALL, eval_every=None)
    steps = list(play_episode(env, agents.make("random"), seed=2))
    assert [step.index for step in steps] == [0, 1, 2, 3]
    assert [step.info["labels"] for step in steps] == [0, 20, 40, 60]
    assert [step.done for step in steps] == [False, False, False, True] and steps[0].reward == 0.0
    again = list(play_episode(env, agents.make("random"), seed=2))  # the agent is reset with the seed too
    assert [step.info["pair_gap"] for step in again[1:]] == [step.info["pair_gap"] for step in steps[1:]]

    rng = np.random.default_rng(0)
    seen: list[int] = []

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        seen.append(int(obs["prompt_valid"].sum()))
        return random_pairs(obs, rng)

    trajectory = [step.as_tuple() for step in play_episode(env, policy, seed=2)]
    assert len(trajectory) == 4 and seen == [20, 20, 20] and trajectory[-1][2] is True
    first = next(iter(play_episode(env, policy, seed=5)))  # leaving the loop early is allowed
    assert first.index == 0 and len(seen) == 3
    with pytest.raises(TypeError, match="policy must be an agent with select"):
        play_episode(env, 42, seed=0)  # type: ignore[arg-type]
    env.close()


def test_merge_env_kwargs_accepts_equal_values_and_names_a_conflict() -> None:
    maxmin = agents.make("maxmin")  # needs expose_judge_scores=True and judge_calls_per_pair="all"
    assert merge_env_kwargs(agents.make("random"), None) == {}
    merged = merge_env_kwargs(maxmin, {**SMALL, "expose_judge_scores": True})
    assert merged == {**SMALL, **maxmin.env_kwargs()}
    with pytest.raises(ValueError, match=r"agent 'maxmin' .* judge_calls_per_pair='all', .* judge_calls_per_pair=2$"):
        merge_env_kwargs(maxmin, {"judge_calls_per_pair": 2})
    with pytest.raises(TypeError, match="env_kwargs must be a mapping or None, got list"):
        merge_env_kwargs(maxmin, [("batch_size", 8)])  # type: ignore[arg-type]


def test_run_episode_returns_one_record_per_round_from_the_reset() -> None:
    rows = run_episode(ENV_ID, "drts", seed=3, env_kwargs=SMALL)
    assert [row["round"] for row in rows] == list(range(4))
    assert all(list(row) == list(RESULT_COLUMNS) for row in rows)
    assert rows[0]["labels"] == 0 and rows[0]["cumulative_regret"] == 0.0 and rows[0]["rm_score"] == 0.25
    assert [row["labels"] for row in rows] == [0, 20, 40, 60]
    assert all(row["agent"] == "drts" and row["seed"] == 3 and row["budget"] == 60 for row in rows)
    regret = [row["regret"] for row in rows]
    assert np.allclose(regret, [row["reference_score"] - row["score"] for row in rows])
    _, expected = cumulative_regret(regret, np.diff([row["labels"] for row in rows], prepend=0))
    assert np.allclose([row["cumulative_regret"] for row in rows], expected)
    assert all(type(row[key]) is float for row in rows for key in ("score", "pair_gap", "label_accuracy", "rm_focus"))


def test_run_episode_builds_the_env_with_the_agents_requirements() -> None:
    rows = run_episode(ENV_ID, "maxmin", seed=0, env_kwargs=SMALL)  # privileged: needs expose_judge_scores=True
    assert rows[-1]["judge_calls"] > 2 * rows[-1]["labels"]
    with pytest.raises(ValueError, match=r"needs the env built with expose_judge_scores=True, .*=False"):
        run_episode(ENV_ID, "maxmin", seed=0, env_kwargs={**SMALL, "expose_judge_scores": False})


def test_run_episode_needs_downstream_scores() -> None:
    with pytest.raises(ValueError, match="eval_every"):
        run_episode(ENV_ID, "random", seed=0, env_kwargs={**SMALL, "eval_every": None})


def test_worker_count_does_not_change_results(tmp_path: Path) -> None:
    common: dict[str, Any] = {"env_kwargs": SMALL, "plots": False, "progress": False}
    one = run_benchmark(ENV_ID, ["random", "drts"], [0, 7], tmp_path / "one", workers=1, **common)
    two = run_benchmark(ENV_ID, ["random", "drts"], [0, 7], tmp_path / "two", workers=2, **common)
    assert list(one.results.columns) == list(RESULT_COLUMNS)
    assert len(one.results) == 2 * 2 * 4
    pd.testing.assert_frame_equal(one.results, two.results)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "one" / "results.csv"), pd.read_csv(tmp_path / "two" / "results.csv")
    )
    alone = pd.DataFrame(run_episode(ENV_ID, "drts", seed=7, env_kwargs=SMALL))
    from_grid = one.results[(one.results["agent"] == "drts") & (one.results["seed"] == 7)].reset_index(drop=True)
    pd.testing.assert_frame_equal(from_grid, alone)


def test_a_failed_episode_is_recorded_and_the_others_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from baselines.random_pair import RandomPair

    def explode(self: Any, batch: Any) -> Any:
        raise RuntimeError("selector exploded")

    monkeypatch.setattr(RandomPair, "_select_pairs", explode)
    with pytest.warns(RuntimeWarning, match="1 of 2 episodes failed"):
        result = run_benchmark(ENV_ID, ["random", "drts"], 1, tmp_path, env_kwargs=SMALL, progress=False)
    assert [(f.agent, f.seed) for f in result.failures] == [("random", 0)]
    assert "selector exploded" in result.failures[0].error
    assert set(result.results["agent"]) == {"drts"}
    summary = (tmp_path / "summary.md").read_text()
    assert "## Failed episodes (1)" in summary and "selector exploded" in summary
    assert "| drts | 1 |" in summary and "n/a" in summary  # no random run: no labels-to-match target
    for key in ("results_csv", "score_plot", "regret_plot", "final_plot", "config"):
        assert (tmp_path / ARTEFACTS[key]).is_file(), key
    assert json.loads((tmp_path / "config.json").read_text())["failed_episodes"] == 1


def test_wandb_failure_keeps_the_table_summary_and_plots(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("W&B cannot create a directory below a file")
    out = tmp_path / "out"
    with pytest.warns(WandbWarning, match="W&B logging failed in 1 of 1 episodes"):
        result = run_benchmark(
            ENV_ID, ["random"], 1, out, env_kwargs=SMALL, wandb=True, wandb_dir=blocker / "wandb", progress=False
        )
    assert not result.failures and result.wandb_run_dirs == []
    for key in ("results_csv", "summary", "score_plot", "regret_plot", "final_plot"):
        assert (out / ARTEFACTS[key]).is_file(), key
    assert "W&B logging failed" in (out / "summary.md").read_text()
    assert len(pd.read_csv(out / "results.csv")) == 4


def test_run_benchmark_validates_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown agent\(s\) \['nope'\]; registered: dts, drts"):
        run_benchmark(ENV_ID, ["random", "nope"], 1, tmp_path)
    with pytest.raises(ValueError, match="unknown env id 'ActiveUF/Nope-v0'"):
        run_benchmark("ActiveUF/Nope-v0", ["random"], 1, tmp_path)
    with pytest.raises(ValueError, match=r"seeds must be distinct, got \[1, 1\]"):
        run_benchmark(ENV_ID, ["random"], [1, 1], tmp_path)
    with pytest.raises(ValueError, match="seeds must be an integer >= 1, got 0"):
        run_benchmark(ENV_ID, ["random"], 0, tmp_path)
    with pytest.raises(ValueError, match=r"seeds\[1\] must be an integer >= 0, got -1"):
        run_benchmark(ENV_ID, ["random"], [0, -1], tmp_path)
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path, workers=0)
    with pytest.raises(ValueError, match="torch_threads must be an integer >= 1 or None, got 0"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path, torch_threads=0)
    with pytest.raises(ValueError, match="wandb_mode must be 'online', 'offline', 'disabled' or None, got 'cloud'"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path, wandb_mode="cloud")
    with pytest.raises(ValueError, match=r"needs the env built with expose_judge_scores=True, .*=False"):
        run_benchmark(ENV_ID, ["maxmin"], 1, tmp_path, env_kwargs={"expose_judge_scores": False})
    with pytest.raises(ValueError, match=r"agent_kwargs names agents that are not run: \['dts'\]"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path, agent_kwargs={"dts": {}})
    (tmp_path / "results.csv").write_text("agent\n")
    with pytest.raises(ValueError, match="already holds benchmark results"):
        run_benchmark(ENV_ID, ["random"], 1, tmp_path)


def _table(scores: dict[str, list[list[float]]], step: int = 10) -> pd.DataFrame:
    """A tidy table from score curves per agent and seed (rounds of ``step`` labels)."""
    rows = []
    for agent, curves in scores.items():
        for seed, curve in enumerate(curves):
            for rnd, score in enumerate(curve):
                rows.append(
                    {
                        "agent": agent,
                        "seed": seed,
                        "round": rnd,
                        "labels": step * rnd,
                        "budget": step * (len(curve) - 1),
                    }
                    | {"score": score, "rm_score": 2 * score, "dpo_score": 0.0, "cumulative_regret": 1.0 - score}
                )
    return pd.DataFrame(rows)


def test_summary_labels_to_match_uses_the_mean_curve_and_random_full_budget_score() -> None:
    table = _table(
        {
            "random": [[0.0, 0.1, 0.2, 0.3], [0.0, 0.1, 0.2, 0.5]],  # full-budget mean 0.4
            "fast": [[0.0, 0.5, 0.5, 0.5], [0.0, 0.3, 0.5, 0.5]],  # mean curve 0, 0.4, ...: reaches it at 10 labels
            "slow": [[0.0, 0.1, 0.1, 0.2], [0.0, 0.1, 0.1, 0.2]],
        }
    )
    summary = summarize_results(table).set_index("agent")
    assert summary.loc["random", "score"] == pytest.approx(0.4)
    assert summary.loc["random", "labels_to_match"] == 30 and summary.loc["random", "labels_to_match_fraction"] == "1"
    assert summary.loc["fast", "labels_to_match"] == 10 and summary.loc["fast", "labels_to_match_fraction"] == "1/3"
    assert summary.loc["slow", "labels_to_match"] == -1 and summary.loc["slow", "labels_to_match_fraction"] == "never"
    low, high = summary.loc["random", "score_low"], summary.loc["random", "score_high"]
    assert 0.3 <= low < 0.4 < high <= 0.5
    text = format_summary(summary.reset_index(), env_id=ENV_ID, seeds=[0, 1], command="activeuf bench")
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in lines[1:]] == ["| fast", "| random", "| slow"]  # ranked by score
    assert lines[1].endswith("| 1/3 (10) |") and lines[3].endswith("| never |")
    assert "0.400 [" in text and "- command: `activeuf bench`" in text and "- seeds: 0, 1 (2 per agent)" in text


def test_summary_is_deterministic() -> None:
    table = _table({"random": [[0.0, 0.3], [0.0, 0.2], [0.0, 0.4]]})
    pd.testing.assert_frame_equal(summarize_results(table), summarize_results(table))


def test_summary_and_plots_share_one_bootstrap_setting() -> None:
    from activeuf_env.runner.plots import curve_stats

    table = _table({"random": [[0.0, 0.3], [0.0, 0.2], [0.0, 0.4], [0.0, 0.1]]})
    summary = summarize_results(table).set_index("agent")
    _, mean, low, high = curve_stats(table, "score")["random"]
    assert (mean[-1], low[-1], high[-1]) == tuple(summary.loc["random", ["score", "score_low", "score_high"]])


def test_the_runner_imports_cheaply_and_without_cycles() -> None:
    code = (
        "import sys, activeuf_env.tracking.offline, activeuf_env.runner.plots, activeuf_env.runner, "
        "activeuf_env.tracking, activeuf_env.cli; "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'wandb') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_paired_differences_compare_the_same_episodes(tmp_path: Path) -> None:
    result = run_benchmark(
        "ActiveUF/SyntheticTasks-v0", ["drts", "random"], 4, tmp_path, env_kwargs={"split": "test", "tasks": 2},
        paired="drts", plots=False, progress=False,
    )  # fmt: skip
    finals = result.results.groupby(["agent", "seed"]).tail(1).set_index(["agent", "seed"])["score"]
    expected = float((finals["drts"] - finals["random"]).mean())
    assert f"| random | 4 | {expected:.4f} [" in result.summary_markdown
    assert "## Paired differences: drts minus each agent" in result.summary_markdown
    with pytest.raises(ValueError, match=r"paired must name an agent of the run \(\['drts'\]\), got 'dts'"):
        run_benchmark(ENV_ID, ["drts"], 1, tmp_path / "x", paired="dts")
