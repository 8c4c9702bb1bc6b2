"""The ``maxmin`` baseline: the best against the worst response by judge score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from agents._ops import argmax_random_ties
from agents.base import Agent, Batch

__all__ = ["MaxMin"]


@dataclass
class MaxMin(Agent):
    r"""Best-versus-worst by judge score (``maxmin``), privileged: it reads ``judge_scores`` of all responses.

    Rule, per prompt::

        i = argmax_k judge_score_k
        j = argmin_{k != i} judge_score_k

    Exact ties are broken uniformly at random (so that on real data, where scores repeat, no slot and hence no
    model is favoured by position); with all scores equal, ``j`` is uniform over the others.

    Origin: the best-vs-worst binarization of on-policy preference data (e.g. Meng et al. 2024, SimPO), AUF's
    MaxMin baseline (arXiv 2603.09692). It scores every response of the prompt: :meth:`env_kwargs` asks the env
    for ``expose_judge_scores=True`` and ``judge_calls_per_pair="all"`` (K judge calls per prompt).

    Deviations from AUF's released code: none in the rule; ties are broken at random rather than by slot order.

    Raises:
        ValueError: from :meth:`select` when the observation has no ``judge_scores`` (build the env with
            ``expose_judge_scores=True``).

    Example:
        >>> import numpy as np
        >>> agent = MaxMin()
        >>> agent.reset(seed=0)
        >>> obs = {"judge_scores": np.array([[2.0, 4.5, 1.0, 3.0]], np.float32),
        ...        "valid": np.ones((1, 4), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> agent.select(obs)
        array([[1, 2]])
    """

    name: ClassVar[str] = "maxmin"
    obs_keys: ClassVar[tuple[str, ...]] = ("judge_scores",)

    def env_kwargs(self) -> dict[str, Any]:
        """``{"expose_judge_scores": True, "judge_calls_per_pair": "all"}``."""
        return {"expose_judge_scores": True, "judge_calls_per_pair": "all"}

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        valid, scores = batch.valid, batch.judge_scores
        first = argmax_random_ties(scores, valid, self._rng)
        others = valid & (np.arange(valid.shape[1]) != first[:, None])
        second = argmax_random_ties(-scores, others, self._rng)
        return first, second
