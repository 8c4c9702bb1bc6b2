"""The paper's tuning protocol as a sweep: every configuration of a grid on *selection* seeds, per agent the best
configuration (separately for ``dpo_score`` and ``rm_score``), then the chosen and the default configurations re-run
and reported on *fresh* seeds.

ActiveUltraFeedback tuned every method over 12 configurations (:data:`~activeuf_env.runner.grid.PAPER_GRID`) and
reported the best of the same single run, which favours whichever method's scores vary most between configurations;
choosing on some seeds and reporting on others removes that optimism, and ``summary.md`` shows both, beside the
default configuration's scores and rankings.

Each configuration is one benchmark (:func:`~activeuf_env.runner.benchmark.run_benchmark`, on any backend) of the
agents it applies to, in its own folder with its own W&B group; so a sweep's episodes are stored as they end and
``resume=True`` finishes an interrupted sweep, running only the missing episodes. The output folder:

- ``selection/<id>/``, ``report/default/`` and ``report/<id>/``: one benchmark folder per configuration and phase;
- ``sweep.json``: the grid, every configuration (id, label, agents), the seeds, the chosen configurations;
- ``sweep_results.csv``: the mean final ``score``, ``dpo_score`` and ``rm_score`` of every (phase, configuration,
  agent) over its seeds;
- ``summary.md``: per metric, each agent's default and tuned scores, the rankings, and the chosen configurations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym

from activeuf_env._io import atomic_write_text
from activeuf_env._validation import check_bool
from activeuf_env.runner.artefacts import write_json, write_summary
from activeuf_env.runner.benchmark import run_benchmark
from activeuf_env.runner.extras import require_bench_extra
from activeuf_env.runner.grid import Configuration, agent_configurations, load_grid
from activeuf_env.runner.plan import check_agents, check_backend, check_seeds
from activeuf_env.runner.ray_backend import RayBackend, ray_connection
from activeuf_env.runner.store import ResultsNotWritten, settings_differences
from activeuf_env.runner.sweep_report import SWEEP_METRICS, format_sweep_summary
from activeuf_env.tracking.recorder import DEFAULT_PROJECT
from activeuf_env.tracking.serialize import to_jsonable

__all__ = ["SWEEP_METRICS", "SweepResult", "run_sweep"]

SWEEP_RECORD = "sweep.json"
"""The sweep's record in its output folder: grid, configurations, seeds, choice and status."""

DEFAULT_ID = "default"
"""The id of the configuration without overrides (every agent's and the env's defaults)."""


@dataclasses.dataclass
class SweepResult:
    """What :func:`run_sweep` produced.

    Attributes:
        out: the output folder.
        table: ``pandas.DataFrame`` of ``sweep_results.csv``: ``phase`` (``selection`` / ``report``), ``config``,
            ``agent``, ``seeds`` and the mean final ``score``, ``dpo_score``, ``rm_score``.
        configurations: every configuration by id (``"default"`` included).
        chosen: per agent and metric of :data:`SWEEP_METRICS`, the id of the configuration chosen on the selection
            seeds.
        summary_markdown: the text of ``summary.md``.
        seconds: wall time of the sweep.
    """

    out: Path
    table: Any
    configurations: dict[str, Configuration]
    chosen: dict[str, dict[str, str]]
    summary_markdown: str
    seconds: float


def _number_configurations(per_agent: Mapping[str, list[Configuration]]) -> dict[str, Configuration]:
    """Every distinct configuration once, ids ``c00``, ``c01``, ... in order of first appearance."""
    distinct: dict[str, Configuration] = {}
    for configurations in per_agent.values():
        for configuration in configurations:
            distinct.setdefault(configuration.key(), configuration)
    width = max(2, len(str(len(distinct) - 1)))
    return {f"c{index:0{width}d}": c for index, c in enumerate(distinct.values())}


def _env_kwargs(env_id: str, base: Mapping[str, Any], configuration: Configuration) -> dict[str, Any]:
    """The env kwargs of one configuration: the user's, its env entries, its ensemble fields in the env's config."""
    kwargs = {**base, **configuration.env}
    if configuration.reward_model:
        from activeuf_env import RewardModelConfig

        current = kwargs.get("reward_model") or gym.spec(env_id).kwargs.get("reward_model") or RewardModelConfig()
        kwargs["reward_model"] = dataclasses.replace(current, **configuration.reward_model)
    return kwargs


@dataclasses.dataclass(frozen=True)
class _Sweep:
    """The settings every benchmark of the sweep shares."""

    env_id: str
    env_kwargs: dict[str, Any]
    agent_kwargs: dict[str, dict[str, Any]]
    out: Path
    group: str
    options: dict[str, Any]

    def check(self, configurations: Mapping[str, Configuration], record: Mapping[str, Any]) -> None:
        """Build every configuration's env kwargs and agents once, so that a bad value fails before anything runs."""
        import agents as agent_registry

        for cid, configuration in configurations.items():
            try:
                _env_kwargs(self.env_id, self.env_kwargs, configuration)
                for name in record["configurations"][cid]["agents"]:
                    agent_registry.make(name, **{**self.agent_kwargs.get(name, {}), **configuration.agent})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"the grid's configuration {cid} ({configuration.label}): {exc}") from None

    def run(self, phase: str, config_id: str, configuration: Configuration, agents: list[str], seeds: list[int]) -> Any:
        """One configuration's benchmark; returns its per-agent summary rows (mean final values over seeds)."""
        agent_kwargs = {name: {**self.agent_kwargs.get(name, {}), **configuration.agent} for name in agents}
        result = run_benchmark(
            self.env_id,
            agents,
            seeds,
            self.out / phase / config_id,
            env_kwargs=_env_kwargs(self.env_id, self.env_kwargs, configuration),
            agent_kwargs=agent_kwargs,
            wandb_group=f"{self.group}-{config_id}",
            plots=phase == "report",
            **self.options,
        )
        summary = result.summary[["agent", "seeds", "score", "dpo_score", "rm_score"]].copy()
        summary.insert(0, "config", config_id)
        summary.insert(0, "phase", phase)
        return summary


def _choose(selection: Any, metric: str, names: list[str]) -> dict[str, str]:
    """Per agent, the configuration with the highest mean ``metric`` on the selection seeds (the first of a tie)."""
    scored = selection.dropna(subset=[metric])
    best = scored.loc[scored.groupby("agent", sort=False)[metric].idxmax()]
    chosen = dict(zip(best["agent"], best["config"], strict=True))
    failed = [name for name in names if name not in chosen]
    if failed:
        raise RuntimeError(f"every selection episode of {failed} failed; see the summaries under selection/")
    return chosen


def _run_phases(
    sweep: _Sweep,
    configurations: Mapping[str, Configuration],
    record: dict[str, Any],
    selection: list[int],
    report: list[int],
) -> tuple[Any, dict[str, dict[str, str]]]:
    """Every configuration on the selection seeds, the choice per agent and metric (recorded in ``sweep.json`` at
    once), then the default and the chosen configurations on the report seeds; returns the table and the choice."""
    import pandas as pd

    names = record["agents"]
    frames = [
        sweep.run("selection", cid, c, record["configurations"][cid]["agents"], selection)
        for cid, c in configurations.items()
    ]
    selected = pd.concat(frames, ignore_index=True)
    chosen_by_metric = {metric: _choose(selected, metric, names) for metric in SWEEP_METRICS}
    chosen = {name: {metric: chosen_by_metric[metric][name] for metric in SWEEP_METRICS} for name in names}
    write_json(sweep.out / SWEEP_RECORD, {**record, "chosen": chosen, "status": "reporting"})
    frames = [selected, sweep.run("report", DEFAULT_ID, Configuration(), names, report)]
    for cid, configuration in configurations.items():
        chosers = [name for name in names if cid in chosen[name].values()]
        if chosers:
            frames.append(sweep.run("report", cid, configuration, chosers, report))
    return pd.concat(frames, ignore_index=True), chosen


_SAME_ON_RESUME: tuple[str, ...] = ("env_id", "grid", "agents", "selection_seeds", "report_seeds")


def _prepare_sweep_out(out: Path, record: dict[str, Any], overwrite: bool, resume: bool) -> None:
    """Refuse to replace a stored sweep unless asked, or to resume one of another grid; then write ``sweep.json``."""
    stored = out / SWEEP_RECORD
    if overwrite and resume:
        raise ValueError("overwrite=True replaces the sweep in out and resume=True finishes it: choose one")
    if stored.exists() and not overwrite:
        if not resume:
            raise ValueError(
                f"{str(out)!r} already holds a sweep; choose another out, pass resume=True (--resume) to finish it, "
                "or overwrite=True (--overwrite) to replace it"
            )
        before = json.loads(stored.read_text(encoding="utf-8"))
        current = json.loads(json.dumps(to_jsonable({key: record[key] for key in _SAME_ON_RESUME})))
        differences = settings_differences({key: before.get(key) for key in _SAME_ON_RESUME}, current)
        if differences:
            raise ValueError(f"cannot resume the sweep in {str(out)!r}: " + "; ".join(differences))
    if overwrite:
        for phase in ("selection", "report"):
            shutil.rmtree(out / phase, ignore_errors=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json(stored, record)
    except OSError as exc:
        raise ResultsNotWritten(f"cannot write into the output directory {str(out)!r}: {exc}") from exc


def run_sweep(
    env_id: str,
    grid: str | os.PathLike[str] | Mapping[str, Any],
    agents: Iterable[str] | None = None,
    selection_seeds: int | Iterable[int] = 3,
    report_seeds: Iterable[int] | None = None,
    out: str | os.PathLike[str] = "runs/sweep",
    workers: int = 1,
    *,
    env_kwargs: Mapping[str, Any] | None = None,
    agent_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    wandb: bool = False,
    wandb_dir: str | os.PathLike[str] | None = None,
    wandb_project: str = DEFAULT_PROJECT,
    wandb_mode: str | None = None,
    progress: bool = True,
    backend: str | RayBackend = "process",
    overwrite: bool = False,
    resume: bool = False,
    command: str | None = None,
) -> SweepResult:
    """Tune every agent over ``grid`` on the selection seeds and report the chosen configurations on fresh seeds.

    Args:
        env_id: a registered environment id.
        grid: a grid (:mod:`~activeuf_env.runner.grid`): a mapping, or a JSON / YAML file.
        agents: the agents (default: every registered agent and baseline).
        selection_seeds: a count ``n`` (seeds ``0 .. n-1``) or the seeds the configurations are chosen on.
        report_seeds: the seeds the chosen and default configurations are reported on; none of the selection seeds
            (default: as many seeds, following the largest selection seed).
        out: the output folder.
        workers, env_kwargs, wandb, wandb_dir, wandb_project, wandb_mode, progress, backend, command: as for
            :func:`~activeuf_env.runner.benchmark.run_benchmark`, for every configuration's benchmark.
        agent_kwargs: hyperparameters per agent that the grid does not set (the grid's values win).
        overwrite: replace the sweep stored in ``out``.
        resume: finish the sweep stored in ``out`` (run only its missing episodes).

    Returns:
        A :class:`SweepResult`.

    Raises:
        ValueError: a malformed grid (naming the entry), seeds that overlap, or any error of
            :func:`~activeuf_env.runner.benchmark.run_benchmark`; ``out`` holding a sweep without ``overwrite`` or
            ``resume``.
    """
    require_bench_extra()
    start = time.perf_counter()
    names = check_agents(agents)
    grid = load_grid(grid)  # read and checked once
    per_agent = agent_configurations(grid, names)
    selection = check_seeds(selection_seeds)
    first_fresh = max(selection) + 1
    report = check_seeds(report_seeds if report_seeds is not None else range(first_fresh, first_fresh + len(selection)))
    overlap = sorted(set(selection) & set(report))
    if overlap:
        raise ValueError(f"report_seeds must be fresh seeds, but {overlap} are selection seeds too")
    ray = check_backend(backend)
    out = Path(out)
    configurations = _number_configurations(per_agent)
    record: dict[str, Any] = {
        "env_id": env_id,
        "grid": grid,
        "agents": names,
        "selection_seeds": selection,
        "report_seeds": report,
        "configurations": {
            cid: {"label": c.label, **c.as_dict(), "agents": [a for a in names if c in per_agent[a]]}
            for cid, c in configurations.items()
        },
        "command": command,
        "status": "selecting",
    }
    sweep = _Sweep(
        env_id=env_id,
        env_kwargs=dict(env_kwargs or {}),
        agent_kwargs={name: dict(kwargs) for name, kwargs in (agent_kwargs or {}).items()},
        out=out,
        group=f"{out.resolve().name}-sweep",
        options={
            "workers": workers, "wandb": wandb, "wandb_dir": wandb_dir, "wandb_project": wandb_project,
            "wandb_mode": wandb_mode, "progress": progress, "backend": ray or "process", "overwrite": overwrite,
            "resume": resume, "command": command,
        },
    )  # fmt: skip
    sweep.check(configurations, record)
    _prepare_sweep_out(out, record, check_bool("overwrite", overwrite), check_bool("resume", resume))
    with contextlib.ExitStack() as stack:
        if ray is not None:  # one Ray connection for every configuration's benchmark
            stack.enter_context(ray_connection(ray))
        table, chosen = _run_phases(sweep, configurations, record, selection, report)
    atomic_write_text(out / "sweep_results.csv", table.to_csv(index=False))

    all_configurations = {DEFAULT_ID: Configuration(), **configurations}
    markdown = format_sweep_summary(table, chosen, all_configurations, record, command)
    write_summary(out, markdown)
    seconds = time.perf_counter() - start
    write_json(out / SWEEP_RECORD, {**record, "chosen": chosen, "status": "done", "seconds": seconds})
    return SweepResult(out, table, all_configurations, chosen, markdown, seconds)
