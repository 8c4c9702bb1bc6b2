"""One episode: the loop every runner of the package uses, the env kwargs an agent needs, and the per-round record.

:func:`play_episode` is *the* episode loop: it resets the env and the policy with one seed, then steps until the
episode terminates or is truncated, yielding one :class:`Step` per point of the episode (the reset first). The
benchmark, the ``activeuf episode`` command, the paper-table script, the timing script and the tests all run their
episodes through it, so an episode means the same thing everywhere.

:func:`merge_env_kwargs` is the one rule for building an env for an agent: the user's env kwargs plus the agent's
``env_kwargs()``; a key both set is fine when the values are equal, and a :class:`ValueError` naming the key and both
values when they differ.

:func:`run_episode` plays one seeded benchmark episode and returns its rows of the tidy results table (columns
:data:`RESULT_COLUMNS`, the reset row included, so curves start at 0 labels).

**Determinism.** A benchmark episode is a function of ``(env_id, env_kwargs, agent, seed)``: the env and the agent
are both reset with ``seed`` and torch runs on ``torch_threads`` threads (1 by default) whatever the number of
worker processes, so the same (agent, seed) gives identical rows with 1 worker or many.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, SupportsFloat, TypeAlias, runtime_checkable

import gymnasium as gym
import numpy as np

from activeuf_env._validation import check_int, check_type
from activeuf_env.runner.metrics import episode_cumulative_regret
from activeuf_env.tracking.recorder import DEFAULT_PROJECT, WandbRecorder

__all__ = [
    "RESULT_COLUMNS",
    "SCORE_COLUMNS",
    "Agent",
    "EpisodeRun",
    "EpisodeTask",
    "Policy",
    "Step",
    "episode_records",
    "make_env",
    "merge_env_kwargs",
    "play_episode",
    "play_task",
    "run_episode",
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

Observation: TypeAlias = Mapping[str, np.ndarray]


@runtime_checkable
class Agent(Protocol):
    """What the runner needs of an agent (every :class:`agents.Agent` is one)."""

    name: str

    def reset(self, seed: int | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Re-seed the agent; ``info`` is the env's reset info (an agent may accept ``seed`` alone)."""

    def select(self, obs: Observation) -> np.ndarray:
        """The ``[B, 2]`` pairs to label for an observation."""

    def env_kwargs(self) -> dict[str, Any]:
        """The env constructor kwargs the agent needs."""


Policy: TypeAlias = "Agent | Callable[[Observation], np.ndarray]"
"""An agent (reset with the episode's seed) or a plain function from an observation to an action (not reset)."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One point of an episode: the reset (``index`` 0) or the outcome of one ``env.step``.

    Attributes:
        index: 0 for the reset, then the number of steps taken.
        obs: the observation (the next one the policy sees).
        reward: the step's reward (0.0 for the reset).
        terminated, truncated: the env's flags (``False`` for the reset).
        info: the env's ``info`` dict.
    """

    index: int
    obs: Any
    reward: SupportsFloat
    terminated: bool
    truncated: bool
    info: dict[str, Any]

    @property
    def done(self) -> bool:
        """Whether the episode ended here (terminated or truncated)."""
        return self.terminated or self.truncated

    def as_tuple(self) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """``(obs, reward, terminated, truncated, info)``, as ``env.step`` returns them."""
        return self.obs, self.reward, self.terminated, self.truncated, self.info


def play_episode(env: gym.Env[Any, Any], policy: Policy, seed: int | None) -> Iterator[Step]:
    """Reset ``env`` and ``policy`` with ``seed`` and step until the episode ends, yielding every :class:`Step`.

    The env is reset first, then the policy (``policy.reset(seed=seed, info=info)`` with the env's reset info, or
    ``policy.reset(seed=seed)`` when its reset takes no ``info``; a plain function is not
    reset). Each step asks the policy for an action on the latest observation. The loop stops after the step that
    terminates or truncates the episode; the caller may stop earlier by leaving the loop. The env is not closed.

    Args:
        env: the environment (possibly wrapped).
        policy: an agent (anything with ``select(obs)``, and optionally ``reset(seed=)``) or a function
            ``obs -> action``.
        seed: the seed of the env's reset and of the agent.

    Returns:
        An iterator of steps: the reset (``index`` 0), then one per ``env.step``.

    Raises:
        TypeError: when ``policy`` has no ``select`` and is not callable.

    Example:
        >>> import gymnasium as gym
        >>> import activeuf_env, agents
        >>> pool = activeuf_env.SyntheticPoolConfig(n_prompts=120, feature_dim=8)
        >>> env = gym.make("ActiveUF/Synthetic-v0", instances=pool, batch_size=32, eval_size=40, eval_every=None)
        >>> [(step.index, step.info["labels"], step.done) for step in play_episode(env, agents.make("random"), seed=0)]
        [(0, 0, False), (1, 32, False), (2, 64, False), (3, 80, True)]
    """
    select = getattr(policy, "select", policy)
    if not callable(select):
        raise TypeError(f"policy must be an agent with select(obs) or a function of obs, got {type(policy).__name__}")
    reset = getattr(policy, "reset", None) if hasattr(policy, "select") else None
    return _steps(env, select, reset, seed)


def _steps(
    env: gym.Env[Any, Any], select: Callable[[Any], Any], reset: Callable[..., Any] | None, seed: int | None
) -> Iterator[Step]:
    obs, info = env.reset(seed=seed)
    if reset is not None:
        # The reset info (model names, ...) goes to agents that take it; a plain reset(seed) is still an agent.
        parameters = inspect.signature(reset).parameters
        if "info" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            reset(seed=seed, info=info)
        else:
            reset(seed=seed)
    step = Step(0, obs, 0.0, False, False, info)
    yield step
    while not step.done:
        obs, reward, terminated, truncated, info = env.step(select(step.obs))
        step = Step(step.index + 1, obs, reward, bool(terminated), bool(truncated), info)
        yield step


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays: an ambiguous comparison is a conflict
        return False


def merge_env_kwargs(agent: Any, env_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The user's env kwargs plus what the agent needs: the one rule for building an env for an agent.

    A key set by both is fine when the two values are equal (the agent's value is kept); different values are an
    error.

    Args:
        agent: an agent (its ``env_kwargs()`` and ``name`` are used).
        env_kwargs: the user's overrides of the env's registered kwargs.

    Returns:
        A new dict: ``env_kwargs`` updated with ``agent.env_kwargs()``.

    Raises:
        ValueError: naming the agent, the key and both values, when they differ.

    Example:
        >>> import agents
        >>> maxmin = agents.make("maxmin")
        >>> maxmin.env_kwargs()
        {'expose_judge_scores': True, 'judge_calls_per_pair': 'all'}
        >>> merge_env_kwargs(maxmin, {"batch_size": 16, "expose_judge_scores": True})
        {'batch_size': 16, 'expose_judge_scores': True, 'judge_calls_per_pair': 'all'}
        >>> merge_env_kwargs(maxmin, {"expose_judge_scores": False})
        Traceback (most recent call last):
        ...
        ValueError: agent 'maxmin' needs the env built with expose_judge_scores=True, but env_kwargs sets expose_judge_scores=False
    """  # noqa: E501 - the doctest's message is one line
    if env_kwargs is not None:
        check_type("env_kwargs", env_kwargs, Mapping, "a mapping or None")
    merged = dict(env_kwargs or {})
    for key, value in agent.env_kwargs().items():
        if key in merged and not _same(merged[key], value):
            raise ValueError(
                f"agent {getattr(agent, 'name', type(agent).__name__)!r} needs the env built with {key}={value!r}, "
                f"but env_kwargs sets {key}={merged[key]!r}"
            )
        merged[key] = value
    return merged


def make_env(env_id: str, agent: Any, env_kwargs: Mapping[str, Any] | None = None) -> gym.Env[Any, Any]:
    """``gym.make(env_id, ...)`` with :func:`merge_env_kwargs` of the agent and the user's kwargs."""
    return gym.make(env_id, **merge_env_kwargs(agent, env_kwargs))


# ---------------------------------------------------------------------- the benchmark's record of an episode


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


def episode_records(env: gym.Env[Any, Any], steps: Iterable[Step], agent_name: str, seed: int) -> list[dict[str, Any]]:
    """The results-table rows of an episode: one per step, with its budget, ``S*`` and cumulative regret.

    Args:
        env: the episode's env (its budget and reference score are read after the reset).
        steps: the episode's steps, from :func:`play_episode`.
        agent_name: the ``agent`` column.
        seed: the ``seed`` column.

    Returns:
        One dict per step with the keys :data:`RESULT_COLUMNS` in order (plain ints, floats and strings).

    Raises:
        ValueError: when the env's ``info`` lacks the downstream scores (:data:`SCORE_COLUMNS`).
    """
    rows: list[dict[str, Any]] = []
    budget, reference = 0, 0.0
    for step in steps:
        if step.index == 0:
            budget = _budget(env)
            reference = float(env.unwrapped.reference_score())  # type: ignore[attr-defined]
        rows.append(_record(agent_name, seed, step.info, budget, reference))
    cumulative = episode_cumulative_regret([row["regret"] for row in rows], [row["labels"] for row in rows])
    for row, value in zip(rows, cumulative, strict=True):
        row["cumulative_regret"] = float(value)
    return [{column: row[column] for column in RESULT_COLUMNS} for row in rows]


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with torch on ``threads`` threads (``None``: as it is), then restore torch's setting."""
    import torch

    previous = torch.get_num_threads()
    if threads is not None and threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


@dataclasses.dataclass(frozen=True)
class EpisodeTask:
    """One benchmark episode to play, as plain picklable settings (what a worker process receives).

    Attributes:
        env_id: a registered environment id.
        agent_name: a name of ``agents.registered_names()``.
        seed: the episode's seed.
        env_kwargs: overrides of the env's registered kwargs.
        agent_kwargs: hyperparameters of the agent.
        wandb_options: keyword arguments of :class:`~activeuf_env.tracking.recorder.WandbRecorder`; ``None``: no
            W&B.
        torch_threads: torch threads during the episode; ``None`` leaves torch's setting.
    """

    env_id: str
    agent_name: str
    seed: int
    env_kwargs: Mapping[str, Any] | None = None
    agent_kwargs: Mapping[str, Any] | None = None
    wandb_options: Mapping[str, Any] | None = None
    torch_threads: int | None = 1


@dataclasses.dataclass(frozen=True)
class EpisodeRun:
    """What one benchmark episode produced: its rows, and its W&B error and run directories (if W&B was on)."""

    rows: list[dict[str, Any]]
    wandb_error: str | None = None
    wandb_run_dirs: tuple[str, ...] = ()


def play_task(task: EpisodeTask) -> EpisodeRun:
    """Play one benchmark episode: build the agent and its env (and W&B recorder), run the loop, record the rows."""
    import activeuf_env  # noqa: F401 - registers the ActiveUF ids (in a fresh worker process too)
    import agents

    with _torch_threads(task.torch_threads):
        agent = agents.make(task.agent_name, **dict(task.agent_kwargs or {}))
        env = make_env(task.env_id, agent, task.env_kwargs)
        recorder: WandbRecorder | None = None
        if task.wandb_options is not None:
            recorder = WandbRecorder(env, agent=agent, **task.wandb_options)
            env = recorder
        try:
            rows = episode_records(env, play_episode(env, agent, task.seed), task.agent_name, task.seed)
        finally:
            env.close()
    if recorder is None:
        return EpisodeRun(rows)
    return EpisodeRun(rows, recorder.error, tuple(str(path) for path in recorder.run_dirs))


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

    The env is built with ``env_kwargs`` plus the agent's own ``env_kwargs()`` (:func:`merge_env_kwargs`); the env
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
        ValueError: for an unknown agent, a bad seed, contradictory env kwargs, or an env that reports no downstream
            scores.

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
    task = EpisodeTask(
        env_id=env_id,
        agent_name=agent_name,
        seed=check_int("seed", seed, low=0),
        env_kwargs=env_kwargs,
        agent_kwargs=agent_kwargs,
        wandb_options=options,
        torch_threads=check_int("torch_threads", torch_threads, low=1, optional=True),
    )
    return play_task(task).rows
