"""One episode's outcome: :func:`run_task`, the entry point of every backend (worker process or Ray task), plays an
episode and turns any exception into a recorded failure, so one failed episode never stops a benchmark."""

from __future__ import annotations

import dataclasses
import time
import traceback
from typing import Any

from activeuf_env.runner.episode import EpisodeTask, play_task

__all__ = ["EpisodeFailure", "EpisodeOutcome", "run_task"]


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
