"""Running many episodes: in this process, in ``spawn`` worker processes or as Ray tasks, with a progress bar.

Every episode runs through :func:`~activeuf_env.runner.outcome.run_task`, which turns any exception into a recorded
failure, so one failed episode (or a worker process that dies, e.g. killed for memory) never stops the others. Each
outcome goes to the caller's callback as it arrives (the benchmark stores it at once), so an interrupted run keeps its
finished episodes. The Ray backend (:mod:`~activeuf_env.runner.ray_backend`) runs the same entry point as Ray tasks.

**Workers end with their parent.** Each worker watches its parent process and exits as soon as the parent is gone,
however it ended (``kill -9`` included), instead of running its queued episodes for nobody; when the run stops early
(an interrupt, a callback that raises), the pool's running workers are terminated before the exception goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from activeuf_env._validation import check_int
from activeuf_env.runner.episode import EpisodeTask
from activeuf_env.runner.outcome import EpisodeOutcome, run_task

if TYPE_CHECKING:
    from activeuf_env.runner.ray_backend import RayBackend

__all__ = ["PARENT_POLL_S", "run_tasks"]


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
    ray: RayBackend | None = None,
) -> None:
    """Run the episodes and hand each outcome to ``on_outcome`` as it arrives (in order of completion).

    Args:
        tasks: the episodes.
        workers: 1 runs them one after the other in this process; more runs them in that many ``spawn`` processes
            (ignored with ``ray``).
        progress: show a progress bar on stderr (needs tqdm, of the ``bench`` extra).
        on_outcome: called in this process with every outcome; an exception there stops the run (the running
            workers are terminated, or the Ray tasks cancelled) and goes on to the caller.
        ray: run the episodes as Ray tasks instead (:mod:`~activeuf_env.runner.ray_backend`).
    """
    from tqdm import tqdm

    workers = check_int("workers", workers, low=1)  # type: ignore[assignment]
    with tqdm(total=len(tasks), desc="episodes", unit="ep", disable=not progress, file=sys.stderr) as bar:

        def finish(outcome: EpisodeOutcome) -> None:
            on_outcome(outcome)
            status = "failed" if outcome.error else f"{outcome.seconds:.1f}s"
            bar.set_postfix_str(f"{outcome.agent} seed {outcome.seed}: {status}", refresh=False)
            bar.update(1)

        if ray is not None:
            from activeuf_env.runner.ray_backend import run_on_ray

            run_on_ray(tasks, ray, finish)
        elif workers == 1:
            for task in tasks:
                finish(run_task(task))
        else:
            _in_pool(tasks, workers, finish)
