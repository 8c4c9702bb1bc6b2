"""The ``ultrafeedback`` baseline: best of four random responses by judge score, against one of the other three."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from agents._ops import uniform_choice
from agents.base import Agent, Batch

__all__ = ["UltraFeedback"]

_N_SAMPLED = 4


@dataclass
class UltraFeedback(Agent):
    r"""UltraFeedback-style binarization (``ultrafeedback``), privileged: it reads ``judge_scores``.

    Rule, per prompt::

        S = 4 distinct valid responses, uniformly at random (all of them when the prompt has fewer than 4)
        i = argmax_{k in S} judge_score_k          (ties: uniformly at random, via the random order of S)
        j ~ Uniform(S \ {i})

    Origin: UltraFeedback (Cui et al., ICML 2024) as binarized for Zephyr (Tunstall et al. 2023): four sampled
    completions, the best-rated as chosen and a random other as rejected; AUF's UltraFeedback baseline
    (arXiv 2603.09692). It costs 4 judge calls per prompt: :meth:`env_kwargs` asks the env for
    ``expose_judge_scores=True`` and ``judge_calls_per_pair=4``.

    Deviations from AUF's released code: AUF samples from all ``K`` slots with the global ``np.random`` state;
    here only valid responses are sampled, from the agent's seeded generator.

    Raises:
        ValueError: from :meth:`select` when the observation has no ``judge_scores`` (build the env with
            ``expose_judge_scores=True``).

    Example:
        >>> import numpy as np
        >>> agent = UltraFeedback()
        >>> agent.reset(seed=0)
        >>> obs = {"judge_scores": np.array([[1.0, 2.0, 5.0, 3.0]], np.float32),
        ...        "valid": np.ones((1, 4), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> int(agent.select(obs)[0, 0])  # K = 4: all four are sampled, the best is chosen
        2
        >>> agent.env_kwargs()
        {'expose_judge_scores': True, 'judge_calls_per_pair': 4}
    """

    name: ClassVar[str] = "ultrafeedback"
    obs_keys: ClassVar[tuple[str, ...]] = ("judge_scores",)

    def env_kwargs(self) -> dict[str, Any]:
        """``{"expose_judge_scores": True, "judge_calls_per_pair": 4}``."""
        return {"expose_judge_scores": True, "judge_calls_per_pair": _N_SAMPLED}

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        valid = batch.valid
        n_sampled = min(_N_SAMPLED, valid.shape[1])
        # A uniformly random order of the valid responses; its first n_sampled entries are the sample S.
        keys = np.where(valid, self._rng.random(valid.shape), -1.0)
        sample = np.argsort(-keys, axis=1)[:, :n_sampled]
        in_sample = np.take_along_axis(valid, sample, axis=1)
        scores = np.where(in_sample, np.take_along_axis(batch.judge_scores, sample, axis=1), -np.inf)
        best = scores.argmax(axis=1)  # first of the random order among tied scores
        other = uniform_choice(in_sample & (np.arange(n_sampled) != best[:, None]), self._rng)
        rows = np.arange(valid.shape[0])
        return sample[rows, best], sample[rows, other]
