"""Information-seeking agents: ``infomax``, ``infogain`` and ``ids``.

Notation (docs/design.md §6.2), per prompt and over its valid responses only: ``μ = mean``, ``s = (upper - lower) / 2``,
``β`` the agent's own multiplier, ``U = μ + β s``, ``L = μ - β s`` and ``sigmoid`` the logistic function. Under a
Bradley-Terry judge ``P(i > j) = sigmoid(r_i - r_j)``; with ``r`` in ``[L, U]`` that probability lies in
``[sigmoid(L_i - U_j), sigmoid(U_i - L_j)]``, whose width

    ``w_ij = sigmoid(U_i - L_j) - sigmoid(L_i - U_j)``  (symmetric in ``i`` and ``j``)

measures how uncertain the outcome of the comparison still is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from agents._ops import masked_argmax, pair_indices, sigmoid_width, thompson_argmax
from agents.base import Agent, Batch, check_number

__all__ = ["IDS", "InfoGain", "InfoMax", "InformationDirectedSampling"]


@dataclass
class InfoMax(Agent):
    r"""InfoMax (``infomax``): the pair whose preference is most uncertain.

    Rule::

        (i, j) = argmax_{i != j}  sigmoid(U_i - L_j) - sigmoid(L_i - U_j)

    The width is symmetric, so only pairs ``i < j`` are scored (row-major; exact ties go to the first) and
    the pair is returned with ``i < j``; the judge orients it.

    Origin: the uncertainty-maximising selection used for active preference learning (e.g. Muldrew et al. 2024;
    Liu et al. 2024, "Sample-Efficient Alignment for LLMs"), as evaluated by AUF (arXiv 2603.09692) among the
    information-seeking baselines.

    Hyperparameters:
        beta: multiplier of the spread ``s`` (default 1.0, ``>= 0``).

    Deviations from AUF's released code: none in the rule (the last released version scores all ``K x K``
    ordered pairs from the env's bounds; an earlier one took the two largest ``s`` instead). ``sigmoid`` is computed as
    ``(1 + tanh(x / 2)) / 2``, which never overflows.

    Example:
        >>> import numpy as np
        >>> mean = np.array([[0.0, 0.1, 3.0]], np.float32)
        >>> obs = {"mean": mean, "lower": mean - 0.5, "upper": mean + 0.5,
        ...        "valid": np.ones((1, 3), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> InfoMax().select(obs)  # the two close responses
        array([[0, 1]])
    """

    name: ClassVar[str] = "infomax"

    beta: float = 1.0

    def _validate(self) -> None:
        self.beta = check_number("beta", self.beta, low=0.0)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        first_of, second_of = pair_indices(batch.shape[1])
        # sigmoid(U_i - L_j) - sigmoid(L_i - U_j) = (tanh((d + t) / 2) - tanh((d - t) / 2)) / 2 with
        # d = μ_i - μ_j and t = β (s_i + s_j); the halving is applied on [B, K] and the final /2 dropped.
        half_mean, half_width = 0.5 * batch.mean, (0.5 * self.beta) * batch.spread
        diff = np.take(half_mean, first_of, axis=1) - np.take(half_mean, second_of, axis=1)
        reach = np.take(half_width, first_of, axis=1) + np.take(half_width, second_of, axis=1)
        score = np.tanh(diff + reach)
        score -= np.tanh(diff - reach)
        _mask_pairs(score, batch.valid, first_of, second_of, -np.inf)
        best = score.argmax(axis=1)
        return first_of[best], second_of[best]


@dataclass
class InfoGain(Agent):
    r"""InfoGain (``infogain``): a Thompson-sampled first response, then the most informative rival.

    Rule, with ``z ~ U(-1, 1)^K`` per prompt::

        i = argmax_k  μ_k + β z_k s_k                          (one Thompson draw, as in ``dts``)
        j = argmax_{j != i}  sigmoid(U_i - L_j) - sigmoid(L_i - U_j)        (exact ties: the lowest index)

    Origin: the SEA agent of Liu et al. (2024), "Sample-Efficient Alignment for LLMs" (sail-sg/oat), as
    evaluated by AUF (arXiv 2603.09692) among the information-seeking baselines.

    Hyperparameters:
        beta: multiplier of the spread ``s`` in both the draw and the width (default 1.0, ``>= 0``).

    Deviations from AUF's released code: none in the rule; the Thompson draw uses the agent's seeded generator
    instead of the global ``np.random`` state, and padded responses are masked out of both steps.

    Example:
        >>> import numpy as np
        >>> mean = np.array([[0.0, 2.9, 3.0]], np.float32)
        >>> obs = {"mean": mean, "lower": mean - 0.01, "upper": mean + 0.01,
        ...        "valid": np.ones((1, 3), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> agent = InfoGain()
        >>> agent.reset(seed=0)
        >>> agent.select(obs)  # 2 is drawn first; 1 is the rival it is hardest to tell apart from
        array([[2, 1]])
    """

    name: ClassVar[str] = "infogain"

    beta: float = 1.0

    def _validate(self) -> None:
        self.beta = check_number("beta", self.beta, low=0.0)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        valid = batch.valid
        rows = np.arange(valid.shape[0])
        slots = np.arange(valid.shape[1])
        first = thompson_argmax(batch.mean, batch.spread, valid, self.beta, self._rng)
        width = self.beta * batch.spread
        upper, lower = batch.mean + width, batch.mean - width
        score = sigmoid_width(upper[rows, first][:, None], lower[rows, first][:, None], upper, lower)
        second = masked_argmax(score, valid & (slots != first[:, None]))
        return first, second


@dataclass
class InformationDirectedSampling(Agent):
    r"""Information-directed sampling over response pairs (``ids``), in its deterministic form.

    Rule, over unordered valid pairs ``i < j``::

        Δ_ij = max_k U_k - (μ_i + μ_j) / 2                 (optimistic regret of playing the pair)
        I_ij = log(1 + (s_i^2 + s_j^2) / rho2)             (information gain about r_i - r_j)
        (i, j) = argmin_{i < j}  Δ_ij^2 / I_ij              (exact ties: the first pair, row-major)

    ``Δ`` is the average dueling regret of the pair against the optimistic best response; ``I`` is the mutual
    information of a Gaussian observation, with noise variance ``rho2``, of the reward difference whose
    posterior variance is ``s_i^2 + s_j^2`` (``s`` read as the posterior standard deviation). Pairs with
    ``I = 0`` have ratio ``+inf`` (``0`` when also ``Δ = 0``); when every pair of a prompt has ratio ``+inf``
    (no spread anywhere), the rule falls back to ``argmin Δ``, the limit of the ratio at equal information.

    Origin: Russo & Van Roy (NeurIPS 2014; Operations Research 2018), "Learning to Optimize via
    Information-Directed Sampling", with the optimistic gap estimate and Gaussian information gain of Kirschner &
    Krause (COLT 2018), applied to pairs as the actions of a dueling bandit. The information ratio is minimised
    over single actions (the deterministic form of IDS); the randomised minimiser mixes at most two actions, and
    restricting it to one keeps the trade-off without sampling a mixing probability. AUF (arXiv 2603.09692)
    evaluates an IDS baseline.

    Hyperparameters:
        beta: multiplier of the spread ``s`` in the optimistic best ``max_k U_k`` (default 1.0, ``>= 0``).
        rho2: observation-noise variance of the information gain (default 1.0, ``> 0``; AUF's ``rho2``).

    Deviations from AUF's released code (the standard rule is implemented here on purpose): AUF's version scores
    single arms, not pairs, with ``gap = max UCB + μ_k`` (it adds where it should subtract), multiplies the squared
    gap by the information gain (``(loss^2 / p) * info_gain``) where IDS divides by it, uses ``log(1 + s / rho2)``
    (the standard deviation, not the variance), restricts candidates by ``UCB > 0.5`` (a probability-scale threshold
    on reward-scale values), forces a "greedy" arm (index 0 when its mean is below 0.5), and returns the skip pair
    ``(greedy, greedy)`` with probability ``1 - p``. Here the standard ratio is minimised over pairs and the agent
    never skips.

    Example:
        >>> import numpy as np
        >>> mean = np.array([[0.0, 2.0, 2.1, 2.2]], np.float32)
        >>> spread = np.array([[1.0, 1.0, 0.01, 1.0]], np.float32)
        >>> obs = {"mean": mean, "lower": mean - spread, "upper": mean + spread,
        ...        "valid": np.ones((1, 4), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> InformationDirectedSampling().select(obs)  # two good responses, both still uncertain
        array([[1, 3]])
    """

    name: ClassVar[str] = "ids"

    beta: float = 1.0
    rho2: float = 1.0

    def _validate(self) -> None:
        self.beta = check_number("beta", self.beta, low=0.0)
        self.rho2 = check_number("rho2", self.rho2, low=0.0, low_open=True)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        first_of, second_of = pair_indices(batch.shape[1])
        mean, spread, valid = batch.mean, batch.spread, batch.valid
        best_upper = np.where(valid, mean + self.beta * spread, -np.inf).max(axis=1, keepdims=True)
        best_upper[~batch.active] = 0.0  # rows without valid responses (discarded)
        half_mean = 0.5 * mean
        gap = best_upper - np.take(half_mean, first_of, axis=1)
        gap -= np.take(half_mean, second_of, axis=1)
        gap_sq = np.square(gap, out=gap)
        scaled_variance = np.square(spread) / self.rho2
        info = np.take(scaled_variance, first_of, axis=1)
        info += np.take(scaled_variance, second_of, axis=1)
        info = np.log1p(info, out=info)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ratio = gap_sq / info  # x / 0 = inf, 0 / 0 = nan, fixed next
        np.copyto(ratio, 0.0, where=(info == 0) & (gap_sq == 0))
        _mask_pairs(ratio, valid, first_of, second_of, np.inf)
        best = ratio.argmin(axis=1)
        stuck = ~np.isfinite(ratio[np.arange(ratio.shape[0]), best]) & batch.active
        if stuck.any():  # no informative pair: the limit of the ratio at equal information, argmin of the gap
            _mask_pairs(gap_sq, valid, first_of, second_of, np.inf)
            best = np.where(stuck, gap_sq.argmin(axis=1), best)
        return first_of[best], second_of[best]


def _mask_pairs(
    values: np.ndarray, valid: np.ndarray, first_of: np.ndarray, second_of: np.ndarray, fill: float
) -> None:
    """Set, in place, the entries of ``values [B, n_pairs]`` whose pair has a padded response to ``fill``."""
    if not valid.all():
        bad = ~(np.take(valid, first_of, axis=1) & np.take(valid, second_of, axis=1))
        np.copyto(values, fill, where=bad)


IDS = InformationDirectedSampling
"""Short alias of :class:`InformationDirectedSampling`."""
