"""The ``random`` baseline: two distinct valid responses, uniformly at random."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from agents._ops import uniform_choice
from agents.base import Agent, Batch

__all__ = ["RandomPair"]


@dataclass
class RandomPair(Agent):
    r"""Uniformly random pair (``random``), AUF's Random baseline.

    Rule: ``(i, j)`` uniform over the ordered pairs of distinct valid responses of the prompt (``i`` uniform,
    then ``j`` uniform over the others). Reads only ``valid`` and ``prompt_valid``; the judge orients the pair.

    Origin: the Random baseline of ActiveUltraFeedback (arXiv 2603.09692); no hyperparameters.

    Deviations from AUF's released code: AUF draws from the global ``np.random`` state; here the agent's own
    seeded generator is used, and padded responses are never drawn.

    Example:
        >>> import numpy as np
        >>> agent = RandomPair()
        >>> agent.reset(seed=0)
        >>> obs = {"valid": np.array([[1, 1, 0]], np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> sorted(agent.select(obs)[0].tolist())  # slot 2 is padding
        [0, 1]
    """

    name: ClassVar[str] = "random"
    obs_keys: ClassVar[tuple[str, ...]] = ()

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        valid = batch.valid
        first = uniform_choice(valid, self._rng)
        second = uniform_choice(valid & (np.arange(valid.shape[1]) != first[:, None]), self._rng)
        return first, second
