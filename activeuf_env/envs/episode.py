"""The state of one ActiveUF episode, as typed dataclasses.

:class:`Episode` is everything an episode changes: the prompt order, the round, the counters, the collected pairs,
the ensemble reward model and its replay buffer, the last downstream scores and what the last round did (for
rendering). The env owns one and mutates it in ``step``; :meth:`Episode.state_dict` and
:meth:`Episode.from_state_dict` turn it into plain data and back, bit for bit, for ``get_state`` / ``set_state``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from activeuf_env.core.reward_model import EnsembleRewardModel, ReplayBuffer

__all__ = ["STATE_VERSION", "Counts", "Episode", "RoundRecord"]

STATE_VERSION = 4
"""Version of the saved state layout; 4 since states carry an env fingerprint and files hold arrays and JSON, no
pickle (:mod:`activeuf_env.envs.state_file`; states of version 3 and before cannot load)."""


@dataclass
class Counts:
    """Running totals of an episode (reported in ``info`` under these names)."""

    labels: int = 0
    """Pairs sent to the labeler; the budget counts these."""
    judge_calls: int = 0
    """Responses the judge scored."""
    skipped: int = 0
    """Prompts offered but not labelled (including pairs dropped because the budget ran out)."""
    abstained: int = 0
    """Pairs the judge declined to label."""


@dataclass
class RoundRecord:
    """What one round did: its observation, prompts and pairs, and how the labelling went."""

    observation: dict[str, np.ndarray]
    """The observation the agent acted on."""
    prompts: np.ndarray
    """int64 ``[B]`` train prompt indices of the round (``-1`` for padding rows)."""
    pairs: np.ndarray
    """int64 ``[B, 2]`` the validated pairs."""
    round_labels: int
    """Pairs collected this round (sent and not abstained)."""
    pair_gap: float
    """Mean true-quality gap of the collected pairs (0.0 if none)."""
    label_accuracy: float
    """Fraction of collected pairs oriented like true quality (0.0 if none)."""
    verdict: np.ndarray
    """bool ``[len(sent)]``: the first index of the pair was chosen."""
    sent: np.ndarray
    """int64 batch rows whose pair went to the labeler."""
    keep: np.ndarray
    """bool ``[len(sent)]``: the labeler did not abstain."""

    def stats(self) -> dict[str, int | float]:
        """The round's entries of ``info``."""
        return {"round_labels": self.round_labels, "pair_gap": self.pair_gap, "label_accuracy": self.label_accuracy}


@dataclass
class Episode:
    """Everything one episode changes (see the module docstring)."""

    instance_id: int
    """Index of the instance this episode runs on."""
    order: np.ndarray
    """int64 ``[n_rounds, B]``: the train prompts of each round, ``-1`` padding the last one."""
    budget: int
    """Label budget of the episode."""
    model: EnsembleRewardModel
    """The ensemble reward model the agent observes."""
    buffer: ReplayBuffer
    """Replay buffer of collected (chosen, rejected) features the ensemble trains on."""
    round: int = 0
    """Rounds played."""
    counts: Counts = field(default_factory=Counts)
    collected: list[np.ndarray] = field(default_factory=list)
    """Per round, int64 ``[n, 4]`` rows (train prompt, chosen, rejected, round)."""
    loss: float = 0.0
    """Mean ensemble training loss of the last round."""
    scores: dict[str, float] | None = None
    """The last downstream evaluation's ``info`` entries (``None`` while evaluation is off)."""
    observation: dict[str, np.ndarray] | None = None
    """The observation of the current round."""
    last: RoundRecord | None = None
    """What the previous round did (``None`` before the first step)."""

    @property
    def n_rounds(self) -> int:
        """Rounds in the episode (the last one may be partial)."""
        return int(self.order.shape[0])

    @property
    def done(self) -> bool:
        """Every train prompt was offered or the budget is spent."""
        return self.round >= self.n_rounds or self.counts.labels >= self.budget

    def collected_pairs(self) -> np.ndarray:
        """The pairs collected so far, int64 ``[n, 4]``: (train prompt index, chosen, rejected, round)."""
        if not self.collected:
            return np.zeros((0, 4), dtype=np.int64)
        return np.concatenate(self.collected).astype(np.int64)

    def state_dict(self) -> dict[str, Any]:
        """The episode as plain data: numpy arrays, numbers, dicts and lists (the model and buffer as theirs)."""
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("model", "buffer")}
        state["counts"] = dataclasses.asdict(self.counts)
        state["last"] = None if self.last is None else dataclasses.asdict(self.last)
        state["model"] = self.model.state_dict()
        state["buffer"] = self.buffer.state_dict()
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], model: EnsembleRewardModel, buffer: ReplayBuffer) -> Episode:
        """Rebuild an episode from :meth:`state_dict`, loading the model and buffer states into the given objects."""
        values = dict(state)
        model.load_state_dict(values.pop("model"))
        buffer.load_state_dict(values.pop("buffer"))
        counts, last = values.pop("counts"), values.pop("last")
        return cls(
            **values,
            model=model,
            buffer=buffer,
            counts=Counts(**counts),
            last=None if last is None else RoundRecord(**last),
        )
