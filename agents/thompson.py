"""Thompson-sampling agents: Double Thompson Sampling (``dts``) and Double Reverse Thompson Sampling (``drts``).

Notation (docs/design.md §6.2), per prompt and over its valid responses only: ``μ = mean``,
``s = (upper - lower) / 2`` and ``β`` the agent's own multiplier. A "Thompson draw" samples ``z_k ~ U(-1, 1)``
independently per response and takes ``argmax_k μ_k + β z_k s_k``: the ENN's ensemble bounds are read as a uniform
posterior of half-width ``β s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from agents._ops import thompson_argmax, thompson_second
from agents.base import Agent, Batch, check_int, check_number

__all__ = ["DoubleReverseThompsonSampling", "DoubleThompsonSampling"]


@dataclass
class DoubleThompsonSampling(Agent):
    r"""Double Thompson Sampling over a prompt's responses (``dts``).

    Rule, with fresh ``z, z' ~ U(-1, 1)^K`` per prompt::

        i = argmax_k  μ_k + β z_k  s_k
        j = argmax_k  μ_k + β z'_k s_k,   z' redrawn until j != i (max_tries draws in all),
                                          then j uniform over the other valid responses.

    Origin: the dueling-bandit DTS of Wu & Liu (NeurIPS 2016), in the form AUF evaluates as a baseline
    (ActiveUltraFeedback, arXiv 2603.09692, response-pair selection methods). Both responses chase the top of the
    posterior, so DTS picks close, high-quality pairs; AUF finds it weak for DPO (docs/calibration.md §1).

    Hyperparameters:
        beta: multiplier of the spread ``s`` (default 1.0, ``>= 0``; 0 makes both draws the greedy argmax).
        max_tries: draws of ``z'`` before the uniform fallback (default 30, ``>= 1``).

    Deviations from AUF's released code: (1) its fallback after the last try, ``np.random.randint(0, K)``, can
    return ``i`` again or a padded slot; here it is uniform over the *other valid* responses, so ``i != j``
    always; (2) it draws from the global ``np.random`` state; here the agent's own seeded generator is used;
    (3) one released version used 10 tries for DTS and 30 for DRTS; both default to 30 here. The tries
    are vectorized (all remaining tries drawn at once for the prompts whose first try collided), which leaves
    the sampling distribution unchanged.

    Example:
        >>> import numpy as np
        >>> agent = DoubleThompsonSampling()
        >>> agent.reset(seed=0)
        >>> mean = np.array([[0.0, 1.0, 5.0]], np.float32)
        >>> obs = {"mean": mean, "lower": mean - 0.1, "upper": mean + 0.1,
        ...        "valid": np.ones((1, 3), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> pairs = agent.select(obs)  # 2 wins every draw, so j falls back to uniform over {0, 1}
        >>> int(pairs[0, 0]), int(pairs[0, 1]) in (0, 1)
        (2, True)
    """

    name: ClassVar[str] = "dts"
    reverse: ClassVar[bool] = False

    beta: float = 1.0
    max_tries: int = 30

    def _validate(self) -> None:
        self.beta = check_number("beta", self.beta, low=0.0)
        self.max_tries = check_int("max_tries", self.max_tries, low=1)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        mean, spread, valid = batch.mean, batch.spread, batch.valid
        first = thompson_argmax(mean, spread, valid, self.beta, self._rng)
        second_mean = -mean if self.reverse else mean
        second = thompson_second(first, second_mean, spread, valid, self.beta, self._rng, self.max_tries)
        return first, second


@dataclass
class DoubleReverseThompsonSampling(DoubleThompsonSampling):
    r"""Double Reverse Thompson Sampling (``drts``), one of AUF's two proposed methods.

    Rule, with fresh ``z, z' ~ U(-1, 1)^K`` per prompt::

        i = argmax_k   μ_k + β z_k  s_k          (a plausibly best response)
        j = argmax_k  -μ_k + β z'_k s_k          (a plausibly worst response),
            z' redrawn until j != i (max_tries draws in all), then j uniform over the other valid responses.

    Origin: ActiveUltraFeedback (arXiv 2603.09692), DRTS, proposed with DeltaUCB: pairs with a large predicted
    quality gap, after the delta-learning results of Geng et al. (2025). It tops AUF's DPO column among the
    uncertainty-aware methods (docs/calibration.md §1).

    Hyperparameters:
        beta: multiplier of the spread ``s`` (default 1.0, ``>= 0``).
        max_tries: draws of ``z'`` before the uniform fallback (default 30, ``>= 1``).

    Deviations from AUF's released code: the same as :class:`DoubleThompsonSampling` (a fallback that can
    repeat ``i`` or hit a padded slot, global ``np.random`` state); the rule itself is unchanged.

    Example:
        >>> import numpy as np
        >>> agent = DoubleReverseThompsonSampling()
        >>> agent.reset(seed=0)
        >>> mean = np.array([[0.0, 1.0, 5.0]], np.float32)
        >>> obs = {"mean": mean, "lower": mean - 0.1, "upper": mean + 0.1,
        ...        "valid": np.ones((1, 3), np.int8), "prompt_valid": np.ones(1, np.int8)}
        >>> agent.select(obs)  # the clear best against the clear worst
        array([[2, 0]])
    """

    name: ClassVar[str] = "drts"
    reverse: ClassVar[bool] = True
