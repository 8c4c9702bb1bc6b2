"""The ``delta_model`` baseline: the responses of two fixed models, the larger one labelled chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from agents.base import Agent, Batch, check_int

__all__ = ["DeltaModel"]


@dataclass
class DeltaModel(Agent):
    r"""Fixed model pair (``delta_model``), judge-free: AUF's DeltaQwen.

    Rule, per prompt::

        i = the slot whose model_ids == chosen_model     (the larger model: labelled chosen, no judge call)
        j = the slot whose model_ids == rejected_model
        skip (i = j = 0) when either model has no valid response in the prompt

    Slots are located through ``obs["model_ids"]`` (never assumed equal to model ids); if a model wrote several
    valid responses of a prompt, the first slot is used. :meth:`env_kwargs` asks the env for ``labeler="first"``,
    so ``i`` is taken as chosen by construction and the judge is never called.

    Origin: the delta-learning recipe of Geng et al. (2025), "The Delta Learning Hypothesis" (a larger against a
    smaller model of one family, e.g. Qwen 3B vs 1.5B), AUF's DeltaQwen baseline (arXiv 2603.09692).

    Hyperparameters:
        chosen_model: model id of the larger model (default 8 = family 1, size 3 of the synthetic pool, where
            model ``m = family * 5 + size`` with sizes 0..4 of increasing skill).
        rejected_model: model id of the smaller model (default 7 = family 1, size 2: a modest within-family gap,
            as in DeltaQwen, not strongest vs weakest). Both ``>= 0`` and distinct.

    Deviations from AUF's released code: none in the rule (AUF binarizes its dataset offline from the two Qwen
    models' completions).

    Example:
        >>> import numpy as np
        >>> agent = DeltaModel(chosen_model=8, rejected_model=7)
        >>> obs = {"model_ids": np.array([[7, 3, 8], [1, 8, 2]]),
        ...        "valid": np.ones((2, 3), np.int8), "prompt_valid": np.ones(2, np.int8)}
        >>> agent.select(obs)  # the second prompt has no response of model 7: skipped
        array([[2, 0],
               [0, 0]])
        >>> agent.env_kwargs()
        {'labeler': 'first'}
    """

    name: ClassVar[str] = "delta_model"
    obs_keys: ClassVar[tuple[str, ...]] = ("model_ids",)

    chosen_model: int = 8
    rejected_model: int = 7

    def _validate(self) -> None:
        self.chosen_model = check_int("chosen_model", self.chosen_model, low=0)
        self.rejected_model = check_int("rejected_model", self.rejected_model, low=0)
        if self.chosen_model == self.rejected_model:
            raise ValueError(f"chosen_model and rejected_model must differ, got {self.chosen_model} for both")

    def env_kwargs(self) -> dict[str, Any]:
        """``{"labeler": "first"}``: the first index is the chosen response; no judge calls."""
        return {"labeler": "first"}

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        valid, model_ids = batch.valid, batch.model_ids
        is_chosen = valid & (model_ids == self.chosen_model)
        is_rejected = valid & (model_ids == self.rejected_model)
        both = is_chosen.any(axis=1) & is_rejected.any(axis=1)
        first = np.where(both, is_chosen.argmax(axis=1), 0)
        second = np.where(both, is_rejected.argmax(axis=1), 0)
        return first, second
