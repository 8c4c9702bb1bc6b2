"""Rollouts of the learned selector and of a teacher on task instances, separable from the training loop.

:func:`play_policy` plays one (task, seed) episode of ``ActiveUF/SyntheticTasks-v0`` with a policy and records what
training needs: per round the features, the valid mask, the choices, and the score after the round.
:func:`play_teacher` plays the same (task, seed) with a hand-designed agent: its scores are the paired baseline, and
its choices (mapped to the policy's choice indices) are the imitation targets. :func:`run_jobs` runs a list of
either in this process or in ``spawn`` worker processes, so the training loop does not care where episodes run.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

from agents.learned.agent import choices_to_pairs
from agents.learned.policy import PolicyConfig, SelectorPolicy, observation_features, sample_pairs

__all__ = ["Rollout", "env_kwargs_for", "play_policy", "play_teacher", "run_jobs", "task_env"]

_ENVS: dict[tuple[str, tuple[Any, ...]], Any] = {}


@dataclasses.dataclass
class Rollout:
    """One episode: per round the inputs and the choices, and the score before and after each round.

    Attributes:
        task, seed: the task seed and the episode seed.
        features: per round ``[B, K, F]`` float32 (empty for a teacher rollout without ``record``).
        valid: per round ``[B, K]`` bool.
        choices: per round ``[B]`` int64 choice indices (``K * K`` is the skip).
        scores: ``score`` at the reset and after every round (``len(choices) + 1`` entries).
        final: the final ``rm_score``, ``dpo_score`` and ``score``.
        targets: per round ``[B]`` the labeller's choice indices (empty without a labeller).
    """

    task: int
    seed: int
    features: list[torch.Tensor]
    valid: list[torch.Tensor]
    choices: list[torch.Tensor]
    scores: list[float]
    final: dict[str, float]
    targets: list[torch.Tensor] = dataclasses.field(default_factory=list)


def env_kwargs_for(*names: str) -> dict[str, Any]:
    """The env settings every rollout of a run uses: the union of what the agents ``names`` need."""
    import agents
    from activeuf_env.runner.episode import merge_env_kwargs

    kwargs: dict[str, Any] = {}
    for name in names:
        kwargs = merge_env_kwargs(agents.make(name), kwargs)
    return kwargs


def _choice_indices(pairs: np.ndarray, n_slots: int) -> torch.Tensor:
    """An ``[B, 2]`` action as the policy's choice indices (``i == j``: the skip, ``K * K``)."""
    choice = torch.as_tensor(pairs[:, 0] * n_slots + pairs[:, 1])
    choice[torch.as_tensor(pairs[:, 0] == pairs[:, 1])] = n_slots * n_slots
    return choice


def task_env(split: str, env_kwargs: dict[str, Any] | None = None) -> Any:
    """The process's ``SyntheticTasks-v0`` env of a split and settings (built once per process: it caches its task
    envs)."""
    from activeuf_env.envs.task_env import SyntheticTasksEnv

    key = (split, tuple(sorted((env_kwargs or {}).items(), key=str)))
    if key not in _ENVS:
        _ENVS[key] = SyntheticTasksEnv(split=split, **(env_kwargs or {}))
    return _ENVS[key]


def _final(info: dict[str, Any]) -> dict[str, float]:
    return {key: float(info[key]) for key in ("rm_score", "dpo_score", "score")}


def play_policy(
    state: dict[str, torch.Tensor],
    config: PolicyConfig,
    split: str,
    task: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    label: str | None = None,
    greedy: bool = False,
) -> Rollout:
    """One episode of the policy with weights ``state`` on (task, seed), sampling seeded by (task, seed); with
    ``label``, the choices that agent would make in each of the policy's states are recorded as ``targets``."""
    import agents

    policy = SelectorPolicy(config)
    policy.load_state_dict(state)
    policy.eval()
    env = task_env(split, env_kwargs)
    labeller = None if label is None else agents.make(label)
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([task, seed, 17]).generate_state(1)[0]))
    obs, info = env.reset(seed=seed, options={"task": task})
    if labeller is not None:
        labeller.reset(seed=seed, info=info)
    rollout = Rollout(task, seed, [], [], [], [float(info["score"])], {})
    done = False
    while not done:
        _, features, valid = observation_features(obs, len(rollout.choices))
        with torch.no_grad():
            choices = sample_pairs(policy(features, valid), generator, greedy)
        rollout.features.append(features)
        rollout.valid.append(valid)
        rollout.choices.append(choices)
        if labeller is not None:
            rollout.targets.append(_choice_indices(labeller.select(obs), valid.shape[1]))
        obs, _, terminated, truncated, info = env.step(choices_to_pairs(choices, valid.shape[1]))
        rollout.scores.append(float(info["score"]))
        done = terminated or truncated
    rollout.final = _final(info)
    return rollout


def play_teacher(name: str, split: str, task: int, seed: int, env_kwargs: dict[str, Any] | None = None) -> Rollout:
    """One episode of the agent ``name`` on (task, seed) (its scores; no inputs recorded)."""
    import agents

    agent = agents.make(name)
    env = task_env(split, env_kwargs)
    obs, info = env.reset(seed=seed, options={"task": task})
    agent.reset(seed=seed, info=info)
    rollout = Rollout(task, seed, [], [], [], [float(info["score"])], {})
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(agent.select(obs))
        rollout.scores.append(float(info["score"]))
        done = terminated or truncated
    rollout.final = _final(info)
    return rollout


def _call(job: tuple[Callable[..., Rollout], tuple[Any, ...]]) -> Rollout:
    function, arguments = job
    torch.set_num_threads(1)  # one core per worker: the same arithmetic whatever the number of workers
    return function(*arguments)


class _Runner:
    """Runs jobs in this process (``workers=1``) or in a pool of ``spawn`` workers kept between calls."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, jobs: Sequence[tuple[Callable[..., Rollout], tuple[Any, ...]]]) -> list[Rollout]:
        if self.workers == 1:
            return [_call(job) for job in jobs]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return list(self._pool.map(_call, jobs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def run_jobs(workers: int) -> _Runner:
    """A runner of ``(function, arguments)`` rollout jobs, results in job order (``close()`` it when done)."""
    return _Runner(workers)
