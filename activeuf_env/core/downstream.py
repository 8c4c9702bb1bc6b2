"""Downstream evaluation: how good are the models trained on the collected preference pairs (docs/design.md §8).

The evaluator stands in for AUF's downstream training (a LoRA reward model scored on RewardBench 2, a DPO policy
scored on GSM8K, IFEval, TruthfulQA and AlpacaEval 2). It trains two small proxies on the collected pairs and
evaluates them on the held-out eval prompts against *true quality*:

- ``rm_score``: a Bradley–Terry reward model, linear in the (normalised) response features, scored on a
  RewardBench-2-style benchmark of 1 chosen vs 3 rejected responses per eval prompt in three categories
  (*focus*, *precise*, *same-skill*); ``rm_score`` is the mean accuracy over the categories. Accuracy is *soft*:
  the probability that the chosen response scores highest when every score is perturbed by the untrained reward
  model's own idiosyncratic preferences (i.i.d. Gumbel noise of scale ``rm_temperature``), so a reward model must
  move far enough from its base, not merely point the right way, to score well.
- ``dpo_score``: a DPO policy restricted to each prompt's candidates, ``π_θ(y|x) ∝ π_ref(y|x)·exp(g_θ(φ_xy))``
  with a linear log-ratio ``g_θ``, scored by its expected true quality relative to the reference (SFT) policy.
  Each pair teaches the policy in proportion to the reference policy's support of its two responses (on-policy
  pairs teach DPO most; pairs of responses the SFT model would never write teach it little).

The reward model is a **budget-limited optimisation, not a fit to convergence**: plain SGD (no Adam) from ``w = 0``,
a fixed small number of epochs at a small learning rate, so how far it moves depends on how large and how
consistent the contrasts in the data are (the "delta learning" effect AUF builds on). The DPO proxy is an
**anchored** optimisation (see :class:`DownstreamEvaluator`): full-batch steps on the DPO loss, an L2 pull toward
the reference (the KL term's role) and likelihood displacement on pairs of similar responses. Its curves therefore
saturate: how fast is set by the number of pairs, how high by the *average* contrast they teach. A DPO proxy
trained to convergence without the anchor anti-correlates with AUF's ranking (docs/design.md §8.1).

Design choices beyond the plainest evaluator (the calibration against AUF's table needs them; docs/design.md §8.5):

- The reward model is linear in the features, not an MLP head: a linear head trained by budget-limited SGD already
  separates the methods once accuracy is soft, and it keeps an evaluation at a few ms so the env can evaluate
  every round.
- The RM benchmark's accuracy is soft (``rm_temperature``); ``score_reward_model(scores)`` still gives the hard
  RewardBench accuracy of any scores.
- The DPO loss of each pair is weighted by the reference policy's support of its two responses
  (``dpo_support_width``; ``None`` restores the plain, unweighted DPO loss), anchored (``dpo_weight_decay``) and
  displaced (``dpo_displacement``); best-vs-worst oracle pairs are therefore not the best possible data for the DPO
  proxy: ``S*`` is a reference, not an upper bound, and regret can be negative.
- Both proxies' outputs are multiplied by per-pool scales fixed at construction so that the oracle pair set reaches
  ``dpo_oracle_target`` / ``rm_oracle_target``: feature dimension and how strongly features carry quality differ
  between pools, and this rule (derived from the pool, not from its name) puts every pool on one scale.

The calibration history of the constants is in docs/calibration.md.
"""

from __future__ import annotations

import numpy as np
import torch

from activeuf_env.core.downstream_config import DownstreamConfig, DownstreamScores
from activeuf_env.core.pool import ResponsePool
from activeuf_env.core.proxy_training import feature_scale, fit_logistic, solve_scale, weighted_mean_features
from activeuf_env.core.rm_benchmark import CATEGORIES, N_REJECTED, build_benchmark, model_skill_quantiles

__all__ = [
    "CATEGORIES",
    "N_REJECTED",
    "DownstreamConfig",
    "DownstreamEvaluator",
    "DownstreamScores",
    "model_skill_quantiles",
]

_MIN_GAIN = 1e-9  # eval prompts whose best response is (numerically) no better than the reference are left out


class DownstreamEvaluator:
    """Trains the reward-model and DPO proxies on collected pairs and scores them on held-out prompts (design.md §8).

    Built once per instance; :meth:`evaluate` is a pure function of the pairs (the same pairs in any order give
    identical floats), so it can run every round. Everything random (the benchmark's draws, the SGD minibatch
    order) comes from generators seeded with ``seed``.

    **Reward model** (``rm_score``). A Bradley–Terry model ``r(φ) = w·φ`` trained from ``w = 0`` by plain SGD on
    ``−log sigmoid(r(c) − r(r))``. The benchmark, drawn once from the eval prompts and their *true quality*, mirrors
    RewardBench 2: for each eval prompt one chosen and ``N_REJECTED = 3`` rejected responses in each category,

    - *focus*: chosen uniform from the top ``focus_top_fraction`` of the prompt's responses by true quality,
      rejected uniform from the bottom ``focus_bottom_fraction`` (clearly worse);
    - *precise*: chosen = the best response, rejected = the next three best;
    - *same-skill*: four responses of models adjacent in skill (a random window of four consecutive responses when
      the prompt's responses are sorted by their model's mean true quality over both pools), chosen = the truly
      best of the four, so that model identity says (almost) nothing.

    Rejected responses are always strictly worse than the chosen one; a prompt with fewer than 4 valid responses
    repeats rejected ones (and has no same-skill item). An item is correct when the chosen response outscores all
    three rejected; ties at the top count as a uniform random tie-break (``1 / (1 + number tied)``), so the
    untrained model (all scores equal) scores exactly chance, 0.25, and true quality scores 1.0. :meth:`evaluate`
    scores the trained head softly (``rm_temperature > 0``): an item's credit is ``softmax(r / τ)[chosen]``, the
    probability that the chosen response wins once the base model's own preferences (i.i.d. Gumbel noise of scale
    ``τ``) are added to every score; it tends to the hard credit as ``τ → 0`` and is 0.25 for equal scores.

    **DPO policy** (``dpo_score``). ``π_θ(y|x) ∝ π_ref(y|x)·exp(g_θ(φ_xy))`` over each prompt's valid candidates, with
    ``g_θ(φ) = θ·φ`` trained from ``θ = 0`` (the reference) by anchored full-batch steps on the DPO loss
    ``−log sigmoid(β (g(c) − g(r)))``, ``β = dpo_beta = 0.1``. The reference (SFT) policy is
    ``π_ref(y|x) ∝ exp(−(q_y − ref_center)² / (2 ref_width²))``, with ``q_y`` the skill quantile of the model that
    wrote ``y``: its mass sits on mid-skill models. Per eval prompt the improvement is
    ``(E_π[u] − E_ref[u]) / (max u − E_ref[u])`` (0 = no better than SFT, 1 = always the best response; negative
    when worse), and ``dpo_score`` is its mean over eval prompts. Padded responses get zero mass. Each pair's loss
    is weighted by the reference's support of its two responses,
    ``exp(−((q_c − ref_center)² + (q_r − ref_center)²) / (2 dpo_support_width²))``: DPO learns most from pairs of
    responses its SFT starting point could have written.

    **Why the DPO curves saturate, and at what level.** Real DPO moves the policy quickly where a pair's contrast
    is large and consistent, is held near the reference by its KL term, lets its normalised (Adam) steps go far only
    where the pairs' gradients agree, and on pairs of similar responses lowers the likelihood of *both*. The proxy
    keeps those four effects: (1) full-batch steps, as many as minibatch SGD would take (the step count grows with
    the pairs; their order does not matter); (2) an L2 anchor to the reference (``dpo_weight_decay``), so ``θ``
    approaches the fixed point ``θ* = ρ^p β E[w σ(−m) Δ] / λ`` geometrically: a curve plateaus after a fixed number
    of labels, at a height set by the pairs' *average* support-weighted contrast; (3) the consistency ``ρ`` of the
    per-pair gradients (``dpo_consistency_power``): gap-seeking pair sets agree and reach their level at once, random
    and partly mislabelled sets start low and creep up as more pairs reveal their mean; (4) a displacement term
    ``−κ max(cos(c̃, r̃), 0) (c̃ + r̃) / 2`` per pair, which for similar pairs near the top of a prompt pushes the
    policy *away* from its good responses (those pair sets end near zero). The log-ratio is finally multiplied by
    a per-pool scale chosen so the oracle pair set reaches ``dpo_oracle_target``.

    Args:
        train: the train pool, whose prompt indices the pairs refer to.
        eval_pool: the held-out pool the proxies are scored on.
        seed: seeds the benchmark draw and the SGD minibatch order.
        config: the evaluator's constants (defaults to ``DownstreamConfig()``).
        device: torch device of the DPO proxy's full-batch steps (float64; ``"cpu"``, the default, runs them in
            numpy). Everything else (the reward model's many small SGD steps, the scoring) runs in numpy on the CPU.

    Example:
        >>> from activeuf_env.core.synthetic import SyntheticPoolConfig, make_synthetic_pool
        >>> pool = make_synthetic_pool(SyntheticPoolConfig(n_prompts=120, feature_dim=16))
        >>> train, held_out = pool.split(40, np.random.default_rng(0))
        >>> evaluator = DownstreamEvaluator(train, held_out, seed=0)
        >>> untrained = evaluator.evaluate(np.zeros((0, 3), np.int64))
        >>> untrained.rm_score, untrained.dpo_score
        (0.25, 0.0)
        >>> evaluator.score_reward_model(held_out.true_quality)["focus"]
        1.0
        >>> oracle = evaluator.evaluate(evaluator.oracle_pairs())
        >>> oracle.dpo_score > 0 and oracle.rm_score > 0.25
        True
    """

    def __init__(
        self,
        train: ResponsePool,
        eval_pool: ResponsePool,
        seed: int = 0,
        config: DownstreamConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(train, ResponsePool) or not isinstance(eval_pool, ResponsePool):
            raise ValueError(
                f"train and eval_pool must be ResponsePool, got {type(train).__name__} and {type(eval_pool).__name__}"
            )
        if train.feature_dim != eval_pool.feature_dim:
            raise ValueError(
                f"eval_pool must have the train pool's feature dimension {train.feature_dim}, "
                f"got {eval_pool.feature_dim}"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.config = config if config is not None else DownstreamConfig()
        if not isinstance(self.config, DownstreamConfig):
            raise ValueError(f"config must be a DownstreamConfig, got {type(self.config).__name__}")
        self.train, self.eval_pool, self.seed = train, eval_pool, int(seed)
        self.device = torch.device(device)
        cfg = self.config

        self.feature_scale = feature_scale(train) if cfg.normalize_features else 1.0
        self.skill_quantile = model_skill_quantiles(train, eval_pool)
        self._eval_features = np.asarray(eval_pool.features, dtype=np.float64) / self.feature_scale
        self._eval_valid = eval_pool.valid
        self._eval_quality = np.where(eval_pool.valid, eval_pool.true_quality, 0.0).astype(np.float64)
        quantile = self.skill_quantile[eval_pool.model_ids]
        log_ref = -0.5 * ((quantile - cfg.ref_center) / cfg.ref_width) ** 2
        self._log_ref = np.where(eval_pool.valid, log_ref, -np.inf)
        self._ref_value = self._expected_quality(np.zeros_like(self._eval_quality))
        best = np.max(np.where(eval_pool.valid, eval_pool.true_quality, -np.inf), axis=1).astype(np.float64)
        self._gain = best - self._ref_value
        self._dpo_included = self._gain > _MIN_GAIN * max(1.0, float(np.max(np.abs(best))))
        if not self._dpo_included.any():
            raise ValueError("eval_pool has no prompt whose best response beats the reference policy's expectation")
        self._benchmark = build_benchmark(
            eval_pool,
            self.skill_quantile,
            cfg.focus_top_fraction,
            cfg.focus_bottom_fraction,
            np.random.default_rng([self.seed, 0]),
        )
        self._reference: DownstreamScores | None = None
        self._eval_ref_mean = self._ref_mean_features(eval_pool, self._eval_features)
        self._train_ref_mean: np.ndarray | None = None
        self.dpo_scale = self.rm_scale = 1.0
        if cfg.dpo_oracle_target is not None or cfg.rm_oracle_target is not None:
            oracle = self._check_pairs(self.oracle_pairs())
            if cfg.dpo_oracle_target is not None:
                g = self._fit_policy(oracle)
                self.dpo_scale = solve_scale(
                    lambda k: self.score_policy(k * g), cfg.dpo_oracle_target, "dpo_oracle_target"
                )
            if cfg.rm_oracle_target is not None:
                delta = self._pair_differences(oracle)
                w = fit_logistic(delta, 1.0, cfg.rm_epochs, cfg.rm_lr, cfg.rm_batch_size, self._sgd_rng())
                scores, tau = self._eval_features @ w, cfg.rm_temperature
                rm_at = lambda k: float(np.mean(list(self.score_reward_model(k * scores, temperature=tau).values())))  # noqa: E731
                self.rm_scale = solve_scale(rm_at, cfg.rm_oracle_target, "rm_oracle_target")

    def _dpo_pair_features(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chosen and rejected features as the DPO proxy sees them (scaled, centred on the reference mean)."""
        if self._train_ref_mean is None:
            self._train_ref_mean = self._ref_mean_features(self.train)
        p, c, r = pairs.T
        fc = np.asarray(self.train.features[p, c], np.float64) / self.feature_scale
        fr = np.asarray(self.train.features[p, r], np.float64) / self.feature_scale
        return fc - self._train_ref_mean[p], fr - self._train_ref_mean[p]

    def _fit_policy(self, pairs: np.ndarray) -> np.ndarray:
        """Train the DPO proxy on (canonical) pairs; return its eval log-ratio ``[n_eval, K]`` (before dpo_scale)."""
        cfg = self.config
        if not len(pairs):
            return np.zeros(self._eval_valid.shape)
        fc, fr = self._dpo_pair_features(pairs)
        delta = fc - fr
        push = None
        if cfg.dpo_displacement:
            norms = np.linalg.norm(fc, axis=1) * np.linalg.norm(fr, axis=1)
            cos = np.sum(fc * fr, axis=1) / np.maximum(norms, 1e-12)
            push = cfg.dpo_displacement * np.maximum(cos, 0.0)[:, None] * (fc + fr) / 2.0
        theta = fit_logistic(
            delta,
            cfg.dpo_beta,
            cfg.dpo_epochs,
            cfg.dpo_lr,
            cfg.dpo_batch_size,
            self._sgd_rng(),
            weight=self._pair_support(pairs),
            decay=cfg.dpo_weight_decay,
            full_batch=cfg.dpo_full_batch,
            push=push,
            consistency_power=cfg.dpo_consistency_power,
            device=self.device,
        )
        g = (self._eval_features - self._eval_ref_mean[:, None, :]) @ theta
        return np.where(self._eval_valid, g, 0.0)

    def _ref_mean_features(self, pool: ResponsePool, features: np.ndarray | None = None) -> np.ndarray:
        """``E_ref[φ]`` per prompt (normalised features), float64 ``[n_prompts, D]``."""
        cfg = self.config
        quantile = self.skill_quantile[pool.model_ids]
        log_ref = np.where(pool.valid, -0.5 * ((quantile - cfg.ref_center) / cfg.ref_width) ** 2, -np.inf)
        return weighted_mean_features(pool, log_ref, self.feature_scale, features)

    def evaluate(self, pairs: np.ndarray) -> DownstreamScores:
        """Train both proxies on ``pairs`` and score them on the eval prompts.

        Args:
            pairs: int array ``[n, 3]`` of (train prompt index, chosen response, rejected response), or ``[n, 4]``
                as returned by ``ActiveUFEnv.collected_pairs()`` (the fourth column, the round, is ignored).
                ``n = 0`` gives the untrained models' scores (``rm_score`` 0.25, ``dpo_score`` 0.0).

        Returns:
            The :class:`DownstreamScores`; identical for the same pairs in any order.

        Raises:
            ValueError: for a wrong shape or dtype, an index out of range or a padded response (the message names
                the row and the value).
        """
        pairs = self._check_pairs(pairs)
        delta = self._pair_differences(pairs)
        cfg = self.config
        w = fit_logistic(delta, 1.0, cfg.rm_epochs, cfg.rm_lr, cfg.rm_batch_size, self._sgd_rng())
        accuracy = self.score_reward_model(self._eval_features @ (self.rm_scale * w), temperature=cfg.rm_temperature)
        dpo = self.score_policy(self.dpo_scale * self._fit_policy(pairs))
        rm = float(np.mean([accuracy[c] for c in CATEGORIES]))
        return DownstreamScores(
            rm_score=rm,
            dpo_score=dpo,
            score=(rm + dpo) / 2.0,
            rm_focus=accuracy["focus"],
            rm_precise=accuracy["precise"],
            rm_same_skill=accuracy["same_skill"],
            n_pairs=len(pairs),
        )

    def score_reward_model(self, scores: np.ndarray, temperature: float = 0.0) -> dict[str, float]:
        """Accuracy of any reward model on the benchmark, given its scores of every eval response.

        Args:
            scores: float ``[n_eval_prompts, K]``, the reward of every eval response (padded slots are ignored).
                Passing ``eval_pool.true_quality`` (a perfect reward model) gives 1.0 in every category.
            temperature: ``0`` (default) for the hard accuracy; ``τ > 0`` for the soft accuracy
                ``softmax(scores / τ)[chosen]`` per item (see ``DownstreamConfig.rm_temperature``).

        Returns:
            ``{category: accuracy}`` for each of :data:`CATEGORIES` (plain floats; ties count ``1 / (1 + tied)``).
        """
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != self._eval_valid.shape:
            raise ValueError(f"scores must have shape {self._eval_valid.shape} (eval prompts, K), got {scores.shape}")
        if not np.isfinite(scores[self._eval_valid]).all():
            raise ValueError("scores must be finite on every valid eval response")
        out = {}
        for category in CATEGORIES:
            items, included = self._benchmark.items[category], self._benchmark.included[category]
            picked = np.take_along_axis(scores, items, axis=1)[included]
            if temperature > 0:
                logits = (picked - picked.max(axis=1, keepdims=True)) / temperature
                weights = np.exp(logits)
                credit = weights[:, 0] / weights.sum(axis=1)
            else:
                chosen, rejected = picked[:, :1], picked[:, 1:]
                top = rejected.max(axis=1, keepdims=True)
                tied = np.sum(rejected == chosen, axis=1)
                credit = np.where(
                    chosen[:, 0] > top[:, 0], 1.0, np.where(chosen[:, 0] == top[:, 0], 1.0 / (1 + tied), 0.0)
                )
            out[category] = float(credit.mean()) if credit.size else 0.0
        return out

    def score_policy(self, log_ratio: np.ndarray) -> float:
        """``dpo_score`` of the policy ``π ∝ π_ref·exp(log_ratio)`` on the eval prompts.

        Args:
            log_ratio: float ``[n_eval_prompts, K]``, the policy's log-ratio ``g`` to the reference for every eval
                response (padded slots are ignored). All zeros (the reference policy) gives exactly 0.0.

        Returns:
            The mean over eval prompts of ``(E_π[u] − E_ref[u]) / (max u − E_ref[u])``.
        """
        log_ratio = np.asarray(log_ratio, dtype=np.float64)
        if log_ratio.shape != self._eval_valid.shape:
            raise ValueError(
                f"log_ratio must have shape {self._eval_valid.shape} (eval prompts, K), got {log_ratio.shape}"
            )
        if not np.isfinite(log_ratio[self._eval_valid]).all():
            raise ValueError("log_ratio must be finite on every valid eval response")
        value = self._expected_quality(log_ratio)
        inc = self._dpo_included
        return float(np.mean((value[inc] - self._ref_value[inc]) / self._gain[inc]))

    def oracle_pairs(self) -> np.ndarray:
        """The oracle dataset: (prompt, truly best, truly worst) for every train prompt, int64 ``[N_train, 3]``."""
        quality = self.train.true_quality
        best = np.argmax(np.where(self.train.valid, quality, -np.inf), axis=1)
        worst = np.argmin(np.where(self.train.valid, quality, np.inf), axis=1)
        return np.stack([np.arange(self.train.n_prompts), best, worst], axis=1).astype(np.int64)

    def reference_scores(self) -> DownstreamScores:
        """The scores of the evaluator trained on :meth:`oracle_pairs` (computed once, then cached)."""
        if self._reference is None:
            self._reference = self.evaluate(self.oracle_pairs())
        return self._reference

    def reference_score(self) -> float:
        """The reference score ``S*`` of the instance: ``score`` of :meth:`reference_scores` (cached)."""
        return self.reference_scores().score

    # ------------------------------------------------------------------ internals

    def _sgd_rng(self) -> np.random.Generator:
        """A fresh generator per fit, so that an evaluation is a pure function of its pairs."""
        return np.random.default_rng([self.seed, 1])

    def _expected_quality(self, log_ratio: np.ndarray) -> np.ndarray:
        """``E_π[u]`` per eval prompt for ``π ∝ π_ref·exp(log_ratio)`` (padded responses get zero mass)."""
        logits = self._log_ref + log_ratio
        logits = logits - logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return np.sum(weights * self._eval_quality, axis=1) / np.sum(weights, axis=1)

    def _check_pairs(self, pairs: np.ndarray) -> np.ndarray:
        pairs = np.asarray(pairs)
        if pairs.ndim != 2 or pairs.shape[1] not in (3, 4):
            raise ValueError(f"pairs must have shape [n, 3] or [n, 4], got {pairs.shape}")
        if pairs.size and not np.issubdtype(pairs.dtype, np.integer):
            raise ValueError(f"pairs must be integers, got dtype {pairs.dtype}")
        pairs = pairs[:, :3].astype(np.int64)
        n, k = self.train.n_prompts, self.train.n_responses
        for column, name, high in ((0, "prompt index", n), (1, "chosen index", k), (2, "rejected index", k)):
            bad = (pairs[:, column] < 0) | (pairs[:, column] >= high)
            if bad.any():
                row = int(np.argmax(bad))
                raise ValueError(f"pairs row {row}: {name} must lie in [0, {high}), got {int(pairs[row, column])}")
        padded = ~(self.train.valid[pairs[:, 0], pairs[:, 1]] & self.train.valid[pairs[:, 0], pairs[:, 2]])
        if padded.any():
            row = int(np.argmax(padded))
            raise ValueError(f"pairs row {row}: {pairs[row].tolist()} names a padded (invalid) response")
        # Canonical order, so that the SGD minibatches (and hence the scores) do not depend on the input order.
        return pairs[np.lexsort((pairs[:, 2], pairs[:, 1], pairs[:, 0]))]

    def _pair_support(self, pairs: np.ndarray) -> np.ndarray | None:
        """Per-pair DPO weight: the reference support of both responses (``None`` when support is off)."""
        width = self.config.dpo_support_width
        if width is None:
            return None
        p, c, r = pairs.T
        quantile = self.skill_quantile[np.stack([self.train.model_ids[p, c], self.train.model_ids[p, r]])]
        return np.exp(-np.sum((quantile - self.config.ref_center) ** 2, axis=0) / (2.0 * width**2))

    def _pair_differences(self, pairs: np.ndarray) -> np.ndarray:
        """Normalised feature differences ``φ(chosen) − φ(rejected)``, float64 ``[n, D]``."""
        if not len(pairs):
            return np.zeros((0, self.train.feature_dim))
        p, c, r = pairs.T
        chosen = np.asarray(self.train.features[p, c], dtype=np.float64)
        rejected = np.asarray(self.train.features[p, r], dtype=np.float64)
        return (chosen - rejected) / self.feature_scale
