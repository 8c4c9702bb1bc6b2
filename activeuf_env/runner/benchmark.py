"""The benchmark: every (agent, seed) episode of an environment, in parallel, into tables, a summary and plots.

:func:`run_benchmark` checks its arguments, runs the grid of agents × seeds (:mod:`~activeuf_env.runner.workers`,
each episode through :func:`~activeuf_env.runner.episode.play_task`) and writes into its output directory
(:mod:`~activeuf_env.runner.artefacts`):

- ``results.csv`` (always) and ``results.parquet`` (when pyarrow is installed): the tidy table, one row per
  (agent, seed, round), columns :data:`~activeuf_env.runner.episode.RESULT_COLUMNS`;
- ``summary.md``: per agent the final ``score``, ``rm_score`` and ``dpo_score`` (means over seeds with bootstrap
  95% CIs), the mean cumulative regret and labels-to-match (the fewest labels at which the agent's mean score curve
  reaches Random's full-budget mean score, as a fraction of the budget), plus any failure
  (:mod:`~activeuf_env.runner.summary`);
- ``score_vs_labels.png``, ``cumulative_regret.png``, ``final_scores.png`` (:mod:`~activeuf_env.runner.plots`);
- ``config.json``: the run's settings (env, agents, seeds, workers, W&B, command line, versions);
- ``episodes/``: one JSON file per finished episode, written as it ends (:mod:`~activeuf_env.runner.store`); the
  tables, the summary and the plots are built from these files;
- ``wandb/``: one offline W&B run per episode when W&B is on (:class:`~activeuf_env.tracking.recorder.WandbRecorder`),
  all runs of one benchmark in one W&B group (kept by a resume) and tagged ``activeuf-bench``.

**Reliability.** A failed episode is recorded (with its error) and the others go on. Every finished episode is on
disk before the next one is reported, so a fault at any point (a full disk, a read-only folder, an interrupt,
``kill -9``) keeps the finished episodes; a write that fails stops the run with :class:`ResultsNotWritten`, whose
message says what is kept where. ``resume=True`` then runs only the missing (or failed) episodes and writes the same
tables as an uninterrupted run; a resume with other settings is refused, naming the differences. The tidy table is
written before the plots and the summary, and a failure of a plot or of W&B is reported as a warning.

The tables and plots need the ``bench`` extra (pandas, matplotlib, tqdm): ``pip install activeuf-env[bench]``;
importing this module does not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from activeuf_env._validation import check_bool
from activeuf_env.runner.artefacts import ARTEFACTS, WANDB_FOLDER, write_json, write_plots, write_summary, write_tables
from activeuf_env.runner.episode import RESULT_COLUMNS
from activeuf_env.runner.extras import require_bench_extra
from activeuf_env.runner.outcome import EpisodeFailure, EpisodeOutcome
from activeuf_env.runner.plan import BENCH_TAG, Plan, make_plan, prepare_out, run_config
from activeuf_env.runner.ray_backend import RayBackend
from activeuf_env.runner.store import EpisodeStore, ResultsNotWritten
from activeuf_env.runner.summary import format_summary, paired_differences, summarize_results
from activeuf_env.runner.workers import run_tasks
from activeuf_env.tracking.recorder import DEFAULT_PROJECT, WandbWarning

__all__ = ["BenchmarkResult", "ResultsNotWritten", "run_benchmark"]


@dataclasses.dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` produced.

    Attributes:
        out: the output directory.
        results: the tidy ``pandas.DataFrame`` (columns :data:`~activeuf_env.runner.episode.RESULT_COLUMNS`).
        summary: the per-agent ``pandas.DataFrame`` of :func:`~activeuf_env.runner.summary.summarize_results`.
        summary_markdown: the text of ``summary.md``.
        failures: episodes that raised.
        files: the artefacts written, by key of :data:`~activeuf_env.runner.artefacts.ARTEFACTS` (``wandb`` for the
            W&B directory).
        wandb_run_dirs: the local directory of every W&B run.
        warnings: the problems reported as warnings (W&B, plots), also listed in the summary.
        seconds: wall time of the whole run.
        resumed: episodes taken from the store of an earlier run (0 unless ``resume=True``).
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
    resumed: int = 0


# ---------------------------------------------------------------------- results


def _results_frame(outcomes: Iterable[EpisodeOutcome], agent_order: Sequence[str]) -> Any:
    import pandas as pd

    rows = [row for outcome in outcomes for row in outcome.rows]
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    if frame.empty:
        return frame
    frame["agent"] = pd.Categorical(frame["agent"], categories=list(agent_order), ordered=True)
    frame = frame.sort_values(["agent", "seed", "round"], kind="stable").reset_index(drop=True)
    frame["agent"] = frame["agent"].astype(str)
    return frame


def _run_episodes(plan: Plan, store: EpisodeStore, progress: bool) -> int:
    """Run the grid's episodes that are not stored yet, storing each as it ends; returns how many were stored before.

    Raises:
        ResultsNotWritten: an episode could not be stored (the run stops; the message says what is kept).
    """
    stored = {(o.agent, o.seed) for o in store.read_all(plan.keys()) if o.error is None}
    tasks = [task for task in plan.tasks() if (task.agent_name, task.seed) not in stored]

    def keep(outcome: EpisodeOutcome) -> None:
        try:
            store.write(outcome)
        except OSError as exc:
            kept = sum(1 for _ in store.read_all(plan.keys()))
            raise ResultsNotWritten(
                f"could not store the episode of {outcome.agent!r} seed {outcome.seed} in {str(store.folder)!r} "
                f"({type(exc).__name__}: {exc}); {kept} of {len(plan.keys())} episodes are kept there: fix the "
                "folder (free space, permissions) and rerun with resume=True (--resume) to run only the others"
            ) from exc

    run_tasks(tasks, plan.workers, progress=progress, on_outcome=keep, ray=plan.ray)
    return len(stored)


def _episode_problems(outcomes: Sequence[EpisodeOutcome], failures: Sequence[EpisodeFailure]) -> tuple[str, str]:
    """The failure and W&B lines of the report (empty strings when there is nothing to say)."""
    failed = ""
    if failures:
        failed = f"{len(failures)} of {len(outcomes)} episodes failed (listed above); the others are in the table"
    wandb_errors = [o.wandb_error for o in outcomes if o.wandb_error]
    wandb = ""
    if wandb_errors:
        wandb = (
            f"W&B logging failed in {len(wandb_errors)} of {len(outcomes)} episodes and was skipped there "
            f"(first error: {wandb_errors[0]}); the results are complete without it"
        )
    return failed, wandb


def _warn(problems: Sequence[str], summary_path: Path) -> None:
    for problem in problems:
        category = WandbWarning if problem.startswith("W&B") else RuntimeWarning
        warnings.warn(f"{problem} (see {summary_path})", category, stacklevel=3)


@dataclasses.dataclass
class _Written:
    """The run's results and what was written (or failed) so far."""

    results: Any
    summary: Any
    files: dict[str, Path]
    problems: list[str]
    failures: list[EpisodeFailure]
    run_dirs: list[Path]


def _write_results(plan: Plan, outcomes: list[EpisodeOutcome], plots: bool) -> _Written:
    """The tidy table (written first), then the plots; every problem is collected, none raised."""
    results = _results_frame(outcomes, plan.agents)
    files, problems = write_tables(results, plan.out)
    failures = [failure for failure in (o.failure() for o in outcomes) if failure is not None]
    failed, wandb_failed = _episode_problems(outcomes, failures)
    problems = [line for line in (failed, *problems, wandb_failed) if line]
    if plots and not results.empty:
        plot_files, plot_problems = write_plots(results, plan.out)
        files.update(plot_files)
        problems += plot_problems
    run_dirs = [Path(d) for o in outcomes for d in o.wandb_run_dirs]
    if run_dirs:
        files["wandb"] = plan.wandb_root / WANDB_FOLDER
    return _Written(results, summarize_results(results), files, problems, failures, run_dirs)


def _write_summary(plan: Plan, written: _Written, seconds: float, resumed: int, command: str | None) -> str:
    """Write ``summary.md`` (and name ``config.json`` among the files); return the Markdown."""
    where = "on Ray" if plan.ray is not None else f"with {plan.workers} worker(s)"
    notes = [*written.problems, f"wall time {seconds:.1f} s {where}"]
    if resumed:
        total = len(plan.keys())
        notes.append(f"resumed: {resumed} of {total} episodes were stored by an earlier run, {total - resumed} ran now")
    if written.run_dirs:
        notes.append(f"W&B runs ({len(written.run_dirs)}): `{plan.wandb_root / WANDB_FOLDER}`")
    paired = None
    if plan.paired is not None and not written.results.empty:
        paired = (plan.paired, paired_differences(written.results, plan.paired))
    markdown = format_summary(
        written.summary,
        env_id=plan.env_id,
        seeds=plan.seeds,
        command=command,
        failures=written.failures,
        notes=notes,
        paired=paired,
    )
    written.files["summary"] = write_summary(plan.out, markdown)
    written.files["config"] = plan.out / ARTEFACTS["config"]
    return markdown


# ---------------------------------------------------------------------- the benchmark


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
    resume: bool = False,
    paired: str | None = None,
    backend: str | RayBackend = "process",
    wandb_group: str | None = None,
    command: str | None = None,
) -> BenchmarkResult:
    """Run every (agent, seed) episode of ``env_id`` and write the tables, summary, plots and config into ``out``.

    Args:
        env_id: a registered environment id.
        agents: agent names (default: every registered agent and baseline).
        seeds: a count ``n`` (seeds ``0 .. n-1``) or the list of seeds.
        out: the output directory (created if needed).
        workers: worker processes (``spawn`` context); 1 runs the episodes in this process. With the Ray backend:
            ignored (a :class:`~activeuf_env.runner.ray_backend.RayBackend` sets the local instance's CPUs).
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
        overwrite: replace the run stored in ``out`` (else an error if ``out`` holds one).
        resume: finish the run stored in ``out``: run only the episodes it lacks (or that failed there), then write
            the tables of the whole grid; the env and agent settings must be those of the stored run (seeds and
            agents may be added).
        paired: an agent of the run whose final values are compared with every other agent's, episode by episode
            (:func:`~activeuf_env.runner.summary.paired_differences`), in a table of the summary.
        backend: ``"process"`` (this process or ``workers`` processes), ``"ray"`` (Ray tasks on a local Ray instance,
            or the one this process is connected to), or a
            :class:`~activeuf_env.runner.ray_backend.RayBackend` (a cluster address, CPUs per task, retries). Same
            seeds, same rows, whatever the backend; a resume may use another backend.
        wandb_group: the W&B group of the run's episodes (default: the stored run's, or the output folder's name and
            the start time).
        command: the command line, recorded in the summary and config.

    Returns:
        A :class:`BenchmarkResult`.

    Raises:
        ValueError: for an unknown env id or agent, bad seeds, workers or threads, contradictory env kwargs, results
            already in ``out`` (without ``overwrite`` or ``resume``), or a resume with other settings.
        ResultsNotWritten: ``out`` could not be written; the finished episodes are kept (the message says where) and
            ``resume=True`` finishes the run.
        KeyboardInterrupt: the run was interrupted; the finished episodes are kept (``config.json`` says
            ``"interrupted"``).
        ImportError: when the ``bench`` extra is missing, or the ``ray`` extra with the Ray backend (the message says
            how to install it).
    """
    require_bench_extra()
    start = time.perf_counter()
    plan = make_plan(
        env_id, agents, seeds, out, workers, env_kwargs, agent_kwargs, wandb, wandb_dir, wandb_project, wandb_mode,
        torch_threads, paired, backend, wandb_group,
    )  # fmt: skip
    plots, progress = check_bool("plots", plots), check_bool("progress", progress)
    config = run_config(plan, {"project": wandb_project, "mode": wandb_mode}, command)
    config = prepare_out(plan, config, overwrite, resume)
    if plan.wandb_options is not None:
        plan = dataclasses.replace(
            plan, wandb_options={**plan.wandb_options, "group": config["wandb"]["group"], "tags": [BENCH_TAG]}
        )
    store = EpisodeStore(plan.out)
    config_path = plan.out / ARTEFACTS["config"]
    try:
        write_json(config_path, {**config, "status": "running"})
    except OSError as exc:
        raise ResultsNotWritten(f"cannot write into the output directory {str(plan.out)!r}: {exc}") from exc
    try:
        resumed = _run_episodes(plan, store, progress)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the stored episodes are what counts; the status is a courtesy
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped: {type(exc).__name__}"
            write_json(config_path, {**config, "status": status, "stored_episodes": store.count()})
        raise
    outcomes = list(store.read_all(plan.keys()))
    try:
        written = _write_results(plan, outcomes, plots)
        seconds = time.perf_counter() - start
        markdown = _write_summary(plan, written, seconds, resumed, command)
        done = {"status": "done", "seconds": seconds, "failed_episodes": len(written.failures), "files": written.files}
        write_json(written.files["config"], {**config, **done})
    except OSError as exc:
        raise ResultsNotWritten(
            f"writing the tables or the summary into {str(plan.out)!r} failed ({type(exc).__name__}: {exc}); all "
            f"{len(outcomes)} episodes are kept in {str(store.folder)!r}: fix the folder (free space, permissions) "
            "and rerun with resume=True (--resume), which runs nothing again and writes the tables"
        ) from exc
    _warn(written.problems, written.files["summary"])
    return BenchmarkResult(
        out=plan.out,
        results=written.results,
        summary=written.summary,
        summary_markdown=markdown,
        failures=written.failures,
        files=written.files,
        wandb_run_dirs=written.run_dirs,
        warnings=written.problems,
        seconds=seconds,
        resumed=resumed,
    )
