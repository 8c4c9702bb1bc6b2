"""Running many episodes: in this process or in a pool of ``spawn`` worker processes, with a progress bar.

Every episode runs through :func:`run_task`, which turns any exception into a recorded failure, so one failed
episode (or a worker process that dies, e.g. killed for memory) never stops the others. Outcomes are collected as
they arrive, so the caller keeps the finished episodes when the run is interrupted.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from activeuf_env._validation import check_int
from activeuf_env.runner.episode import EpisodeTask, play_task

__all__ = ["EpisodeFailure", "EpisodeOutcome", "run_task", "run_tasks"]


@dataclasses.dataclass(frozen=True)
class EpisodeFailure:
    """An episode that raised: which one, and the error (its last traceback lines)."""

    agent: str
    seed: int
    error: str


@dataclasses.dataclass
class EpisodeOutcome:
    """What became of one episode: its rows (empty if it failed), its error, W&B's error and runs, its wall time."""

    agent: str
    seed: int
    rows: list[dict[str, Any]]
    error: str | None = None
    wandb_error: str | None = None
    wandb_run_dirs: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def failure(self) -> EpisodeFailure | None:
        """The episode's :class:`EpisodeFailure`, or ``None`` if it succeeded."""
        return None if self.error is None else EpisodeFailure(self.agent, self.seed, self.error)


def _describe(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(lines[-3:]).strip() if len(lines) > 1 else f"{type(exc).__name__}: {exc}"


def run_task(task: EpisodeTask) -> EpisodeOutcome:
    """Worker entry point: one episode, with every exception turned into a recorded failure."""
    start = time.perf_counter()
    try:
        run = play_task(task)
    except Exception as exc:  # one failed episode must not stop the benchmark
        return EpisodeOutcome(task.agent_name, task.seed, [], error=_describe(exc), seconds=time.perf_counter() - start)
    return EpisodeOutcome(
        task.agent_name,
        task.seed,
        run.rows,
        wandb_error=run.wandb_error,
        wandb_run_dirs=list(run.wandb_run_dirs),
        seconds=time.perf_counter() - start,
    )


def _in_pool(tasks: Sequence[EpisodeTask], workers: int, finish: Callable[[EpisodeOutcome], None]) -> None:
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    try:
        futures: dict[Future[EpisodeOutcome], EpisodeTask] = {executor.submit(run_task, t): t for t in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                finish(future.result())
            except BrokenProcessPool as exc:  # a worker died (e.g. killed for memory): its episodes failed
                finish(EpisodeOutcome(task.agent_name, task.seed, [], error=f"worker process died: {exc}"))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def run_tasks(
    tasks: Sequence[EpisodeTask], workers: int, *, progress: bool, outcomes: list[EpisodeOutcome]
) -> list[EpisodeOutcome]:
    """Run the episodes, appending each outcome to ``outcomes`` as it arrives (kept if interrupted).

    Args:
        tasks: the episodes.
        workers: 1 runs them one after the other in this process; more runs them in that many ``spawn`` processes.
        progress: show a progress bar on stderr (needs tqdm, of the ``bench`` extra).
        outcomes: the list to append to (in order of completion).

    Returns:
        ``outcomes``.
    """
    from tqdm import tqdm

    workers = check_int("workers", workers, low=1)
    with tqdm(total=len(tasks), desc="episodes", unit="ep", disable=not progress, file=sys.stderr) as bar:

        def finish(outcome: EpisodeOutcome) -> None:
            outcomes.append(outcome)
            status = "failed" if outcome.error else f"{outcome.seconds:.1f}s"
            bar.set_postfix_str(f"{outcome.agent} seed {outcome.seed}: {status}", refresh=False)
            bar.update(1)

        if workers == 1:
            for task in tasks:
                finish(run_task(task))
        else:
            _in_pool(tasks, workers, finish)
    return outcomes
