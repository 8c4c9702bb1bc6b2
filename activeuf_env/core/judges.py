"""Judges turn a pair of responses into (chosen, rejected); each call is an annotation cost.

A judge is a small object with ``label(prompt_idx, i, j, rng) -> chosen_is_i`` (a bool array), vectorized over the
batch, and ``abstains(prompt_idx, i, j) -> bool array`` for pairs it declines to label. Noise wrappers compose over
any judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from activeuf_env._validation import check_choice, check_number

__all__ = [
    "BradleyTerryJudge",
    "FlipNoise",
    "Judge",
    "PositionBias",
    "ScoreJudge",
    "TieAbstain",
    "make_judge",
]


@runtime_checkable
class Judge(Protocol):
    """What the environment needs from a judge."""

    scores: np.ndarray

    def label(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a bool array: True where response ``i`` is chosen over ``j`` for the prompt at ``prompt_idx``."""
        ...

    def abstains(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Return a bool array: True where the judge declines to label the pair."""
        ...


def _no_abstention(prompt_idx: np.ndarray) -> np.ndarray:
    return np.zeros(np.shape(prompt_idx), dtype=bool)


@dataclass
class ScoreJudge:
    """AUF's oracle: the response with the higher judge score is chosen.

    Args:
        scores: float ``[N, K]`` judge scores of the pool.
        tie_break: ``"first"`` (AUF: the pair's first index wins a tie) or ``"random"`` (a fair coin from ``rng``).

    Example:
        >>> judge = ScoreJudge(np.array([[1.0, 2.0, 2.0]]))
        >>> judge.label(np.array([0, 0]), np.array([0, 2]), np.array([1, 1]), np.random.default_rng(0)).tolist()
        [False, True]
    """

    scores: np.ndarray
    tie_break: Literal["first", "random"] = "first"

    def __post_init__(self) -> None:
        check_choice("tie_break", self.tie_break, ("first", "random"))

    def label(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Chosen = higher judge score; ties by ``tie_break``."""
        s_i, s_j = self.scores[prompt_idx, i], self.scores[prompt_idx, j]
        if self.tie_break == "first":
            return s_i >= s_j
        coin = rng.random(np.shape(s_i)) < 0.5
        return np.where(s_i == s_j, coin, s_i > s_j)

    def abstains(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Never abstains."""
        return _no_abstention(prompt_idx)


@dataclass
class BradleyTerryJudge:
    """A stochastic judge: ``P(i ≻ j) = sigmoid((s_i − s_j) / temperature)``, sampled from the env's generator.

    Args:
        scores: float ``[N, K]`` judge scores of the pool.
        temperature: positive; small values approach :class:`ScoreJudge`.

    Example:
        >>> judge = BradleyTerryJudge(np.array([[0.0, 100.0]]), temperature=1.0)
        >>> judge.label(np.array([0]), np.array([1]), np.array([0]), np.random.default_rng(0)).tolist()
        [True]
    """

    scores: np.ndarray
    temperature: float = 1.0

    def __post_init__(self) -> None:
        check_number("temperature", self.temperature, low=0.0, low_open=True)

    def label(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sample the Bradley-Terry preference for each pair."""
        margin = (self.scores[prompt_idx, i] - self.scores[prompt_idx, j]) / self.temperature
        return rng.random(margin.shape) < 1.0 / (1.0 + np.exp(-margin))

    def abstains(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Never abstains."""
        return _no_abstention(prompt_idx)


@dataclass
class _JudgeWrapper:
    judge: Judge

    @property
    def scores(self) -> np.ndarray:
        """The wrapped judge's scores."""
        return self.judge.scores

    def abstains(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Abstains where the wrapped judge does."""
        return self.judge.abstains(prompt_idx, i, j)


@dataclass
class FlipNoise(_JudgeWrapper):
    """Flips each verdict of ``judge`` with probability ``p``.

    Example:
        >>> judge = FlipNoise(ScoreJudge(np.array([[1.0, 2.0]])), p=1.0)
        >>> judge.label(np.array([0]), np.array([1]), np.array([0]), np.random.default_rng(0)).tolist()
        [False]
    """

    p: float = 0.1

    def __post_init__(self) -> None:
        check_number("p", self.p, low=0.0, high=1.0)

    def label(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The wrapped verdict, flipped with probability ``p``."""
        verdict = self.judge.label(prompt_idx, i, j, rng)
        return verdict ^ (rng.random(verdict.shape) < self.p)


@dataclass
class PositionBias(_JudgeWrapper):
    """With probability ``p_first`` the first response of the pair is chosen regardless of the wrapped judge.

    Example:
        >>> judge = PositionBias(ScoreJudge(np.array([[1.0, 2.0]])), p_first=1.0)
        >>> judge.label(np.array([0]), np.array([0]), np.array([1]), np.random.default_rng(0)).tolist()
        [True]
    """

    p_first: float = 0.1

    def __post_init__(self) -> None:
        check_number("p_first", self.p_first, low=0.0, high=1.0)

    def label(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The wrapped verdict, overridden by the first position with probability ``p_first``."""
        verdict = self.judge.label(prompt_idx, i, j, rng)
        return verdict | (rng.random(verdict.shape) < self.p_first)


@dataclass
class TieAbstain(_JudgeWrapper):
    """Abstains on pairs whose judge scores differ by less than ``margin`` (the label is not collected).

    Example:
        >>> judge = TieAbstain(ScoreJudge(np.array([[1.0, 1.05, 3.0]])), margin=0.1)
        >>> judge.abstains(np.array([0, 0]), np.array([0, 0]), np.array([1, 2])).tolist()
        [True, False]
    """

    margin: float = 0.1

    def __post_init__(self) -> None:
        check_number("margin", self.margin, low=0.0)

    def label(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The wrapped verdict (abstentions are reported by :meth:`abstains`)."""
        return self.judge.label(prompt_idx, i, j, rng)

    def abstains(self, prompt_idx: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """True where ``|s_i − s_j| < margin`` or the wrapped judge abstains."""
        close = np.abs(self.scores[prompt_idx, i] - self.scores[prompt_idx, j]) < self.margin
        return close | self.judge.abstains(prompt_idx, i, j)


_JUDGES = {"score": ScoreJudge, "bradley_terry": BradleyTerryJudge}
_NOISE = {"flip": FlipNoise, "position": PositionBias, "tie_abstain": TieAbstain}


def make_judge(
    scores: np.ndarray,
    kind: str = "score",
    noise: dict[str, float] | None = None,
    **kwargs: float | str,
) -> Judge:
    """Build a judge over ``scores`` by name, wrapped in noise.

    Args:
        scores: ``[N, K]`` judge scores.
        kind: ``"score"`` (:class:`ScoreJudge`) or ``"bradley_terry"`` (:class:`BradleyTerryJudge`).
        noise: wrapper name to its parameter, applied in the order given: ``"flip"`` (``p``), ``"position"``
            (``p_first``), ``"tie_abstain"`` (``margin``).
        **kwargs: passed to the judge class (``tie_break``, ``temperature``).

    Example:
        >>> make_judge(np.zeros((1, 2)), "score", noise={"flip": 0.2}).p
        0.2
    """
    check_choice("judge", kind, sorted(_JUDGES))
    judge: Judge = _JUDGES[kind](scores, **kwargs)
    for name, value in (noise or {}).items():
        check_choice("judge noise", name, sorted(_NOISE))
        judge = _NOISE[name](judge, value)
    return judge
