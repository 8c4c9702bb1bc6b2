"""Instances of the environment: what an instance spec may be, and the shapes all instances must share."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from activeuf_env.core.downstream import DownstreamConfig, DownstreamEvaluator
from activeuf_env.core.judges import Judge, make_judge
from activeuf_env.core.pool import ResponsePool
from activeuf_env.core.synthetic import SyntheticPoolConfig, make_synthetic_pool

__all__ = [
    "InstanceSpec",
    "LoadedInstance",
    "as_instance_list",
    "instance_shapes",
    "load_instance",
    "load_instance_pool",
]

InstanceSpec = ResponsePool | SyntheticPoolConfig | Callable[[], ResponsePool]
"""An instance's pool: a pool, a synthetic config (drawn lazily), or a picklable zero-argument pool factory."""


def as_instance_list(instances: InstanceSpec | Sequence[InstanceSpec] | None) -> list[InstanceSpec]:
    """One spec or a list of specs as a non-empty list (``None``: the default synthetic pool)."""
    if instances is None:
        return [SyntheticPoolConfig()]
    if isinstance(instances, (ResponsePool, SyntheticPoolConfig)) or callable(instances):
        return [instances]
    specs = list(instances)
    if not specs:
        raise ValueError("instances must name at least one instance, got an empty list")
    for index, spec in enumerate(specs):
        if not (isinstance(spec, (ResponsePool, SyntheticPoolConfig)) or callable(spec)):
            raise ValueError(
                f"instance {index} must be a ResponsePool, SyntheticPoolConfig or pool factory, "
                f"got {type(spec).__name__}"
            )
    return specs


def instance_shapes(specs: list[InstanceSpec]) -> tuple[int, int, int]:
    """``(K, D, number of models)`` shared by all instances, without drawing synthetic pools."""
    shapes = []
    for spec in specs:
        if isinstance(spec, SyntheticPoolConfig):
            shapes.append((spec.n_models, spec.feature_dim, spec.n_models))
        else:
            pool = load_instance_pool(spec)
            shapes.append((pool.n_responses, pool.feature_dim, pool.n_models))
    k, d = shapes[0][0], shapes[0][1]
    for index, (k_i, d_i, _) in enumerate(shapes):
        if (k_i, d_i) != (k, d):
            raise ValueError(f"instance {index} has K={k_i}, D={d_i}; expected K={k}, D={d} like instance 0")
    return k, d, max(s[2] for s in shapes)


@functools.lru_cache(maxsize=2)
def _synthetic_pool(config: SyntheticPoolConfig) -> ResponsePool:
    """Synthetic pools are drawn once per process and config (they are read-only), so envs share them."""
    return make_synthetic_pool(config)


def load_instance_pool(spec: InstanceSpec) -> ResponsePool:
    """The pool of one instance spec: the pool itself, a synthetic draw (cached per process) or the factory's pool."""
    if isinstance(spec, ResponsePool):
        return spec
    if isinstance(spec, SyntheticPoolConfig):
        return _synthetic_pool(spec)
    return spec()


@dataclass
class LoadedInstance:
    """The loaded pools of one instance, cached between episodes (and dropped when the env is pickled)."""

    train: ResponsePool
    eval: ResponsePool
    judge: Judge
    evaluator: DownstreamEvaluator


def load_instance(
    spec: InstanceSpec,
    index: int,
    eval_size: float | int,
    split_seed: int,
    judge: tuple[str, dict[str, float] | None, Mapping[str, Any]],
    downstream: DownstreamConfig,
    device: str | torch.device = "cpu",
) -> LoadedInstance:
    """Load instance ``index``: split its pool by prompt, build its judge and its downstream evaluator.

    The split and the evaluator's seed depend only on ``(split_seed, index)``, never on an episode's seed, so every
    episode of an instance is scored against the same held-out prompts.

    Args:
        spec: the instance's pool spec.
        index: the instance's index in the env's list.
        eval_size: held-out prompts, a fraction or a count.
        split_seed: seed of the split and of the evaluator.
        judge: ``(name, noise, kwargs)`` of :func:`~activeuf_env.core.judges.make_judge`.
        downstream: the evaluator's config.
        device: where the evaluator trains its DPO proxy (see :class:`DownstreamEvaluator`).
    """
    train, held_out = load_instance_pool(spec).split(eval_size, np.random.default_rng([split_seed, index]))
    name, noise, kwargs = judge
    labeler = make_judge(train.judge_scores, name, noise, **kwargs)
    seed = int(np.random.SeedSequence([split_seed, index]).generate_state(1)[0])
    evaluator = DownstreamEvaluator(train, held_out, seed=seed, config=downstream, device=device)
    return LoadedInstance(train=train, eval=held_out, judge=labeler, evaluator=evaluator)
