"""The checked settings of a benchmark run (:class:`Plan`), its ``config.json`` and its output folder.

:func:`make_plan` checks every argument of :func:`~activeuf_env.runner.benchmark.run_benchmark` before anything is
written; :func:`prepare_out` makes the output folder ready (refusing to overwrite a run, or to resume one with other
settings); :func:`run_config` is what ``config.json`` records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from activeuf_env._validation import check_bool, check_choice, check_int, check_type
from activeuf_env.runner.artefacts import (
    ARTEFACTS,
    EPISODES_FOLDER,
    WANDB_FAILURE_FLAG,
    WANDB_FOLDER,
    clear_outputs,
    env_settings,
    versions,
)
from activeuf_env.runner.episode import EpisodeTask, merge_env_kwargs
from activeuf_env.runner.ray_backend import RayBackend, require_ray
from activeuf_env.runner.store import ResultsNotWritten, check_same_settings
from activeuf_env.tracking.recorder import WANDB_MODES
from activeuf_env.tracking.serialize import describe_agent

__all__ = [
    "BACKENDS",
    "BENCH_TAG",
    "Plan",
    "check_agents",
    "check_backend",
    "check_seeds",
    "make_plan",
    "prepare_out",
    "run_config",
]

BENCH_TAG = "activeuf-bench"
"""The W&B tag of every benchmark run (each benchmark is also one W&B group, see ``config.json``'s ``wandb.group``)."""

BACKENDS: tuple[str, ...] = ("process", "ray")
"""Where episodes run: ``"process"`` (this process or ``spawn`` workers) or ``"ray"`` (Ray tasks)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """The checked settings of a run."""

    env_id: str
    agents: list[str]
    seeds: list[int]
    workers: int
    env_kwargs: dict[str, Any]
    agent_kwargs: dict[str, dict[str, Any]]
    out: Path
    wandb_root: Path
    wandb_options: dict[str, Any] | None
    torch_threads: int | None
    paired: str | None
    ray: RayBackend | None = None
    wandb_group: str | None = None

    def tasks(self) -> list[EpisodeTask]:
        """One task per (agent, seed), agents first."""
        return [
            EpisodeTask(
                env_id=self.env_id,
                agent_name=name,
                seed=seed,
                env_kwargs=self.env_kwargs,
                agent_kwargs=self.agent_kwargs.get(name),
                wandb_options=self.wandb_options,
                torch_threads=self.torch_threads,
            )
            for name in self.agents
            for seed in self.seeds
        ]

    def keys(self) -> list[tuple[str, int]]:
        """The (agent, seed) of every episode, in the order of :meth:`tasks`."""
        return [(name, seed) for name in self.agents for seed in self.seeds]


def check_seeds(seeds: int | Iterable[int]) -> list[int]:
    """A count ``n`` (seeds ``0 .. n-1``) or a non-empty list of distinct seeds >= 0, as a list."""
    if isinstance(seeds, (bool, int, np.integer)):
        return list(range(check_int("seeds", seeds, low=1)))  # type: ignore[arg-type]
    check_type("seeds", seeds, Iterable, "a count or a list of seeds")
    values = [check_int(f"seeds[{index}]", seed, low=0) for index, seed in enumerate(seeds)]
    if not values:
        raise ValueError("seeds must be a count or a non-empty list of seeds, got []")
    if len(set(values)) != len(values):
        raise ValueError(f"seeds must be distinct, got {values!r}")
    return values  # type: ignore[return-value]


def check_agents(names: Iterable[str] | None) -> list[str]:
    """Distinct known agent names (registered, or ``module:Class``); ``None``: every registered one."""
    import agents

    known = agents.registered_names()
    selected = list(known) if names is None else list(names)
    if not selected:
        raise ValueError("agents must name at least one agent, got an empty list")
    unknown = [name for name in selected if not agents.is_known(name)]
    if unknown:
        raise ValueError(
            f"unknown agent(s) {unknown}; registered: {', '.join(known)}; your own agent: 'my_module:MyAgent'"
        )
    if len(set(selected)) != len(selected):
        raise ValueError(f"agents must be distinct, got {selected}")
    return selected


def _check_env_kwargs(env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    if env_kwargs is not None:
        check_type("env_kwargs", env_kwargs, Mapping, "a mapping or None")
    checked = dict(env_kwargs or {})
    if "eval_every" in checked and checked["eval_every"] is None:
        raise ValueError("the benchmark needs downstream scores: eval_every must be a positive integer, got None")
    return checked


def _check_agent_kwargs(agent_kwargs: Mapping[str, Mapping[str, Any]] | None, names: list[str]) -> dict[str, Any]:
    if agent_kwargs is not None:
        check_type("agent_kwargs", agent_kwargs, Mapping, "a mapping of agent names to mappings, or None")
    checked = {name: dict(kwargs) for name, kwargs in (agent_kwargs or {}).items()}
    stray = sorted(set(checked) - set(names))
    if stray:
        raise ValueError(f"agent_kwargs names agents that are not run: {stray} (running {names})")
    return checked


def _wandb_options(wandb: bool, root: Path, out: Path, project: str, mode: str | None) -> dict[str, Any] | None:
    check_choice("wandb_mode", mode, WANDB_MODES)
    if not check_bool("wandb", wandb):
        return None
    # One failed wandb.init (e.g. no network) turns W&B off for every later episode, in every worker.
    flag = str(out / WANDB_FAILURE_FLAG)
    return {"dir": str(root), "project": project, "mode": mode, "warn": False, "failure_flag": flag}


def check_backend(backend: str | RayBackend) -> RayBackend | None:
    """``None`` for the process backend; the :class:`RayBackend` (Ray's import checked) for ``"ray"`` or one."""
    if not isinstance(backend, RayBackend) and check_choice("backend", backend, BACKENDS) == "process":
        return None
    require_ray()  # before anything is written
    return backend if isinstance(backend, RayBackend) else RayBackend()


def make_plan(
    env_id: str,
    agents: Iterable[str] | None,
    seeds: int | Iterable[int],
    out: str | os.PathLike[str],
    workers: int,
    env_kwargs: Mapping[str, Any] | None,
    agent_kwargs: Mapping[str, Mapping[str, Any]] | None,
    wandb: bool,
    wandb_dir: str | os.PathLike[str] | None,
    wandb_project: str,
    wandb_mode: str | None,
    torch_threads: int | None,
    paired: str | None,
    backend: str | RayBackend = "process",
    wandb_group: str | None = None,
) -> Plan:
    """Check every argument of :func:`~activeuf_env.runner.benchmark.run_benchmark` (before anything is written)."""
    if env_id not in gym.registry:
        ours = sorted(name for name in gym.registry if name.startswith("ActiveUF/"))
        raise ValueError(f"unknown env id {env_id!r}; registered ActiveUF ids: {ours}")
    names = check_agents(agents)
    if paired is not None and paired not in names:
        raise ValueError(f"paired must name an agent of the run ({names}), got {paired!r}")
    out = Path(out)
    wandb_root = Path(wandb_dir) if wandb_dir is not None else out
    return Plan(
        env_id=env_id,
        agents=names,
        seeds=check_seeds(seeds),
        workers=check_int("workers", workers, low=1),  # type: ignore[arg-type]
        env_kwargs=_check_env_kwargs(env_kwargs),
        agent_kwargs=_check_agent_kwargs(agent_kwargs, names),
        out=out,
        wandb_root=wandb_root,
        wandb_options=_wandb_options(wandb, wandb_root, out, wandb_project, wandb_mode),
        torch_threads=check_int("torch_threads", torch_threads, low=1, optional=True),
        paired=paired,
        ray=check_backend(backend),
        wandb_group=check_type("wandb_group", wandb_group, (str, type(None)), "a W&B group name or None"),
    )


def _holds_a_run(out: Path) -> bool:
    return any((out / name).exists() for name in (ARTEFACTS["results_csv"], ARTEFACTS["config"], EPISODES_FOLDER))


def prepare_out(plan: Plan, config: dict[str, Any], overwrite: bool, resume: bool) -> dict[str, Any]:
    """Make ``out`` ready for the run and return the config to record (a resume keeps the stored W&B group, unless
    the plan names one).

    Raises:
        ValueError: ``out`` holds a run and neither ``overwrite`` nor ``resume`` is set, both are set, or the stored
            run's settings differ from this one's (with ``resume``).
        ResultsNotWritten: ``out`` cannot be written.
    """
    out = plan.out
    if check_bool("overwrite", overwrite) and check_bool("resume", resume):
        raise ValueError("overwrite=True replaces the run in out and resume=True finishes it: choose one")
    stored_config = None
    if _holds_a_run(out) and not overwrite:
        if not resume:
            raise ValueError(
                f"{str(out)!r} already holds benchmark results; choose another out, pass resume=True (--resume) to run "
                "only its missing episodes, or overwrite=True (--overwrite) to replace it"
            )
        config_path = out / ARTEFACTS["config"]
        if config_path.is_file():
            try:
                stored_config = json.loads(config_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ValueError(f"cannot resume: {str(config_path)!r} is not JSON ({exc})") from None
            check_same_settings(stored_config, config, config_path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        clear_outputs(out, keep_episodes=resume)
    except OSError as exc:
        raise ResultsNotWritten(f"cannot write into the output directory {str(out)!r}: {exc}") from exc
    group = plan.wandb_group or (stored_config or {}).get("wandb", {}).get("group")
    group = group or f"{out.resolve().name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return {**config, "wandb": {**config["wandb"], "group": group, "tags": [BENCH_TAG]}}


def _agent_settings(plan: Plan) -> dict[str, Any]:
    """Every agent's settings for the config; builds each agent once, so a kwargs contradiction fails now."""
    import agents as agent_registry

    settings = {}
    for name in plan.agents:
        agent = agent_registry.make(name, **plan.agent_kwargs.get(name, {}))
        merge_env_kwargs(agent, plan.env_kwargs)  # a contradiction fails here, not in every episode
        settings[name] = {**describe_agent(agent), "env_kwargs": agent.env_kwargs()}
    return settings


def run_config(plan: Plan, wandb: Mapping[str, Any], command: str | None) -> dict[str, Any]:
    """What ``config.json`` records (before :func:`prepare_out` adds the W&B group); builds every agent once."""
    return {
        "env_id": plan.env_id,
        "env": env_settings(plan.env_id, plan.env_kwargs),
        "agents": _agent_settings(plan),
        "seeds": plan.seeds,
        "workers": plan.workers,
        "backend": plan.ray.describe() if plan.ray is not None else {"name": "process"},
        "torch_threads": plan.torch_threads,
        "wandb": {"enabled": plan.wandb_options is not None, "dir": str(plan.wandb_root / WANDB_FOLDER), **wandb},
        "command": command,
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
