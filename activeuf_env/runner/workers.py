"""Running many episodes: in this process or in a pool of ``spawn`` worker processes, with a progress bar.

Every episode runs through :func:`run_task`, which turns any exception into a recorded failure, so one failed
episode (or a worker process that dies, e.g. killed for memory) never stops the others. Each outcome goes to the
caller's callback as it arrives (the benchmark stores it at once), so an interrupted run keeps its finished episodes.

**Workers end with their parent.** Each worker watches its parent process and exits as soon as the parent is gone,
however it ended (``kill -9`` included), instead of running its queued episodes for nobody; when the run stops early
(an interrupt, a callback that raises), the pool's running workers are terminated before the exception goes on.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
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


PARENT_POLL_S = 0.5
"""How often a worker checks that its parent is alive (the longest a worker outlives a killed parent, plus exit)."""


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: a daemon thread that ends the worker once ``parent`` is no longer its parent process."""

    def watch() -> None:
        # A dead parent's children are re-parented (to init or a subreaper): the parent id changes. os._exit, because
        # the main thread may be deep in an episode and nobody is left to receive its result.
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _in_pool(tasks: Sequence[EpisodeTask], workers: int, finish: Callable[[EpisodeOutcome], None]) -> None:
    before = set(multiprocessing.active_children())
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        futures: dict[Future[EpisodeOutcome], EpisodeTask] = {executor.submit(run_task, t): t for t in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                outcome = future.result()
            except BrokenProcessPool as exc:  # a worker died (e.g. killed for memory): its episodes failed
                outcome = EpisodeOutcome(task.agent_name, task.seed, [], error=f"worker process died: {exc}")
            finish(outcome)
    except BaseException:
        # Stopping early (an interrupt, a result that cannot be stored): the running episodes are lost either way,
        # so end their workers now rather than waiting for them.
        executor.shutdown(wait=False, cancel_futures=True)
        for process in set(multiprocessing.active_children()) - before:
            process.terminate()
        raise
    executor.shutdown(wait=True)


def run_tasks(
    tasks: Sequence[EpisodeTask],
    workers: int,
    *,
    progress: bool,
    on_outcome: Callable[[EpisodeOutcome], None],
) -> None:
    """Run the episodes and hand each outcome to ``on_outcome`` as it arrives (in order of completion).

    Args:
        tasks: the episodes.
        workers: 1 runs them one after the other in this process; more runs them in that many ``spawn`` processes.
        progress: show a progress bar on stderr (needs tqdm, of the ``bench`` extra).
        on_outcome: called in this process with every outcome; an exception there stops the run (the running
            workers are terminated) and goes on to the caller.
    """
    from tqdm import tqdm

    workers = check_int("workers", workers, low=1)  # type: ignore[assignment]
    with tqdm(total=len(tasks), desc="episodes", unit="ep", disable=not progress, file=sys.stderr) as bar:

        def finish(outcome: EpisodeOutcome) -> None:
            on_outcome(outcome)
            status = "failed" if outcome.error else f"{outcome.seconds:.1f}s"
            bar.set_postfix_str(f"{outcome.agent} seed {outcome.seed}: {status}", refresh=False)
            bar.update(1)

        if workers == 1:
            for task in tasks:
                finish(run_task(task))
        else:
            _in_pool(tasks, workers, finish)
