"""Running episodes as Ray tasks: on a local Ray instance (the default) or on a Ray cluster.

Every episode is one Ray task of :func:`~activeuf_env.runner.outcome.run_task`, the entry point of the process
backend, so a task's outcome (rows, error, W&B runs) is the one a worker process would have produced, row for row.
Outcomes come back to the driver as tasks finish and go to the caller's callback there, which stores each one in the
run's per-episode store (:class:`~activeuf_env.runner.store.EpisodeStore`): the output folder of a cluster run is
written by the driver alone, needs no shared file system, and looks exactly like a local run's (``--resume`` works
the same way).

**Retries.** A task whose worker process dies (killed for memory, a lost node, ``kill -9``) is run again, up to
``max_retries`` times; an exception inside an episode is not retried (it is recorded as the episode's failure, as
with the process backend, because the same seed fails the same way again). A task that dies more often is recorded
as failed, and ``--resume`` runs it again.

**Where tasks find their code.** On a local instance the workers get the driver's ``sys.path`` (like the process
backend's ``spawn`` workers), so ``--agents my_module:MyAgent`` works from the working directory. On a cluster every
node needs ``activeuf-env`` (and any agent module of your own) installed; pass Ray's own ``runtime_env`` through
:class:`RayBackend` to ship a working directory. W&B runs are written on the node that ran the episode (use an online
W&B mode, or a ``wandb_dir`` on a shared file system, to collect them).

Ray is the optional ``ray`` extra (``pip install activeuf-env[ray]``); this module imports it only when a run starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

from activeuf_env._validation import check_int, check_number, check_type
from activeuf_env.runner.episode import EpisodeTask
from activeuf_env.runner.outcome import EpisodeOutcome, run_task

__all__ = ["DEFAULT_MAX_RETRIES", "RayBackend", "ray_connection", "require_ray", "run_on_ray"]

DEFAULT_MAX_RETRIES = 3
"""How often a task whose worker died is run again (Ray's own default for tasks)."""


def require_ray() -> ModuleType:
    """Import Ray, or raise an ``ImportError`` that names the extra to install.

    Raises:
        ImportError: Ray is not installed (``pip install activeuf-env[ray]``).
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f"the Ray backend needs the ray extra: pip install 'activeuf-env[ray]' (cannot import ray: {exc})"
        ) from None
    return ray


@dataclasses.dataclass(frozen=True)
class RayBackend:
    """Where and how the episodes run as Ray tasks.

    Attributes:
        address: a Ray cluster's address (``ray start --head`` prints it, e.g. ``"10.0.0.1:6379"``, or ``"auto"``);
            ``None`` connects to the Ray instance already started in this process or starts a local one.
        cpus_per_task: CPUs Ray reserves for each episode (fractions allowed); the episodes' torch threads are the
            benchmark's ``torch_threads``, whatever this is.
        max_retries: how often a task whose worker process died is run again.
        local_cpus: CPUs of a local instance started here (``None``: every CPU of the machine).
        runtime_env: Ray's ``runtime_env`` for the tasks (e.g. ``{"working_dir": "."}`` on a cluster).
    """

    address: str | None = None
    cpus_per_task: float = 1.0
    max_retries: int = DEFAULT_MAX_RETRIES
    local_cpus: int | None = None
    runtime_env: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.address is not None:
            check_type("address", self.address, str, "a Ray address string or None")
        check_number("cpus_per_task", self.cpus_per_task, low=0, low_open=True)
        check_int("max_retries", self.max_retries, low=0)
        check_int("local_cpus", self.local_cpus, low=1, optional=True)
        if self.runtime_env is not None:
            check_type("runtime_env", self.runtime_env, Mapping, "a mapping (Ray's runtime_env) or None")

    def describe(self) -> dict[str, Any]:
        """The settings recorded in ``config.json``."""
        return {"name": "ray", **dataclasses.asdict(self)}


def _driver_path_env() -> dict[str, Any]:
    """A ``runtime_env`` giving local workers the driver's import path (the working directory included)."""
    paths = [os.path.abspath(path or os.getcwd()) for path in sys.path]
    paths = [path for path in dict.fromkeys(paths) if os.path.isdir(path)]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}


@contextlib.contextmanager
def ray_connection(backend: RayBackend) -> Iterator[ModuleType]:
    """Connect to Ray for the ``with`` block (reusing a connection this process already has) and yield the module;
    a connection made here is closed at the end (a local instance started here stops).

    Raises:
        ImportError: Ray is not installed.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if backend.address is not None:
        ray.init(address=backend.address, runtime_env=dict(backend.runtime_env or {}) or None, **quiet)
    else:
        runtime_env = {**_driver_path_env(), **dict(backend.runtime_env or {})}
        ray.init(num_cpus=backend.local_cpus, include_dashboard=False, runtime_env=runtime_env, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


def _failed(task: EpisodeTask, backend: RayBackend, exc: BaseException) -> EpisodeOutcome:
    error = f"Ray task failed after {backend.max_retries} retries: {type(exc).__name__}: {str(exc).strip()[-500:]}"
    return EpisodeOutcome(task.agent_name, task.seed, [], error=error)


def run_on_ray(tasks: Sequence[EpisodeTask], backend: RayBackend, finish: Callable[[EpisodeOutcome], None]) -> None:
    """Run the episodes as Ray tasks and hand each outcome to ``finish`` here, in order of completion.

    Args:
        tasks: the episodes.
        backend: where and how to run them.
        finish: called in this process with every outcome; an exception there cancels the remaining tasks and goes
            on to the caller.

    Raises:
        ImportError: Ray is not installed.
    """
    with ray_connection(backend) as ray:
        remote = ray.remote(run_task).options(
            num_cpus=backend.cpus_per_task, max_retries=backend.max_retries, retry_exceptions=False
        )
        pending: dict[Any, EpisodeTask] = {remote.remote(task): task for task in tasks}
        waiting = list(pending)
        try:
            while waiting:
                (ref,), waiting = ray.wait(waiting, num_returns=1)
                task = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # its worker died more than max_retries times
                    outcome = _failed(task, backend, exc)
                finish(outcome)
        except BaseException:
            # Stopping early (an interrupt, a result that cannot be stored): the unfinished episodes are lost either
            # way, so free the cluster's CPUs now.
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
