"""The learned selector as an :class:`~agents.base.Agent`: ``make("learned")`` or ``make("learned", path=...)``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from agents.base import ENN_KEYS, Agent, Observation
from agents.learned.checkpoint import SHIPPED_CHECKPOINT, load_checkpoint
from agents.learned.policy import SelectorPolicy, observation_features, sample_pairs

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
        allow_skip: let the policy skip prompts (default ``True``; ``False`` masks the skip out, the ablation of
            the skip decisions).
    """

    name: ClassVar[str] = "learned"
    obs_keys: ClassVar[tuple[str, ...]] = ENN_KEYS

    path: str | None = None
    greedy: bool = False
    allow_skip: bool = True

    def _validate(self) -> None:
        if self.path is not None and not isinstance(self.path, (str, os.PathLike)):
            raise ValueError(f"path must be a checkpoint file or None, got {self.path!r}")
        self._policy, _ = load_checkpoint(SHIPPED_CHECKPOINT if self.path is None else self.path)
        self.greedy, self.allow_skip = bool(self.greedy), bool(self.allow_skip)
        self._generator = torch.Generator().manual_seed(0)
        self._round = 0

    @classmethod
    def from_policy(cls, policy: SelectorPolicy, *, greedy: bool = False, allow_skip: bool = True) -> LearnedSelector:
        """An agent around an in-memory policy (e.g. during training) instead of a checkpoint file."""
        agent = cls.__new__(cls)
        agent.path, agent.greedy, agent.allow_skip = None, bool(greedy), bool(allow_skip)
        agent._policy, agent._round = policy, 0
        agent._generator = torch.Generator().manual_seed(0)
        agent._rng = np.random.default_rng()
        return agent

    @property
    def policy(self) -> SelectorPolicy:
        """The policy network."""
        return self._policy

    def reset(self, seed: int | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Re-seed the policy's sampling and start counting rounds at 0."""
        super().reset(seed, info)
        self._generator = torch.Generator().manual_seed(int(self._rng.integers(2**63)))
        self._round = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generator"] = self._generator.get_state()  # a torch.Generator does not pickle; its state does
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        generator = torch.Generator()
        generator.set_state(state.pop("_generator"))
        self.__dict__.update(state, _generator=generator)

    def select(self, obs: Observation) -> np.ndarray:
        """One pair (or a skip) per prompt, from the policy (inactive prompts are skipped)."""
        with torch.inference_mode():  # no autograd bookkeeping anywhere in the choice
            batch, features, valid = observation_features(obs, self._round, self.name)
            if batch.shape[0] == 0:
                return np.zeros((0, 2), dtype=np.int64)
            logits = self._policy(features, valid)
            if not self.allow_skip:
                logits[torch.as_tensor(batch.active), -1] = float("-inf")  # active prompts keep only their pairs
            pairs = choices_to_pairs(sample_pairs(logits, self._generator, self.greedy), batch.shape[1])
        self._round += 1
        pairs[~batch.active] = 0
        return pairs
