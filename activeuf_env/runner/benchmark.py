"""The benchmark runner: every (agent, seed) episode of an environment, in parallel, into tables, a summary and plots.

:func:`run_episode` plays one seeded episode and returns one record per round (the reset row included, so curves
start at 0 labels). :func:`run_benchmark` runs the grid of agents × seeds in worker processes and writes, into its
output directory (SPEC §12.1):

- ``results.csv`` (always) and ``results.parquet`` (when pyarrow is installed): the tidy table, one row per
  (agent, seed, round), columns :data:`RESULT_COLUMNS`;
- ``summary.md``: per agent the final ``score``, ``rm_score`` and ``dpo_score`` (means over seeds with bootstrap
  95% CIs), the mean cumulative regret and labels-to-match (the fewest labels at which the agent's mean score curve
  reaches Random's full-budget mean score, as a fraction of the budget), plus any failure;
- ``score_vs_labels.png``, ``cumulative_regret.png``, ``final_scores.png`` (see :mod:`activeuf_env.runner.plots`);
- ``config.json``: the run's settings (env, agents, seeds, workers, W&B, command line, versions);
- ``wandb/``: one offline W&B run per episode when W&B is on (:class:`~activeuf_env.tracking.recorder.WandbRecorder`).

**Determinism.** An episode is a function of ``(env_id, env_kwargs, agent, seed)``: the env and the agent are both
reset with ``seed`` (as in the README's loop) and torch runs on ``torch_threads`` threads (1 by default) whatever
the number of workers, so the same (agent, seed) gives identical rows with 1 worker or many.

**Reliability.** A failed episode is recorded (with its error) and the others go on; the tidy table is written
before the plots, the summary and W&B are touched, and a failure of any of those is reported as a warning.

The tables and plots need the ``bench`` extra (pandas, matplotlib, tqdm): ``pip install activeuf-env[bench]``;
importing this module does not.

Change logs:
    * v0.1.0 - Initially added.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import math
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from activeuf_env.runner.metrics import NEVER, bootstrap_ci, cumulative_regret, format_fraction, labels_to_match
from activeuf_env.tracking.recorder import DEFAULT_PROJECT, WandbRecorder, WandbWarning, describe_agent, to_jsonable

__all__ = [
    "ARTEFACTS",
    "RESULT_COLUMNS",
    "SCORE_COLUMNS",
    "BenchmarkResult",
    "EpisodeFailure",
    "format_summary",
    "require_bench_extra",
    "run_benchmark",
    "run_episode",
    "summarize_results",
]

RESULT_COLUMNS: tuple[str, ...] = (
    "agent",
    "seed",
    "round",
    "labels",
    "round_labels",
    "judge_calls",
    "skipped",
    "budget",
    "rm_score",
    "dpo_score",
    "score",
    "reference_score",
    "regret",
    "cumulative_regret",
    "pair_gap",
    "label_accuracy",
    "rm_focus",
    "rm_precise",
    "rm_same_skill",
)
"""Columns of the tidy results table, one row per (agent, seed, round); round 0 is the reset (0 labels)."""

SCORE_COLUMNS: tuple[str, ...] = ("rm_score", "dpo_score", "score", "regret", "rm_focus", "rm_precise", "rm_same_skill")
"""The downstream ``info`` entries an episode must report (the env must evaluate: ``eval_every`` not ``None``)."""

ARTEFACTS: dict[str, str] = {
    "results_csv": "results.csv",
    "results_parquet": "results.parquet",
    "summary": "summary.md",
    "config": "config.json",
    "score_plot": "score_vs_labels.png",
    "regret_plot": "cumulative_regret.png",
    "final_plot": "final_scores.png",
}
"""The files :func:`run_benchmark` writes into its output directory (plus the ``wandb/`` folder)."""

_BENCH_MODULES = ("pandas", "matplotlib", "tqdm")
_REFERENCE_AGENT = "random"
_CI_SEED = 0  # the bootstrap's generator: summaries of the same table are identical


def require_bench_extra(modules: Iterable[str] = _BENCH_MODULES) -> None:
    """Check that the ``bench`` extra is installed.

    Args:
        modules: the modules to look for.

    Raises:
        ImportError: naming the missing modules and ``pip install activeuf-env[bench]``.

    Example:
        >>> require_bench_extra(["numpy"])
        >>> require_bench_extra(["no_such_module_xyz"])
        Traceback (most recent call last):
        ...
        ImportError: the benchmark needs no_such_module_xyz (the bench extra): pip install activeuf-env[bench]
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"the benchmark needs {', '.join(missing)} (the bench extra): pip install activeuf-env[bench]"
        )


# ---------------------------------------------------------------------- one episode


def _merge_env_kwargs(agent: Any, env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The user's env kwargs plus what the agent needs; a contradiction is an error naming both values."""
    merged = dict(env_kwargs or {})
    for key, value in agent.env_kwargs().items():
        if key in merged and merged[key] != value:
            raise ValueError(
                f"agent {agent.name!r} needs the env built with {key}={value!r}, "
                f"but env_kwargs sets {key}={merged[key]!r}"
            )
        merged[key] = value
    return merged


def _budget(env: gym.Env[Any, Any]) -> int:
    unwrapped = env.unwrapped
    budget = getattr(unwrapped, "budget", None)
    if budget is None:
        budget = unwrapped.pool.n_prompts  # type: ignore[attr-defined]
    return int(budget)


def _record(agent_name: str, seed: int, info: Mapping[str, Any], budget: int, reference: float) -> dict[str, Any]:
    missing = [key for key in SCORE_COLUMNS if key not in info]
    if missing:
        raise ValueError(
            f"the env's info lacks {missing}: the benchmark needs downstream scores, build the env with eval_every set "
            f"(got info keys {sorted(info)})"
        )
    return {
        "agent": agent_name,
        "seed": int(seed),
        "round": int(info["round"]),
        "labels": int(info["labels"]),
        "round_labels": int(info.get("round_labels", 0)),
        "judge_calls": int(info["judge_calls"]),
        "skipped": int(info.get("skipped", 0)),
        "budget": budget,
        "reference_score": reference,
        "pair_gap": float(info.get("pair_gap", 0.0)),
        "label_accuracy": float(info.get("label_accuracy", 0.0)),
        **{key: float(info[key]) for key in SCORE_COLUMNS},
    }


def _play_episode(
    env_id: str,
    agent_name: str,
    seed: int,
    env_kwargs: Mapping[str, Any] | None,
    agent_kwargs: Mapping[str, Any] | None,
    wandb_options: Mapping[str, Any] | None,
    torch_threads: int | None,
) -> tuple[list[dict[str, Any]], str | None, list[str]]:
    """One episode; returns (rows, W&B error or None, W&B run directories)."""
    import torch

    import activeuf_env  # noqa: F401 - registers the ActiveUF ids (in a fresh worker process too)
    import agents

    previous_threads = torch.get_num_threads()
    if torch_threads is not None and torch_threads != previous_threads:
        torch.set_num_threads(torch_threads)
    agent = agents.make(agent_name, **dict(agent_kwargs or {}))
    env: gym.Env[Any, Any] = gym.make(env_id, **_merge_env_kwargs(agent, env_kwargs))
    recorder: WandbRecorder | None = None
    if wandb_options is not None:
        recorder = WandbRecorder(env, agent=agent, **wandb_options)
        env = recorder
    try:
        obs, info = env.reset(seed=seed)
        agent.reset(seed=seed)
        budget = _budget(env)
        reference = float(env.unwrapped.reference_score())  # type: ignore[attr-defined]
        rows = [_record(agent.name, seed, info, budget, reference)]
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(agent.select(obs))
            rows.append(_record(agent.name, seed, info, budget, reference))
    finally:
        env.close()
        if torch.get_num_threads() != previous_threads:
            torch.set_num_threads(previous_threads)
    spent = np.diff([row["labels"] for row in rows], prepend=0)
    _, cumulative = cumulative_regret([row["regret"] for row in rows], spent)
    for row, value in zip(rows, cumulative, strict=True):
        row["cumulative_regret"] = float(value)
    rows = [{column: row[column] for column in RESULT_COLUMNS} for row in rows]
    if recorder is None:
        return rows, None, []
    return rows, recorder.error, [str(path) for path in recorder.run_dirs]


def run_episode(
    env_id: str,
    agent_name: str,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    agent_kwargs: Mapping[str, Any] | None = None,
    wandb: bool = False,
    wandb_dir: str | os.PathLike[str] | None = None,
    wandb_project: str = DEFAULT_PROJECT,
    wandb_mode: str | None = None,
    torch_threads: int | None = 1,
) -> list[dict[str, Any]]:
    """Play one seeded episode of ``env_id`` with an agent and return one record per round.

    The env is built with ``env_kwargs`` plus the agent's own ``env_kwargs()`` (a contradiction is an error); the env
    and the agent are both reset with ``seed``.

    Args:
        env_id: a registered environment id, e.g. ``"ActiveUF/Synthetic-v0"``.
        agent_name: a name of ``agents.registered_names()``.
        seed: the episode's seed.
        env_kwargs: overrides of the env's registered kwargs (``eval_every`` must not be ``None``).
        agent_kwargs: hyperparameters of the agent (``agents.make(agent_name, **agent_kwargs)``).
        wandb: log the episode to W&B through :class:`~activeuf_env.tracking.recorder.WandbRecorder` (a failure warns
            once and the episode goes on).
        wandb_dir: where W&B writes its ``wandb/`` folder.
        wandb_project: the W&B project.
        wandb_mode: W&B mode (``None``: offline unless configured, see
            :func:`~activeuf_env.tracking.recorder.resolve_wandb_mode`).
        torch_threads: torch threads during the episode (restored afterwards); ``None`` leaves torch's setting.

    Returns:
        One dict per round with the keys :data:`RESULT_COLUMNS` (plain ints, floats and strings); the first is
        the reset (round 0, 0 labels).

    Raises:
        ValueError: for an unknown agent, contradictory env kwargs, or an env that reports no downstream scores.

    Example:
        >>> import activeuf_env
        >>> small = {"instances": activeuf_env.SyntheticPoolConfig(n_prompts=120, feature_dim=8), "batch_size": 32,
        ...          "eval_size": 40}
        >>> rows = run_episode("ActiveUF/Synthetic-v0", "random", seed=0, env_kwargs=small)
        >>> [(row["round"], row["labels"]) for row in rows]
        [(0, 0), (1, 32), (2, 64), (3, 80)]
    """
    options = None
    if wandb:
        options = {"dir": wandb_dir, "project": wandb_project, "mode": wandb_mode, "warn": True}
    rows, _, _ = _play_episode(env_id, agent_name, seed, env_kwargs, agent_kwargs, options, torch_threads)
    return rows


@dataclasses.dataclass(frozen=True)
class EpisodeFailure:
    """An episode that raised: which one, and the error (its last traceback lines)."""

    agent: str
    seed: int
    error: str


@dataclasses.dataclass
class _Outcome:
    agent: str
    seed: int
    rows: list[dict[str, Any]]
    error: str | None = None
    wandb_error: str | None = None
    wandb_run_dirs: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


def _run_task(task: dict[str, Any]) -> _Outcome:
    """Worker entry point: one episode, with every exception turned into a recorded failure."""
    start = time.perf_counter()
    try:
        rows, wandb_error, run_dirs = _play_episode(**task)
    except Exception as exc:  # one failed episode must not stop the benchmark
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        error = "".join(lines[-3:]).strip() if len(lines) > 1 else f"{type(exc).__name__}: {exc}"
        return _Outcome(task["agent_name"], task["seed"], [], error=error, seconds=time.perf_counter() - start)
    return _Outcome(task["agent_name"], task["seed"], rows, None, wandb_error, run_dirs, time.perf_counter() - start)


# ---------------------------------------------------------------------- summary


def _ci(values: Sequence[float]) -> tuple[float, float, float]:
    return bootstrap_ci(np.asarray(values, dtype=np.float64), np.random.default_rng(_CI_SEED))


def summarize_results(results: Any, reference_agent: str = _REFERENCE_AGENT) -> Any:
    """Per-agent summary of a tidy results table: final scores with bootstrap 95% CIs over seeds, and more.

    Args:
        results: the tidy ``pandas.DataFrame`` of :func:`run_benchmark` (columns :data:`RESULT_COLUMNS`).
        reference_agent: the agent whose full-budget mean score is the labels-to-match target.

    Returns:
        A ``pandas.DataFrame`` with one row per agent (in order of first appearance): ``agent``, ``seeds``,
        ``score``/``rm_score``/``dpo_score``/``cumulative_regret`` each with ``_low`` and ``_high`` (95% CI of the
        mean over seeds, from the final round of each episode), ``budget``, ``final_labels``, ``labels_to_match``
        (labels, :data:`~activeuf_env.runner.metrics.NEVER` if never reached, ``None`` without the reference agent) and
        ``labels_to_match_fraction`` (``"1/6"``, ``"never"`` or ``"n/a"``).

    Example:
        >>> import pandas as pd
        >>> rows = [{"agent": a, "seed": s, "round": r, "labels": 64 * r, "budget": 128, "score": v, "rm_score": v,
        ...          "dpo_score": v, "cumulative_regret": 0.0}
        ...         for a, base in (("random", 0.2), ("drts", 0.3)) for s in (0, 1)
        ...         for r, v in ((0, 0.1), (1, base), (2, base + 0.05))]
        >>> summary = summarize_results(pd.DataFrame(rows))
        >>> summary[["agent", "score", "labels_to_match", "labels_to_match_fraction"]].values.tolist()
        [['random', 0.25, 128, '1'], ['drts', 0.35, 64, '1/2']]
    """
    import pandas as pd

    if results.empty:
        return pd.DataFrame(columns=["agent", "seeds"])
    ordered = results.sort_values(["agent", "seed", "round"], kind="stable")
    finals = ordered.groupby(["agent", "seed"], sort=False).tail(1)
    target = None
    if reference_agent in set(finals["agent"]):
        target = float(finals.loc[finals["agent"] == reference_agent, "score"].mean())
    rows = []
    for agent in dict.fromkeys(results["agent"]):
        final = finals[finals["agent"] == agent]
        row: dict[str, Any] = {"agent": agent, "seeds": len(final)}
        for column in ("score", "rm_score", "dpo_score", "cumulative_regret"):
            mean, low, high = _ci(final[column].to_numpy())
            row.update({column: mean, f"{column}_low": low, f"{column}_high": high})
        budget = int(final["budget"].max())
        row["budget"], row["final_labels"] = budget, float(final["labels"].mean())
        curve = ordered[ordered["agent"] == agent].groupby("round")[["labels", "score"]].mean()
        if target is None:
            row["labels_to_match"], row["labels_to_match_fraction"] = None, "n/a"
        else:
            # Mean labels per round can be fractional when seeds skip differently; never report fewer than spent.
            # The tolerance keeps the reference agent from missing its own mean by a rounding difference.
            match = labels_to_match(np.ceil(curve["labels"].to_numpy()), curve["score"].to_numpy(), target - 1e-12)
            row["labels_to_match"] = match
            row["labels_to_match_fraction"] = "never" if match == NEVER else format_fraction(match / budget, 16)
        rows.append(row)
    return pd.DataFrame(rows)


def _format_ci(mean: float, low: float, high: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def format_summary(
    summary: Any,
    *,
    env_id: str,
    seeds: Sequence[int],
    command: str | None = None,
    reference_agent: str = _REFERENCE_AGENT,
    failures: Sequence[EpisodeFailure] = (),
    notes: Sequence[str] = (),
) -> str:
    """The Markdown of ``summary.md``: a header (env, seeds, command), the per-agent table, failures and notes.

    Args:
        summary: the output of :func:`summarize_results`.
        env_id: the benchmarked env id.
        seeds: the seeds of the run.
        command: the command line that produced it.
        reference_agent: the labels-to-match reference (named in the explanation).
        failures: episodes that raised.
        notes: extra lines (e.g. W&B or plotting failures, where the artefacts are).

    Returns:
        Markdown text.
    """
    lines = [f"# Benchmark: `{env_id}`", ""]
    if command:
        lines.append(f"- command: `{command}`")
    lines.append(f"- seeds: {', '.join(str(seed) for seed in seeds)} ({len(seeds)} per agent)")
    if len(summary) and "budget" in summary:
        lines.append(f"- full budget: {int(summary['budget'].max())} labels")
    lines += [
        "- final values: means over seeds at the end of the episode, with bootstrap 95% CIs in brackets;",
        "  cum. regret = Σ over rounds of (S* − score) × labels spent in the round",
        f"- labels to match {reference_agent}: fewest labels at which the agent's mean score curve reaches "
        f"{reference_agent}'s full-budget mean score, as a fraction of the budget (labels in parentheses)",
        "",
        f"| agent | seeds | score | rm_score | dpo_score | cum. regret | labels to match {reference_agent} |",
        "|---|---|---|---|---|---|---|",
    ]
    ranked = summary.sort_values("score", ascending=False, kind="stable") if len(summary) else summary
    for _, row in ranked.iterrows():
        if row["labels_to_match"] is None or (
            isinstance(row["labels_to_match"], float) and math.isnan(row["labels_to_match"])
        ):
            match = row["labels_to_match_fraction"]
        elif int(row["labels_to_match"]) == NEVER:
            match = "never"
        else:
            match = f"{row['labels_to_match_fraction']} ({int(row['labels_to_match'])})"
        cells = [
            str(row["agent"]),
            str(int(row["seeds"])),
            *(_format_ci(row[c], row[f"{c}_low"], row[f"{c}_high"]) for c in ("score", "rm_score", "dpo_score")),
            _format_ci(row["cumulative_regret"], row["cumulative_regret_low"], row["cumulative_regret_high"], 1),
            match,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if failures:
        lines += ["", f"## Failed episodes ({len(failures)})", ""]
        for failure in failures:
            error = " ".join(failure.error.split())
            lines.append(f"- {failure.agent}, seed {failure.seed}: `{error}`")
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- the benchmark


@dataclasses.dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` produced.

    Attributes:
        out: the output directory.
        results: the tidy ``pandas.DataFrame`` (columns :data:`RESULT_COLUMNS`).
        summary: the per-agent ``pandas.DataFrame`` of :func:`summarize_results`.
        summary_markdown: the text of ``summary.md``.
        failures: episodes that raised.
        files: the artefacts written, by key of :data:`ARTEFACTS` (``wandb`` for the W&B directory).
        wandb_run_dirs: the local directory of every W&B run.
        warnings: the problems reported as warnings (W&B, plots), also listed in the summary.
        seconds: wall time of the whole run.
    """

    out: Path
    results: Any
    summary: Any
    summary_markdown: str
    failures: list[EpisodeFailure]
    files: dict[str, Path]
    wandb_run_dirs: list[Path]
    warnings: list[str]
    seconds: float


def _check_seeds(seeds: int | Iterable[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive count or a list of seeds, got {seeds!r}")
        return list(range(int(seeds)))
    values = list(seeds)  # type: ignore[arg-type]
    if not values or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in values):
        raise ValueError(f"seeds must be a non-empty list of non-negative integers, got {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"seeds must be distinct, got {values!r}")
    return [int(s) for s in values]


def _check_agents(names: Iterable[str] | None) -> list[str]:
    import agents

    known = agents.registered_names()
    selected = list(known) if names is None else list(names)
    if not selected:
        raise ValueError("agents must name at least one agent, got an empty list")
    unknown = [name for name in selected if name not in known]
    if unknown:
        raise ValueError(f"unknown agent(s) {unknown}; registered: {', '.join(known)}")
    if len(set(selected)) != len(selected):
        raise ValueError(f"agents must be distinct, got {selected}")
    return selected


def _env_settings(env_id: str, env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The env's settings without building it: constructor defaults, then registered kwargs, then overrides."""
    spec = gym.spec(env_id)
    settings: dict[str, Any] = {}
    try:
        entry = spec.entry_point
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module), attribute)
        for name, parameter in inspect.signature(entry).parameters.items():  # type: ignore[arg-type]
            if parameter.default is not inspect.Parameter.empty:
                settings[name] = parameter.default
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    settings.update(spec.kwargs)
    settings.update(env_kwargs)
    return {"env_id": env_id, **to_jsonable(settings)}


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("activeuf-env", "numpy", "torch", "gymnasium", "pandas", "wandb"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(payload), indent=2) + "\n")
    tmp.replace(path)


def _clear_outputs(out: Path) -> None:
    """Remove the artefacts of an earlier run in ``out`` (only the files this module writes, and ``wandb/``)."""
    import shutil

    for name in ARTEFACTS.values():
        (out / name).unlink(missing_ok=True)
    if (out / "wandb").is_dir():
        shutil.rmtree(out / "wandb")


def _write_tables(results: Any, out: Path) -> tuple[dict[str, Path], list[str]]:
    """Write the CSV (atomically; an error here is fatal) and the Parquet copy (a failure is only reported)."""
    files = {}
    csv = out / ARTEFACTS["results_csv"]
    results.to_csv(csv.with_name(csv.name + ".tmp"), index=False)
    csv.with_name(csv.name + ".tmp").replace(csv)
    files["results_csv"] = csv
    if importlib.util.find_spec("pyarrow") is None:
        return files, []
    parquet = out / ARTEFACTS["results_parquet"]
    try:
        results.to_parquet(parquet.with_name(parquet.name + ".tmp"), index=False)
        parquet.with_name(parquet.name + ".tmp").replace(parquet)
    except Exception as exc:  # the CSV holds the same table
        return files, [f"writing {parquet.name} failed ({type(exc).__name__}: {exc}); {csv.name} holds the table"]
    files["results_parquet"] = parquet
    return files, []


def _results_frame(outcomes: Iterable[_Outcome], agent_order: Sequence[str]) -> Any:
    import pandas as pd

    rows = [row for outcome in outcomes for row in outcome.rows]
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    if frame.empty:
        return frame
    frame["agent"] = pd.Categorical(frame["agent"], categories=list(agent_order), ordered=True)
    frame = frame.sort_values(["agent", "seed", "round"], kind="stable").reset_index(drop=True)
    frame["agent"] = frame["agent"].astype(str)
    return frame


def _run_tasks(tasks: list[dict[str, Any]], workers: int, progress: bool, outcomes: list[_Outcome]) -> None:
    """Run the episodes, appending each outcome to ``outcomes`` as it arrives (kept if interrupted)."""
    from tqdm import tqdm

    with tqdm(total=len(tasks), desc="episodes", unit="ep", disable=not progress, file=sys.stderr) as bar:

        def finish(outcome: _Outcome) -> None:
            outcomes.append(outcome)
            status = "failed" if outcome.error else f"{outcome.seconds:.1f}s"
            bar.set_postfix_str(f"{outcome.agent} seed {outcome.seed}: {status}", refresh=False)
            bar.update(1)

        if workers == 1:
            for task in tasks:
                finish(_run_task(task))
            return
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        try:
            futures: dict[Future[_Outcome], dict[str, Any]] = {executor.submit(_run_task, t): t for t in tasks}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    finish(future.result())
                except BrokenProcessPool as exc:  # a worker died (e.g. killed for memory): its episodes failed
                    finish(_Outcome(task["agent_name"], task["seed"], [], error=f"worker process died: {exc}"))
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


def _make_plots(results: Any, out: Path) -> tuple[dict[str, Path], list[str]]:
    from activeuf_env.runner import plots

    files: dict[str, Path] = {}
    problems: list[str] = []
    for key, function in (
        ("score_plot", plots.plot_score_curves),
        ("regret_plot", plots.plot_cumulative_regret),
        ("final_plot", plots.plot_final_scores),
    ):
        try:
            files[key] = function(results, out / ARTEFACTS[key])
        except Exception as exc:  # a plot failure must not lose the tables
            problems.append(f"plot {ARTEFACTS[key]} failed: {type(exc).__name__}: {exc}")
    return files, problems


def run_benchmark(
    env_id: str,
    agents: Iterable[str] | None = None,
    seeds: int | Iterable[int] = 5,
    out: str | os.PathLike[str] = "runs/bench",
    workers: int = 1,
    *,
    env_kwargs: Mapping[str, Any] | None = None,
    agent_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    wandb: bool = False,
    wandb_dir: str | os.PathLike[str] | None = None,
    wandb_project: str = DEFAULT_PROJECT,
    wandb_mode: str | None = None,
    plots: bool = True,
    progress: bool = True,
    torch_threads: int | None = 1,
    overwrite: bool = False,
    command: str | None = None,
) -> BenchmarkResult:
    """Run every (agent, seed) episode of ``env_id`` and write the tables, summary, plots and config into ``out``.

    Args:
        env_id: a registered environment id.
        agents: agent names (default: every registered agent and baseline).
        seeds: a count ``n`` (seeds ``0 .. n-1``) or the list of seeds.
        out: the output directory (created if needed).
        workers: worker processes (``spawn`` context); 1 runs the episodes in this process.
        env_kwargs: overrides of the env's registered kwargs, for every agent.
        agent_kwargs: hyperparameters per agent name, e.g. ``{"drts": {"beta": 2.0}}``.
        wandb: log one W&B run per episode (a failure warns and the benchmark goes on).
        wandb_dir: where W&B writes its ``wandb/`` folder (default: ``out``).
        wandb_project: the W&B project.
        wandb_mode: W&B mode (``None``: offline unless configured, see
            :func:`~activeuf_env.tracking.recorder.resolve_wandb_mode`).
        plots: write the PNG plots.
        progress: show a progress bar (stderr).
        torch_threads: torch threads per episode (the same whatever ``workers``, for identical results).
        overwrite: replace the artefacts of an earlier run in ``out`` (else an error if ``out`` holds results).
        command: the command line, recorded in the summary and config.

    Returns:
        A :class:`BenchmarkResult`.

    Raises:
        ValueError: for an unknown env id or agent, bad seeds or workers, or results already in ``out``.
        ImportError: when the ``bench`` extra is missing (the message says how to install it).
    """
    require_bench_extra()
    start = time.perf_counter()
    if env_id not in gym.registry:
        raise ValueError(
            f"unknown env id {env_id!r}; registered ActiveUF ids: {sorted(i for i in gym.registry if '/' in i)}"
        )
    names = _check_agents(agents)
    seed_list = _check_seeds(seeds)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    env_kwargs = dict(env_kwargs or {})
    if "eval_every" in env_kwargs and env_kwargs["eval_every"] is None:
        raise ValueError("the benchmark needs downstream scores: eval_every must be a positive integer, got None")
    agent_kwargs = {name: dict(kwargs) for name, kwargs in (agent_kwargs or {}).items()}
    stray = sorted(set(agent_kwargs) - set(names))
    if stray:
        raise ValueError(f"agent_kwargs names agents that are not run: {stray} (running {names})")
    out = Path(out)
    if (out / ARTEFACTS["results_csv"]).exists() and not overwrite:
        raise ValueError(f"{str(out)!r} already holds benchmark results; choose another out or pass overwrite=True")
    out.mkdir(parents=True, exist_ok=True)
    _clear_outputs(out)

    import agents as agent_registry

    agent_settings = {}
    for name in names:
        agent = agent_registry.make(name, **agent_kwargs.get(name, {}))
        _merge_env_kwargs(agent, env_kwargs)  # a contradiction fails now, not in every episode
        agent_settings[name] = {**describe_agent(agent), "env_kwargs": agent.env_kwargs()}
    wandb_root = Path(wandb_dir) if wandb_dir is not None else out
    wandb_options = None
    if wandb:
        wandb_options = {"dir": str(wandb_root), "project": wandb_project, "mode": wandb_mode, "warn": False}
    config: dict[str, Any] = {
        "env_id": env_id,
        "env": _env_settings(env_id, env_kwargs),
        "agents": agent_settings,
        "seeds": seed_list,
        "workers": int(workers),
        "torch_threads": torch_threads,
        "wandb": {
            "enabled": bool(wandb),
            "dir": str(wandb_root / "wandb"),
            "project": wandb_project,
            "mode": wandb_mode,
        },
        "command": command,
        "versions": _versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_json(out / ARTEFACTS["config"], {**config, "status": "running"})

    tasks = [
        {
            "env_id": env_id,
            "agent_name": name,
            "seed": seed,
            "env_kwargs": env_kwargs,
            "agent_kwargs": agent_kwargs.get(name),
            "wandb_options": wandb_options,
            "torch_threads": torch_threads,
        }
        for name in names
        for seed in seed_list
    ]
    outcomes: list[_Outcome] = []
    try:
        _run_tasks(tasks, int(workers), progress, outcomes)
    except KeyboardInterrupt:  # keep the finished episodes
        _write_tables(_results_frame(outcomes, names), out)
        raise
    outcomes.sort(key=lambda o: (names.index(o.agent), seed_list.index(o.seed)))

    results = _results_frame(outcomes, names)
    files, problems = _write_tables(results, out)
    failures = [EpisodeFailure(o.agent, o.seed, o.error) for o in outcomes if o.error is not None]
    if failures:
        problems.insert(
            0, f"{len(failures)} of {len(outcomes)} episodes failed (listed above); the others are in the table"
        )
    wandb_errors = [o.wandb_error for o in outcomes if o.wandb_error]
    if wandb_errors:
        problems.append(
            f"W&B logging failed in {len(wandb_errors)} of {len(outcomes)} episodes and was skipped there "
            f"(first error: {wandb_errors[0]}); the results are complete without it"
        )
    if plots and not results.empty:
        plot_files, plot_problems = _make_plots(results, out)
        files.update(plot_files)
        problems += plot_problems
    run_dirs = [Path(d) for o in outcomes for d in o.wandb_run_dirs]
    if run_dirs:
        files["wandb"] = wandb_root / "wandb"

    summary = summarize_results(results)
    seconds = time.perf_counter() - start
    notes = [*problems, f"wall time {seconds:.1f} s with {workers} worker(s)"]
    if run_dirs:
        notes.append(f"W&B runs ({len(run_dirs)}): `{wandb_root / 'wandb'}`")
    markdown = format_summary(summary, env_id=env_id, seeds=seed_list, command=command, failures=failures, notes=notes)
    summary_path = out / ARTEFACTS["summary"]
    summary_path.write_text(markdown)
    files["summary"] = summary_path
    files["config"] = out / ARTEFACTS["config"]
    _write_json(
        files["config"],
        {**config, "status": "done", "seconds": seconds, "failed_episodes": len(failures), "files": files},
    )
    for problem in problems:
        category = WandbWarning if problem.startswith("W&B") else RuntimeWarning
        warnings.warn(f"{problem} (see {summary_path})", category, stacklevel=2)
    return BenchmarkResult(
        out=out,
        results=results,
        summary=summary,
        summary_markdown=markdown,
        failures=failures,
        files=files,
        wandb_run_dirs=run_dirs,
        warnings=problems,
        seconds=seconds,
    )
