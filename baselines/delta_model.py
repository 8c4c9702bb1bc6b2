"""The ``delta_model`` baseline: the responses of two fixed models of one family, the larger one labelled chosen."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from agents.base import Agent, Batch, check_int

__all__ = ["DeltaModel", "parse_model_size", "pick_delta_pair"]

ORDINAL_SIZES: tuple[str, ...] = ("xs", "s", "m", "l", "xl")
"""Size names read as ranks when a model name has no parameter count (the synthetic pool's ``fam1-l``)."""

# A parameter count such as ``7b``, ``3B`` or ``1.5B`` standing alone between separators (``Mixtral-8x7B`` has none:
# the count of an expert mixture says nothing about a family's sizes).
_PARAMETER_COUNT = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)[bB](?![A-Za-z0-9])")


def parse_model_size(name: str) -> tuple[str, float] | None:
    """Split a model name into its family and its size.

    The size is the parameter count in billions (``"gemma-7b-it"`` -> ``("gemma-*-it", 7.0)``), or, without one, the
    rank of a trailing size name of :data:`ORDINAL_SIZES` (``"fam1-l"`` -> ``("fam1-*", 4.0)``). Models of one family
    differ only in that part of the name, so a version in the name (``vicuna-13b-v1.5``) keeps families apart.

    Returns:
        ``(family, size)``, or ``None`` when the name carries no size.

    Example:
        >>> parse_model_size("FuseChat-Llama-3.2-3B-Instruct")
        ('FuseChat-Llama-3.2-*-Instruct', 3.0)
        >>> parse_model_size("fam1-l"), parse_model_size("Mixtral-8x7B-Instruct-v0.1"), parse_model_size("claude-2")
        (('fam1-*', 4.0), None, None)
    """
    match = _PARAMETER_COUNT.search(name)
    if match is not None:
        return name[: match.start()] + "*" + name[match.end() :], float(match.group(1))
    head, _, tail = name.rpartition("-")
    if head and tail in ORDINAL_SIZES:
        return head + "-*", float(ORDINAL_SIZES.index(tail) + 1)
    return None


def pick_delta_pair(model_names: Sequence[str]) -> tuple[int, int]:
    """The default model pair of ``delta_model`` on a pool: ``(chosen id, rejected id)``.

    Rule: among the families with at least two sizes (:func:`parse_model_size`), take the one with the most sizes;
    of its sizes sorted ascending, ``chosen`` is the one at index ``ceil(n / 2)`` and ``rejected`` the next smaller
    one, i.e. two *adjacent* sizes in the middle of the family. Ties between families go to the one whose pair has
    the largest size ratio (then to the lowest model id). The delta-learning recipe pairs a larger with a smaller
    model of one family for a consistent quality gap; within a family a middle pair keeps both models near a
    mid-skill SFT policy, where DPO learns most (a family's largest against its smallest model is a large gap far
    off that support); between families, the larger ratio is the clearer contrast (AUF's DeltaQwen pairs 32B with
    0.6B). Two models of one size keep the lower id.

    Raises:
        ValueError: when no family has two sizes (the message says to pass ``chosen_model``/``rejected_model``).

    Example:
        >>> pick_delta_pair(["fam0-xs", "fam0-s", "fam0-m", "fam0-l", "fam0-xl", "other"])
        (3, 2)
        >>> pick_delta_pair(["claude-2", "gemma-2b-it", "gemma-7b-it", "falcon-7b-instruct", "falcon-40b-instruct"])
        (4, 3)
    """
    families: dict[str, dict[float, int]] = {}
    for model_id, name in enumerate(model_names):
        parsed = parse_model_size(str(name))
        if parsed is not None:
            families.setdefault(parsed[0], {}).setdefault(parsed[1], model_id)
    candidates = [sizes for sizes in families.values() if len(sizes) >= 2]
    if not candidates:
        raise ValueError(
            "delta_model found no model family with two sizes in the pool's model names; pass chosen_model= and "
            f"rejected_model= (ids or names), got names {list(model_names)[:8]}{'...' if len(model_names) > 8 else ''}"
        )

    def middle_pair(sizes: dict[float, int]) -> tuple[float, float]:
        ordered = sorted(sizes)
        middle = -(-len(ordered) // 2)
        return ordered[middle], ordered[middle - 1]

    def preference(sizes: dict[float, int]) -> tuple[int, float, int]:
        larger, smaller = middle_pair(sizes)
        return len(sizes), larger / smaller if smaller > 0 else math.inf, -min(sizes.values())

    sizes = max(candidates, key=preference)
    larger, smaller = middle_pair(sizes)
    return sizes[larger], sizes[smaller]


@dataclass
class DeltaModel(Agent):
    r"""Fixed model pair (``delta_model``), judge-free: AUF's DeltaQwen.

    Rule, per prompt::

        i = the slot whose model_ids == chosen model     (the larger model: labelled chosen, no judge call)
        j = the slot whose model_ids == rejected model
        skip (i = j = 0) when either model has no valid response in the prompt

    The two models are given by id or by name, or, by default, picked from the pool's model names by
    :func:`pick_delta_pair` (two adjacent sizes in the middle of a family). Names are resolved when the agent is
    reset with the env's reset ``info`` (its ``model_names``), which :func:`activeuf_env.runner.play_episode` passes.
    Per registered env the default picks: ``ActiveUF/Synthetic-v0`` ``fam0-l`` vs ``fam0-m``;
    ``ActiveUF/AlpacaEval-v0`` ``falcon-40b-instruct`` vs ``falcon-7b-instruct`` (every family there has two sizes;
    falcon's ratio, 5.7, is the largest; override: ``chosen_model="gemma-7b-it", rejected_model="gemma-2b-it"``).

    Slots are located through ``obs["model_ids"]`` (never assumed equal to model ids); if a model wrote several
    valid responses of a prompt, the first slot is used. :meth:`env_kwargs` asks the env for ``labeler="first"``,
    so ``i`` is taken as chosen by construction and the judge is never called.

    Origin: the delta-learning recipe of Geng et al. (2025), "The Delta Learning Hypothesis" (a larger against a
    smaller model of one family, e.g. Qwen 3B vs 1.5B), AUF's DeltaQwen baseline (arXiv 2603.09692).

    Hyperparameters:
        chosen_model: id (``>= 0``) or name of the larger model; ``None``: picked by :func:`pick_delta_pair`.
        rejected_model: id or name of the smaller model; ``None`` together with ``chosen_model``. Distinct.

    Deviations from AUF's released code: none in the rule (AUF binarizes its dataset offline from the two Qwen
    models' completions).

    Example:
        >>> import numpy as np
        >>> agent = DeltaModel(chosen_model="fam0-l", rejected_model="fam0-m")
        >>> agent.reset(seed=0, info={"model_names": ("fam0-xs", "fam0-s", "fam0-m", "fam0-l")})
        >>> agent.model_pair
        (3, 2)
        >>> obs = {"model_ids": np.array([[2, 0, 3], [1, 3, 0]]),
        ...        "valid": np.ones((2, 3), np.int8), "prompt_valid": np.ones(2, np.int8)}
        >>> agent.select(obs)  # the second prompt has no response of model 2: skipped
        array([[2, 0],
               [0, 0]])
        >>> agent.env_kwargs()
        {'labeler': 'first'}
    """

    name: ClassVar[str] = "delta_model"
    obs_keys: ClassVar[tuple[str, ...]] = ("model_ids",)

    chosen_model: int | str | None = None
    rejected_model: int | str | None = None

    def _validate(self) -> None:
        for field in ("chosen_model", "rejected_model"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                setattr(self, field, check_int(field, value, low=0))
        if (self.chosen_model is None) != (self.rejected_model is None):
            raise ValueError(
                "chosen_model and rejected_model must both be given or both be None, "
                f"got {self.chosen_model!r} and {self.rejected_model!r}"
            )
        if self.chosen_model is not None and self.chosen_model == self.rejected_model:
            raise ValueError(f"chosen_model and rejected_model must differ, got {self.chosen_model!r} for both")
        self._pair = self._pair_by_id()

    @property
    def model_pair(self) -> tuple[int, int]:
        """``(chosen id, rejected id)`` in use.

        Raises:
            ValueError: when the pair is given by name or picked by default and the agent has not been reset with the
                env's reset ``info`` yet.
        """
        if self._pair is None:
            raise ValueError(
                "delta_model needs the env's model names to resolve "
                f"chosen_model={self.chosen_model!r}, rejected_model={self.rejected_model!r}: reset it with the env's "
                "reset info (agent.reset(seed, info=info)), or pass model ids"
            )
        return self._pair

    def reset(self, seed: int | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Re-seed, and resolve the model pair from ``info["model_names"]`` when given (see the class docstring)."""
        super().reset(seed=seed, info=info)
        names = None if info is None else info.get("model_names")
        if names is None:
            self._pair = self._pair_by_id()  # a pair resolved from another pool's names must not carry over
            return
        names = [str(name) for name in names]
        if self.chosen_model is None:
            self._pair = pick_delta_pair(names)
            return
        self._pair = (
            _model_id("chosen_model", self.chosen_model, names),
            _model_id("rejected_model", self.rejected_model, names),
        )

    def _pair_by_id(self) -> tuple[int, int] | None:
        """The pair when both models are given by id (no names needed), else ``None``."""
        if isinstance(self.chosen_model, int) and isinstance(self.rejected_model, int):
            return self.chosen_model, self.rejected_model
        return None

    def env_kwargs(self) -> dict[str, Any]:
        """``{"labeler": "first"}``: the first index is the chosen response; no judge calls."""
        return {"labeler": "first"}

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        chosen, rejected = self.model_pair
        valid, model_ids = batch.valid, batch.model_ids
        is_chosen = valid & (model_ids == chosen)
        is_rejected = valid & (model_ids == rejected)
        both = is_chosen.any(axis=1) & is_rejected.any(axis=1)
        first = np.where(both, is_chosen.argmax(axis=1), 0)
        second = np.where(both, is_rejected.argmax(axis=1), 0)
        return first, second


def _model_id(field: str, model: int | str | None, names: list[str]) -> int:
    """The id of ``model`` (an id, checked against the pool, or a name) among ``names``."""
    if isinstance(model, str):
        if model not in names:
            raise ValueError(f"{field} must name a model of the pool, got {model!r}; the pool has {names}")
        return names.index(model)
    if not isinstance(model, int) or model >= len(names):
        raise ValueError(f"{field} must be a model id in [0, {len(names)}), got {model!r}")
    return model
