"""Task distributions: synthetic instances drawn from ranges of pools, judges and budgets, split once into
train / validation / test (for meta-training selectors; the registered id is ``ActiveUF/SyntheticTasks-v0``).

A task is a deterministic function of its seed (:func:`draw_task`): a :class:`~activeuf_env.core.synthetic.
SyntheticPoolConfig` (responses per prompt K from 8 to 40 through the number of model families and sizes, feature
dimension, difficulty, topic mix, verbosity and length bias), a judge (score or Bradley-Terry, with flip noise,
position bias and abstention on near-ties) and a label budget (a quarter of the train prompts up to all of them, so
that skipping prompts matters). Its pool (:func:`make_task_pool`) shuffles the response slots of every prompt and
draws the models' ids afresh, so that neither a slot's position nor a model id carries anything from one task to
the next, and pads the slots to :data:`MAX_RESPONSES` (``valid`` is 0 there), so that every task has the same
observation space.

The splits are fixed sets of task seeds (:data:`TASK_SPLITS`); test tasks must never be used for training or for
choosing a checkpoint, and validation tasks are the ones to choose checkpoints on.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from activeuf_env._validation import check_choice
from activeuf_env.core.pool import ResponsePool
from activeuf_env.core.synthetic import SyntheticPoolConfig
from activeuf_env.envs.instances import load_instance_pool

__all__ = [
    "MAX_RESPONSES",
    "TASK_SPLITS",
    "Task",
    "TaskDistribution",
    "draw_task",
    "make_task_pool",
    "split_tasks",
]

MAX_RESPONSES = 40
"""Response slots of every task's observation (K of a task is at most this; the rest is padding)."""

TASK_SPLITS: dict[str, range] = {
    "test": range(0, 100),
    "validation": range(100, 200),
    "train": range(1000, 11000),
}
"""The task seeds of each split: disjoint, fixed once (a policy never trains or selects on test seeds)."""


@dataclass(frozen=True)
class TaskDistribution:
    """The ranges tasks are drawn from (``(low, high)`` inclusive for ints, uniform on ``[low, high)`` for floats).

    The defaults keep an episode at a few seconds on one CPU core (a few hundred train prompts in rounds of
    ``batch_size``); the ranges are those of the pool's own defaults, widened on both sides.
    """

    n_families: tuple[int, int] = (2, 8)
    family_size: tuple[int, int] = (2, 5)
    min_responses: int = 8
    """Fewest responses per prompt K: (families, sizes) pairs below it are drawn again."""
    n_prompts: tuple[int, int] = (288, 544)
    eval_prompts: int = 96
    feature_dims: tuple[int, ...] = (16, 32, 64)
    difficulty_scale: tuple[float, float] = (0.2, 0.9)
    topic_weight: tuple[float, float] = (0.5, 1.5)
    verbosity_weight: tuple[float, float] = (0.3, 1.3)
    judge_length_bias: tuple[float, float] = (0.0, 0.6)
    judges: tuple[str, ...] = ("score", "bradley_terry")
    flip: tuple[float, float] = (0.0, 0.15)
    position_first: tuple[float, float] = (0.5, 0.6)
    abstain_share: float = 0.25
    """Share of tasks whose judge abstains on near-ties (margin drawn in ``abstain_margin``)."""
    abstain_margin: tuple[float, float] = (0.05, 0.3)
    budget_fraction: tuple[float, float] = (0.25, 1.0)
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.n_families[1] * self.family_size[1] > MAX_RESPONSES:
            raise ValueError(
                f"at most {MAX_RESPONSES} responses per prompt, got up to {self.n_families[1]} families x "
                f"{self.family_size[1]} sizes"
            )
        for name in ("n_families", "family_size", "n_prompts"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must be a range (low, high) with 1 <= low <= high, got {(low, high)}")
        if not 2 <= self.min_responses <= self.n_families[1] * self.family_size[1]:
            raise ValueError(
                f"min_responses must be between 2 and the largest K ({self.n_families[1] * self.family_size[1]}), "
                f"got {self.min_responses}"
            )


@dataclass(frozen=True)
class Task:
    """One task instance: its pool, judge and budget (a function of ``seed``, see :func:`draw_task`)."""

    seed: int
    pool: SyntheticPoolConfig
    judge: str
    judge_noise: dict[str, float]
    judge_kwargs: dict[str, float]
    budget_fraction: float
    batch_size: int
    eval_prompts: int

    @property
    def n_responses(self) -> int:
        """Real responses per prompt K (the observation has :data:`MAX_RESPONSES` slots)."""
        return self.pool.n_models

    @property
    def budget(self) -> int:
        """The label budget: ``budget_fraction`` of the train prompts, at least one label."""
        return max(1, round(self.budget_fraction * (self.pool.n_prompts - self.eval_prompts)))

    def env_kwargs(self) -> dict[str, Any]:
        """The :class:`~activeuf_env.envs.active_uf.ActiveUFEnv` arguments of this task."""
        return {
            "instances": functools.partial(make_task_pool, self),
            "batch_size": self.batch_size,
            "budget": self.budget,
            "eval_size": self.eval_prompts,
            "judge": self.judge,
            "judge_noise": dict(self.judge_noise) or None,
            "judge_kwargs": dict(self.judge_kwargs),
        }


def draw_task(seed: int, distribution: TaskDistribution | None = None) -> Task:
    """The task of ``seed``: every range of ``distribution`` drawn from one generator seeded by ``seed``.

    Example:
        >>> task = draw_task(3)
        >>> 8 <= task.n_responses <= 40, task.budget <= task.pool.n_prompts - task.eval_prompts
        (True, True)
        >>> draw_task(3) == task
        True
    """
    dist = distribution or TaskDistribution()
    rng = np.random.default_rng([seed, 0x7A5C])

    def integer(bounds: tuple[int, int]) -> int:
        return int(rng.integers(bounds[0], bounds[1] + 1))

    def uniform(bounds: tuple[float, float]) -> float:
        return float(rng.uniform(*bounds))

    n_families, family_size = 0, 0
    while n_families * family_size < dist.min_responses:
        n_families, family_size = integer(dist.n_families), integer(dist.family_size)
    pool = SyntheticPoolConfig(
        seed=int(rng.integers(2**31)),
        n_prompts=integer(dist.n_prompts),
        n_families=n_families,
        family_size=family_size,
        feature_dim=int(rng.choice(dist.feature_dims)),
        difficulty_scale=uniform(dist.difficulty_scale),
        topic_weight=uniform(dist.topic_weight),
        verbosity_weight=uniform(dist.verbosity_weight),
        judge_length_bias=uniform(dist.judge_length_bias),
    )
    judge = str(rng.choice(dist.judges))
    noise = {"flip": uniform(dist.flip), "position": uniform(dist.position_first)}
    if rng.random() < dist.abstain_share:
        noise["tie_abstain"] = uniform(dist.abstain_margin)
    return Task(
        seed=int(seed),
        pool=pool,
        judge=judge,
        judge_noise=noise,
        judge_kwargs={},
        budget_fraction=uniform(dist.budget_fraction),
        batch_size=dist.batch_size,
        eval_prompts=dist.eval_prompts,
    )


def split_tasks(split: str, count: int | None = None) -> list[int]:
    """The first ``count`` task seeds of ``split`` (all of them when ``None``)."""
    seeds = TASK_SPLITS[check_choice("split", split, tuple(TASK_SPLITS))]
    if count is not None and not 1 <= count <= len(seeds):
        raise ValueError(f"count must be between 1 and {len(seeds)} for split {split!r}, got {count}")
    return list(seeds[:count])


def make_task_pool(task: Task) -> ResponsePool:
    """The task's pool: response slots shuffled per prompt, model ids drawn afresh, padded to :data:`MAX_RESPONSES`.

    Example:
        >>> pool = make_task_pool(draw_task(0))
        >>> pool.n_responses, int(pool.valid.sum(axis=1).min()) == draw_task(0).n_responses
        (40, True)
    """
    base = load_instance_pool(task.pool)
    rng = np.random.default_rng([task.seed, 0x51075])
    n, k = base.judge_scores.shape
    slots = rng.permuted(np.tile(np.arange(k), (n, 1)), axis=1)
    identity = rng.permutation(base.n_models)  # new id of each model

    def take(values: np.ndarray) -> np.ndarray:
        index = slots if values.ndim == 2 else slots[:, :, None]
        return np.take_along_axis(values, index, axis=1)

    def pad(values: np.ndarray, fill: Any = 0) -> np.ndarray:
        width = [(0, 0), (0, MAX_RESPONSES - k)] + [(0, 0)] * (values.ndim - 2)
        return np.pad(values, width, constant_values=fill)

    names = [""] * base.n_models
    for old, new in enumerate(identity):
        names[new] = base.model_names[old]
    return dataclasses.replace(
        base,
        features=pad(take(np.asarray(base.features, dtype=np.float32))),
        judge_scores=pad(take(base.judge_scores)),
        true_quality=pad(take(base.true_quality)),
        model_ids=pad(take(identity[base.model_ids])),
        valid=pad(take(base.valid), False),
        model_names=names,
        texts=None,  # synthetic pools have no texts; none may stay aligned with the old slots
    )
