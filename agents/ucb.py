"""Confidence-bound agents: ``deltaucb``, ``deltaquantile``, ``maxminlcb`` and ``rucb``.

Notation (docs/design.md §6.2), per prompt and over its valid responses only: ``μ = mean``, ``s = (upper - lower) / 2``,
``β`` the agent's own multiplier, ``U = μ + β s`` and ``L = μ - β s`` (with ``β = 1`` these are the env's
``upper`` and ``lower``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from agents._ops import argmax_random_ties, masked_argmax, masked_argmin, uniform_choice
from agents.base import Agent, Batch, check_number

__all__ = ["DeltaQuantile", "DeltaUCB", "MaxMinLCB", "RelativeUCB"]


def _bounds(batch: Batch, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``U = μ + β s`` and ``L = μ - β s`` (float64, padded entries finite)."""
    width = beta * batch.spread
    return batch.mean + width, batch.mean - width


@dataclass
class DeltaUCB(Agent):
    r"""DeltaUCB (``deltaucb``), one of AUF's two proposed methods: the most optimistic quality gap.

    Rule::

        (i, j) = argmax_{i != j}  (μ_i + β s_i) - (μ_j - β s_j)  =  argmax_{i != j} U_i - L_j

    computed in O(K): ``i = argmax U`` and ``j = argmin L``; when they coincide at ``k``, the better of
    ``(k, argmin_{j != k} L)`` and ``(argmax_{i != k} U, k)`` (any pair avoiding ``k`` is dominated by the first).
    Exact ties go to the lowest index.

    Origin: ActiveUltraFeedback (arXiv 2603.09692), DeltaUCB, proposed with DRTS: pairs with a large
    plausible quality gap, after the delta-learning results of Geng et al. (2025). Best RM column in AUF.

    Hyperparameters:
        beta: multiplier of the spread ``s`` (default 1.0, ``>= 0``; 0 pairs the highest and lowest mean).

    Deviations from AUF's released code: none in the rule. AUF builds the ``K x K`` matrix ``U_i - L_j`` from the
    env's bounds (``β`` fixed at the ENN's); here ``β`` is the agent's and the argmax is O(K).

    Example:
        >>> import numpy as np
        >>> mean = np.array([[0.0, 1.0, 2.0]], np.float32)
        >>> spread = np.array([[0.1, 2.0, 0.5]], np.float32)
        >>> obs = {"mean": mean, "lower": mean - spread, "upper": mean + spread,
        ...        "valid": np.ones((1, 3), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> DeltaUCB().select(obs)  # U = (0.1, 3, 2.5), L = (-0.1, -1, 1.5): 2.5 + 1 beats 3 + 0.1
        array([[2, 1]])
    """

    name: ClassVar[str] = "deltaucb"

    beta: float = 1.0

    def _validate(self) -> None:
        self.beta = check_number("beta", self.beta, low=0.0)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        upper, lower = _bounds(batch, self.beta)
        valid = batch.valid
        rows = np.arange(valid.shape[0])
        slots = np.arange(valid.shape[1])
        best = masked_argmax(upper, valid)
        worst = masked_argmin(lower, valid)
        # Runner-ups, used only where best == worst.
        best_other = masked_argmax(upper, valid & (slots != worst[:, None]))
        worst_other = masked_argmin(lower, valid & (slots != best[:, None]))
        keep_best = upper[rows, best] - lower[rows, worst_other] >= upper[rows, best_other] - lower[rows, worst]
        clash = best == worst
        first = np.where(clash & ~keep_best, best_other, best)
        second = np.where(clash & keep_best, worst_other, worst)
        return first, second


@dataclass
class DeltaQuantile(Agent):
    r"""DeltaQuantile (``deltaquantile``): a pair at a fixed quantile of the optimistic gaps, not the extreme.

    Rule, per prompt with ``n`` valid responses (``n (n - 1)`` ordered pairs)::

        sort g_ij = U_i - L_j over valid i != j, descending;
        (i, j) = the pair at rank r = min(floor(q n (n - 1)), n (n - 1) - 1)   (rank 0 = DeltaUCB's pair)

    Among pairs tied at the rank's value, the first in row-major order is returned. Cost: one ``partition`` of the
    ``K^2`` gaps up to the batch's largest rank, a sort of that head only, and one scan for the value.

    Origin: a variant of DeltaUCB in AUF's released code (``deltaquantile``): it trades the most extreme
    predicted gap, often an outlier of the ENN, for a robust large one.

    Hyperparameters:
        beta: multiplier of the spread ``s`` (default 1.0, ``>= 0``).
        quantile: ``q`` in ``[0, 1]`` (default 0.05).

    Deviations from AUF's released code: (1) AUF's default ``q`` is 0.1; the default here is 0.05; (2) AUF counts the
    ``K (K - 1)`` pairs of all slots, padded ones included, so with padding its rank drifts; here the rank uses
    the ``n (n - 1)`` valid ordered pairs of each prompt and padded responses are never ranked.

    Example:
        >>> import numpy as np
        >>> mean = np.array([[0.0, 1.0, 3.0, 7.0]], np.float32)
        >>> obs = {"mean": mean, "lower": mean, "upper": mean,
        ...        "valid": np.ones((1, 4), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> DeltaQuantile(quantile=0.0).select(obs), DeltaQuantile(quantile=0.1).select(obs)
        (array([[3, 0]]), array([[3, 1]]))
    """

    name: ClassVar[str] = "deltaquantile"

    beta: float = 1.0
    quantile: float = 0.05

    def _validate(self) -> None:
        self.beta = check_number("beta", self.beta, low=0.0)
        self.quantile = check_number("quantile", self.quantile, low=0.0, high=1.0)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        upper, lower = _bounds(batch, self.beta)
        valid = batch.valid
        n_prompts, n_slots = valid.shape
        # Negated gaps L_j - U_i, ascending = gaps descending; excluded pairs at +inf.
        neg_gaps = lower[:, None, :] - upper[:, :, None]
        neg_gaps[:, np.arange(n_slots), np.arange(n_slots)] = np.inf
        if not valid.all():
            np.copyto(neg_gaps, np.inf, where=~(valid[:, :, None] & valid[:, None, :]))
        neg_gaps = neg_gaps.reshape(n_prompts, n_slots * n_slots)
        n_valid = valid.sum(axis=1)
        n_pairs = n_valid * (n_valid - 1)
        rank = np.floor(self.quantile * n_pairs).astype(np.int64)
        rank = np.clip(np.minimum(rank, n_pairs - 1), 0, None)
        top = int(rank.max())
        # The top + 1 smallest values of each row (values only: cheaper than argpartition), sorted, give the
        # value at each row's rank; its pair is the first flat index holding that value.
        head = np.partition(neg_gaps, top, axis=1)[:, : top + 1]
        head.sort(axis=1)
        target = head[np.arange(n_prompts), rank]
        flat = (neg_gaps == target[:, None]).argmax(axis=1)
        return flat // n_slots, flat % n_slots


@dataclass
class MaxMinLCB(Agent):
    r"""MaxMinLCB (``maxminlcb``): the response whose worst-case lower confidence bound is best, and its rival.

    Rule, with ``LCB_ij = (μ_i - μ_j) - β (s_i + s_j) = L_i - U_j``::

        i = argmax_i  min_{j != i} LCB_ij
        j = argmin_{j != i} LCB_ij                (= argmax_{j != i} U_j)

    Both argmax/argmin break ties within ``argmax_tol`` (absolute) uniformly at random. Computed in O(K):
    ``min_{j != i} LCB_ij = L_i - max_{j != i} U_j``, and the max over ``j != i`` is the top ``U`` unless ``i``
    holds it, then the runner-up.

    Origin: Pásztor et al. (NeurIPS 2024), "Bandits with Preference Feedback: A Stackelberg Game Perspective",
    as evaluated by AUF (arXiv 2603.09692) among the dueling-bandit baselines.

    Hyperparameters:
        beta: multiplier of the spread ``s`` (default 1.0, ``>= 0``).
        argmax_tol: tie tolerance of both choices (default 1e-4, ``>= 0``).

    Deviations from AUF's released code: AUF's default additionally prunes "clearly suboptimal" arms (those with
    ``U_i - L_j <= 0`` against some ``j``) and skips the prompt when a single arm survives. The rule here is the one
    without pruning: it never skips. Pruning cannot change ``i`` beyond ties (a dominated arm never has a larger
    max-min value than the arm dominating it); it can change ``j`` only when the best rival of ``i`` is itself
    dominated. AUF also draws its tie-breaking permutations from a torch generator; here the agent's numpy generator
    is used, and the computation is O(K) instead of ``K x K``.

    Example:
        >>> import numpy as np
        >>> mean = np.array([[0.0, 1.0, 2.0]], np.float32)
        >>> obs = {"mean": mean, "lower": mean - 0.1, "upper": mean + 0.1,
        ...        "valid": np.ones((1, 3), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> agent = MaxMinLCB()
        >>> agent.reset(seed=0)
        >>> agent.select(obs)  # the leader against its strongest rival
        array([[2, 1]])
    """

    name: ClassVar[str] = "maxminlcb"

    beta: float = 1.0
    argmax_tol: float = 1e-4

    def _validate(self) -> None:
        self.beta = check_number("beta", self.beta, low=0.0)
        self.argmax_tol = check_number("argmax_tol", self.argmax_tol, low=0.0)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        upper, lower = _bounds(batch, self.beta)
        valid = batch.valid
        rows = np.arange(valid.shape[0])
        slots = np.arange(valid.shape[1])
        top = masked_argmax(upper, valid)
        runner_up = masked_argmax(upper, valid & (slots != top[:, None]))
        rival_upper = np.where(slots == top[:, None], upper[rows, runner_up][:, None], upper[rows, top][:, None])
        first = argmax_random_ties(lower - rival_upper, valid, self._rng, self.argmax_tol)
        second = argmax_random_ties(upper, valid & (slots != first[:, None]), self._rng, self.argmax_tol)
        return first, second


@dataclass
class RelativeUCB(Agent):
    r"""Relative Upper Confidence Bound (``rucb``) on a prompt's responses.

    Rule, with ``UCB = μ + β s``::

        C = {k : UCB_k >= max_l L_l}            (responses not ruled out; never empty)
        j ~ Uniform(C)
        i = argmax_{k != j} UCB_k               (ties within argmax_tol broken uniformly at random)

    Origin: Zoghi et al. (ICML 2014), "Relative Upper Confidence Bound for the K-Armed Dueling Bandit Problem",
    with preference UCBs replaced by reward bounds as in AUF (arXiv 2603.09692), dueling-bandit baselines.

    Hyperparameters:
        beta: multiplier of the spread ``s`` (default 1.0, ``>= 0``).
        argmax_tol: tie tolerance of ``i`` (default 1e-4, ``>= 0``; AUF's tie rule).

    Deviations from AUF's released code: AUF's candidate set is ``UCB_k > 0.5`` (a probability-scale threshold
    applied to reward-scale values) and it skips the prompt when a single candidate remains; here the candidate
    set is ``UCB_k >= max_l L_l`` (on the reward scale) and the agent never skips.

    Example:
        >>> import numpy as np
        >>> mean = np.array([[0.0, 1.0, 2.0]], np.float32)
        >>> obs = {"mean": mean, "lower": mean - 0.1, "upper": mean + 0.1,
        ...        "valid": np.ones((1, 3), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> agent = RelativeUCB()
        >>> agent.reset(seed=0)
        >>> agent.select(obs)  # C = {2}: j = 2, i = the best other
        array([[1, 2]])
    """

    name: ClassVar[str] = "rucb"

    beta: float = 1.0
    argmax_tol: float = 1e-4

    def _validate(self) -> None:
        self.beta = check_number("beta", self.beta, low=0.0)
        self.argmax_tol = check_number("argmax_tol", self.argmax_tol, low=0.0)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        upper, lower = _bounds(batch, self.beta)
        valid = batch.valid
        slots = np.arange(valid.shape[1])
        best_lower = np.where(valid, lower, -np.inf).max(axis=1, keepdims=True)
        second = uniform_choice(valid & (upper >= best_lower), self._rng)
        first = argmax_random_ties(upper, valid & (slots != second[:, None]), self._rng, self.argmax_tol)
        return first, second
