"""The downstream evaluator's constants (:class:`DownstreamConfig`) and its result (:class:`DownstreamScores`).

Kept apart from :mod:`activeuf_env.core.downstream`, which defines the proxies and re-exports both classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from activeuf_env._validation import check_bool, check_int, check_number

__all__ = ["DownstreamConfig", "DownstreamScores"]


@dataclass(frozen=True)
class DownstreamConfig:
    """Every constant of the downstream evaluator (docs/design.md §8); validated on construction.

    Calibrated defaults (on three draws of the synthetic pool against AUF's table and learning curves; what each
    alternative gave and the commands that measure it: docs/calibration.md):

    - ``rm_temperature = 1.5``: scale of the base model's own preferences, which a short RM fine-tune must outweigh
      (only with ``rm_oracle_target=None``: the soft accuracy depends on ``rm_scale / τ``, which that rule sets).
    - ``dpo_support_width = 0.22``: DPO learns most from pairs its SFT reference could have written.
    - ``dpo_lr = 360``, ``dpo_weight_decay = 0.00104``: the policy reaches its fixed point within a few dozen pairs,
      so curves plateau early, at a height set by the pairs' average contrast.
    - ``dpo_consistency_power = 0.25``: pairs whose gradients disagree teach less (random pairs plateau at about
      half of the gap-seekers' level, as in AUF); ``dpo_displacement = 2``: close, similar pairs end near 0.
    - ``dpo_oracle_target = 0.07``, ``rm_oracle_target = 0.33``: what the oracle pair set reached on
      ``ActiveUF/Synthetic-v0`` before the rule existed, so that pool is unchanged by it.
    - ``rm_lr = 0.5`` for 2 epochs leaves the reward model short of convergence; ``ref_center = 0.5`` and
      ``ref_width = 0.15`` put the reference's mass on the middle third of the models by skill.

    The reward model is trained by plain minibatch SGD from ``w = 0`` for a fixed budget: ``rm_epochs`` passes over
    the pairs, minibatches of ``rm_batch_size``, a constant learning rate; the DPO proxy takes as many steps, each
    on all pairs (``dpo_full_batch``). Features are divided by one scalar (the root-mean-square norm of a response's
    feature minus its prompt's mean feature, over the train pool) when ``normalize_features`` is set, so that
    learning rates mean the same on pools of different feature dimension and scale.

    Args:
        rm_epochs: passes of the reward model's SGD over the pairs.
        rm_lr: the reward model's SGD learning rate.
        rm_batch_size: pairs per reward-model SGD step.
        rm_temperature: scale ``τ`` of the soft benchmark accuracy: an item's credit is
            ``softmax(scores / τ)[chosen]`` over its four responses, the probability that the chosen response
            scores highest once every score is perturbed by i.i.d. Gumbel noise of scale ``τ`` (the untrained
            reward model's own preferences, which a budget-limited fine-tune must outweigh). ``0`` gives the hard
            accuracy (ties count ``1 / (1 + tied)``). The untrained model scores exactly chance, 0.25, either way.
        dpo_epochs: with ``dpo_batch_size``, sets the DPO proxy's number of steps, ``dpo_epochs · ceil(n / batch)``.
        dpo_lr: the DPO policy's learning rate.
        dpo_batch_size: pairs per DPO step when ``dpo_full_batch`` is off.
        dpo_beta: DPO's β in ``−log sigmoid(β (g(c) − g(r)))`` (AUF and the usual DPO default: 0.1).
        dpo_support_width: width ``σ_s`` (in skill quantile) of the reference support that weights each DPO pair:
            pair ``(c, r)``'s loss is multiplied by ``exp(−((q_c − ref_center)² + (q_r − ref_center)²) / (2 σ_s²))``,
            ``q`` the skill quantile of a response's model (1 for a pair of the reference's favourite model,
            smaller the further off-policy). ``None`` weights every pair 1.
        ref_center: centre of the reference policy, as a model-skill quantile in ``[0, 1]`` (0 = the weakest model
            of the pool by mean true quality, 1 = the strongest): the SFT model writes like a mid-skill model.
        ref_width: width of the reference policy's Gaussian in skill quantile:
            ``log π_ref(y|x) = −(q(model(y)) − ref_center)² / (2 ref_width²) + const``.
        focus_top_fraction: the *focus* category draws its chosen response from this top fraction of a prompt's
            responses by true quality.
        focus_bottom_fraction: and its rejected ones from this bottom fraction ("clearly worse").
        normalize_features: divide features by the pool's feature scale (see above).
        dpo_weight_decay: the DPO proxy's anchor to the reference: every step also shrinks ``θ`` by
            ``dpo_lr · dpo_weight_decay`` (an L2 / KL term), so ``θ`` converges to the fixed point
            ``ρ^p β E[w σ(−m) Δ] / dpo_weight_decay`` (``ρ^p``: the consistency gate) in about
            ``1 / (dpo_lr · dpo_weight_decay)`` steps. ``0``: none.
        dpo_full_batch: take the DPO proxy's ``dpo_epochs · ceil(n / dpo_batch_size)`` steps on all pairs at once
            (the same number of steps as minibatch SGD): no minibatch-order noise, and no forgetting of early pairs
            under the anchor. ``False``: minibatch SGD.
        dpo_displacement: strength ``κ`` of likelihood displacement: a pair's step is
            ``Δ − κ max(cos(c̃, r̃), 0) (c̃ + r̃) / 2`` with ``c̃``, ``r̃`` the chosen and rejected features
            centred on the prompt's reference-mean feature, so a pair of similar responses lowers the likelihood of
            both (Razin et al. 2024, "likelihood displacement") and moves the policy's mass to the prompt's other
            responses. ``0``: none.
        dpo_consistency_power: power ``p`` of the consistency gate of the full-batch DPO step: its loss gradient is
            multiplied by ``ρ^p``, ``ρ = |E g|² / (|E g|² + tr Cov(g) / dpo_batch_size)`` over the per-pair
            gradients ``g`` (see the evaluator). ``0``: none.
        dpo_oracle_target: the DPO proxy's log-ratio is multiplied by a scale fixed at construction so that the
            oracle pair set (:meth:`DownstreamEvaluator.oracle_pairs`) reaches this ``dpo_score``; ``None``: 1.
        rm_oracle_target: likewise for the reward model's scores and ``rm_score``; ``None``: 1.

    Example:
        >>> DownstreamConfig().dpo_beta
        0.1
        >>> DownstreamConfig(rm_lr=-1.0)
        Traceback (most recent call last):
        ...
        ValueError: rm_lr must be a finite number > 0.0, got -1.0
    """

    rm_epochs: int = 2
    rm_lr: float = 0.5
    rm_batch_size: int = 32
    rm_temperature: float = 1.5
    dpo_epochs: int = 3
    dpo_lr: float = 360.0
    dpo_batch_size: int = 32
    dpo_beta: float = 0.1
    dpo_support_width: float | None = 0.22
    ref_center: float = 0.5
    ref_width: float = 0.15
    focus_top_fraction: float = 0.25
    focus_bottom_fraction: float = 0.5
    normalize_features: bool = True
    dpo_weight_decay: float = 0.00104
    dpo_full_batch: bool = True
    dpo_displacement: float = 2.0
    dpo_oracle_target: float | None = 0.07
    rm_oracle_target: float | None = 0.33
    dpo_consistency_power: float = 0.25

    def __post_init__(self) -> None:
        for name in ("rm_epochs", "rm_batch_size", "dpo_epochs", "dpo_batch_size"):
            check_int(name, getattr(self, name), low=1)
        for name in ("rm_lr", "dpo_lr", "dpo_beta", "ref_width"):
            check_number(name, getattr(self, name), low=0.0, low_open=True)
        check_number("ref_center", self.ref_center, low=0.0, high=1.0)
        check_number("rm_temperature", self.rm_temperature, low=0.0)
        check_number("dpo_support_width", self.dpo_support_width, low=0.0, low_open=True, optional=True)
        for name in ("focus_top_fraction", "focus_bottom_fraction"):
            check_number(name, getattr(self, name), low=0.0, high=1.0, low_open=True)
        check_bool("normalize_features", self.normalize_features)
        check_bool("dpo_full_batch", self.dpo_full_batch)
        check_number("dpo_weight_decay", self.dpo_weight_decay, low=0.0)
        check_number("dpo_displacement", self.dpo_displacement, low=0.0)
        check_number("dpo_consistency_power", self.dpo_consistency_power, low=0.0)
        for name in ("dpo_oracle_target", "rm_oracle_target"):
            check_number(name, getattr(self, name), low=0.0, high=1.0, low_open=True, optional=True)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (for logging)."""
        return asdict(self)


@dataclass(frozen=True)
class DownstreamScores:
    """Downstream scores of one set of pairs; every field is a plain Python number.

    Args:
        rm_score: mean of the three category accuracies of the reward model (chance is 0.25).
        dpo_score: mean normalised policy improvement over the reference policy (0 = SFT, 1 = always the best).
        score: ``(rm_score + dpo_score) / 2`` (AUF's "Final Score/Mean").
        rm_focus: accuracy on the *focus* category.
        rm_precise: accuracy on the *precise* category.
        rm_same_skill: accuracy on the *same-skill* category.
        n_pairs: number of pairs trained on.
    """

    rm_score: float
    dpo_score: float
    score: float
    rm_focus: float
    rm_precise: float
    rm_same_skill: float
    n_pairs: int

    @property
    def rm_accuracy(self) -> dict[str, float]:
        """Per-category accuracies keyed by :data:`CATEGORIES`."""
        return {"focus": self.rm_focus, "precise": self.rm_precise, "same_skill": self.rm_same_skill}

    def to_dict(self) -> dict[str, float | int]:
        """The scores as a plain dict (for ``info`` and logging)."""
        return asdict(self)
