"""The learned selector as an :class:`~agents.base.Agent`: ``make("learned")`` or ``make("learned", path=...)``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from agents.base import ENN_KEYS, Agent, Batch, Observation
from agents.learned.checkpoint import SHIPPED_CHECKPOINT, load_checkpoint
from agents.learned.policy import SelectorPolicy, response_features, sample_pairs

__all__ = ["LearnedSelector", "choices_to_pairs"]


def choices_to_pairs(choices: torch.Tensor, n_slots: int) -> np.ndarray:
    """``[B]`` choices of :func:`~agents.learned.policy.sample_pairs` as an ``int64 [B, 2]`` action (skip: (0, 0))."""
    choices = choices.numpy().astype(np.int64)
    pairs = np.stack([choices // n_slots, choices % n_slots], axis=1)
    pairs[choices == n_slots * n_slots] = 0
    return pairs


@dataclass
class LearnedSelector(Agent):
    """A selector meta-trained over ``ActiveUF/SyntheticTasks-v0`` (``learned``): see :mod:`agents.learned.policy`.

    Rule: per prompt, a categorical over the ordered pairs of valid responses and a skip, with logits from a
    permutation-equivariant network of the ensemble's mean and spread (relative to the prompt and the batch), the
    budget left and the round; ``greedy=True`` takes the most likely choice instead of sampling it.

    Hyperparameters:
        path: a checkpoint's ``.safetensors`` file (default: the one shipped in ``agents/learned/checkpoints``).
        greedy: take the argmax instead of sampling (default ``False``).
    """

    name: ClassVar[str] = "learned"
    obs_keys: ClassVar[tuple[str, ...]] = ENN_KEYS

    path: str | None = None
    greedy: bool = False
    policy: SelectorPolicy | None = field(default=None, repr=False, compare=False)
    _round: int = field(default=0, init=False, repr=False, compare=False)

    def _validate(self) -> None:
        if self.policy is None:
            self.policy, _ = load_checkpoint(SHIPPED_CHECKPOINT if self.path is None else self.path)
        elif not isinstance(self.policy, SelectorPolicy):
            raise ValueError(f"policy must be a SelectorPolicy or None, got {type(self.policy).__name__}")
        self.greedy = bool(self.greedy)
        self._generator = torch.Generator().manual_seed(0)

    def reset(self, seed: int | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Re-seed the policy's sampling and start counting rounds at 0."""
        super().reset(seed, info)
        self._generator = torch.Generator().manual_seed(int(self._rng.integers(2**63)))
        self._round = 0

    def select(self, obs: Observation) -> np.ndarray:
        """One pair (or a skip) per prompt, from the policy (inactive prompts are skipped)."""
        batch = Batch.from_obs(obs, self.obs_keys, self.name)  # the same checks and errors as every agent
        features, valid = response_features(obs, self._round)
        with torch.no_grad():
            logits = self.policy(features, valid)  # type: ignore[misc]
        pairs = choices_to_pairs(sample_pairs(logits, self._generator, self.greedy), batch.shape[1])
        self._round += 1
        pairs[~batch.active] = 0
        return pairs
