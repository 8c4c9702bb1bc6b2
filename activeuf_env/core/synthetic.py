"""The embedded synthetic response pool: a seeded generative model of prompts, LLM responses, judge scores and features.

The model reproduces the mechanisms ActiveUltraFeedback's results depend on (docs/design.md §3.2):

1. *Judge differs from truth*: judge scores add noise and a verbosity bias to true quality, so close pairs are often
   mislabelled while large-gap pairs are labelled right.
2. *Model identity in features*: each model family has a style vector and each size a capability component, so a
   reward model can learn an identity shortcut.
3. *Reference-policy support* lives in the downstream evaluator, which starts from a mid-skill reference policy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from activeuf_env._validation import check_int, check_number
from activeuf_env.core.pool import ResponsePool

__all__ = ["SIZE_NAMES", "SyntheticPoolConfig", "make_synthetic_pool"]

SIZE_NAMES = ("xs", "s", "m", "l", "xl", "xxl", "xxxl")
_CHUNK_PROMPTS = 8192


@dataclass(frozen=True)
class SyntheticPoolConfig:
    """Every constant of the synthetic generative model (docs/design.md §3.1).

    Models come in ``n_families`` families of ``family_size`` sizes; model id ``m = family * family_size + size``,
    named ``fam{family}-{size name}`` (sizes ``xs, s, m, l, xl``). Model skill ``a_m`` is spread evenly over
    ``[skill_low, skill_high]`` by rank ``size * n_families + family``, so a bigger member of a family is always more
    skilled and adjacent sizes differ by a modest gap. Every prompt gets one response per model, in slot ``m``.

    For prompt ``p`` and model ``m``:

    - true quality ``u = a_m + A_m · t_p − δ_p + σ_m ε`` (topic ``t_p ~ N(0, I/topic_dim)``, affinity
      ``A_m ~ N(0, affinity_scale²)``, difficulty ``δ_p ~ N(0, difficulty_scale²)``, noise ``σ_m`` linear in skill
      rank from ``noise_weak`` to ``noise_strong``);
    - verbosity ``v = b_m + verbosity_noise ξ`` with tendency ``b_m ~ N(0, verbosity_spread²)``;
    - judge score ``s = 1 + 4 sigmoid(judge_sharpness (u + judge_length_bias v + judge_noise η))``;
    - features ``φ = tanh(W z + c)`` with a fixed random ``W``, where ``z`` stacks the standardised true quality
      (``quality_weight``), the family style vector (``style_weight``), the capability of the model's size
      (``capability_weight``), the topic (``topic_weight``), the verbosity (``verbosity_weight``) and
      ``nuisance_dim`` standard normal nuisance values (``nuisance_weight``).

    All randomness comes from one generator seeded with ``seed`` (or the one passed to :func:`make_synthetic_pool`).

    Calibration against AUF's method ranking (mechanism-level constants only; history, measured effects and the
    command that measures them: see docs/calibration.md):

    - ``style_weight = 0.3``: how visible a family's style is in the features; weak enough that the ensemble does
      not lock onto families early, while model identity stays learnable through ``capability_weight``.
    - ``skill_low``, ``skill_high``: the skill range; per-model mean judge scores run from about 1.6 to 4.7, as in
      AUF's response pool (tests check it).
    - The rest of the calibration is in the evaluator (:class:`~activeuf_env.core.downstream.DownstreamConfig`).

    Example:
        >>> SyntheticPoolConfig(n_prompts=8).n_models
        30
        >>> SyntheticPoolConfig(n_prompts=1)
        Traceback (most recent call last):
        ...
        ValueError: n_prompts must be an integer >= 2, got 1
    """

    seed: int = 0
    n_prompts: int = 1280
    n_families: int = 6
    family_size: int = 5
    feature_dim: int = 64
    topic_dim: int = 8
    style_dim: int = 8
    nuisance_dim: int = 16
    skill_low: float = -3.4
    skill_high: float = 3.2
    noise_strong: float = 0.9
    noise_weak: float = 2.5
    affinity_scale: float = 0.4
    difficulty_scale: float = 0.5
    verbosity_spread: float = 0.5
    verbosity_noise: float = 1.0
    judge_sharpness: float = 1.0
    judge_length_bias: float = 0.3
    judge_noise: float = 0.5
    quality_weight: float = 0.6
    style_weight: float = 0.3
    capability_weight: float = 0.8
    topic_weight: float = 1.0
    verbosity_weight: float = 0.8
    nuisance_weight: float = 1.0

    def __post_init__(self) -> None:
        check_int("seed", self.seed, low=0)
        minimums = {"n_prompts": 2, "n_families": 1, "family_size": 1, "feature_dim": 1, "topic_dim": 1, "style_dim": 1}
        for name, low in {**minimums, "nuisance_dim": 0}.items():
            check_int(name, getattr(self, name), low=low)
        check_int("family_size", self.family_size, low=1, high=len(SIZE_NAMES))
        if self.n_models < 2:
            raise ValueError(f"n_families * family_size must be at least 2, got {self.n_models}")
        for name in ("skill_low", "skill_high", "judge_length_bias"):
            check_number(name, getattr(self, name))
        if not self.skill_low < self.skill_high:
            raise ValueError(f"skill_low must be below skill_high, got {self.skill_low} >= {self.skill_high}")
        for name in (
            "noise_strong",
            "noise_weak",
            "affinity_scale",
            "difficulty_scale",
            "verbosity_spread",
            "verbosity_noise",
            "judge_noise",
            "quality_weight",
            "style_weight",
            "capability_weight",
            "topic_weight",
            "verbosity_weight",
            "nuisance_weight",
        ):
            check_number(name, getattr(self, name), low=0.0)
        check_number("judge_sharpness", self.judge_sharpness, low=0.0, low_open=True)

    @property
    def n_models(self) -> int:
        """Number of models ``M`` (= responses per prompt ``K``)."""
        return self.n_families * self.family_size

    def model_names(self) -> list[str]:
        """Model names in id order, ``fam{family}-{size}``."""
        return [f"fam{f}-{SIZE_NAMES[s]}" for f in range(self.n_families) for s in range(self.family_size)]

    def model_skills(self) -> np.ndarray:
        """Skill ``a_m`` of every model, float64 ``[M]``."""
        family, size = np.divmod(np.arange(self.n_models), self.family_size)
        rank = size * self.n_families + family
        return self.skill_low + (self.skill_high - self.skill_low) * rank / (self.n_models - 1)

    def to_dict(self) -> dict[str, float | int]:
        """The config as a plain dict (for logging)."""
        return asdict(self)


def make_synthetic_pool(
    config: SyntheticPoolConfig | None = None, rng: np.random.Generator | None = None
) -> ResponsePool:
    """Draw a synthetic response pool.

    Args:
        config: the generative model's constants (defaults to ``SyntheticPoolConfig()``).
        rng: the generator to draw from; ``None`` uses ``np.random.default_rng(config.seed)``.

    Returns:
        A validated :class:`ResponsePool` with ``N = config.n_prompts``, ``K = config.n_models`` and
        ``D = config.feature_dim`` (float32 features); its arrays are read-only.

    Example:
        >>> pool = make_synthetic_pool(SyntheticPoolConfig(n_prompts=4, feature_dim=5))
        >>> pool.features.shape, pool.model_names[:2]
        ((4, 30, 5), ['fam0-xs', 'fam0-s'])
        >>> bool(np.array_equal(pool.judge_scores, make_synthetic_pool(SyntheticPoolConfig(n_prompts=4,
        ...     feature_dim=5)).judge_scores))
        True
    """
    cfg = SyntheticPoolConfig() if config is None else config
    rng = np.random.default_rng(cfg.seed) if rng is None else rng
    n, m = cfg.n_prompts, cfg.n_models

    # Per-model and fixed embedding parameters are drawn first so that they do not depend on n_prompts.
    skill = cfg.model_skills()
    rank = np.argsort(np.argsort(skill))
    noise_scale = cfg.noise_weak + (cfg.noise_strong - cfg.noise_weak) * rank / (m - 1)
    affinity = rng.normal(0.0, cfg.affinity_scale, size=(m, cfg.topic_dim))
    verbosity_tendency = rng.normal(0.0, cfg.verbosity_spread, size=m)
    family, size = np.divmod(np.arange(m), cfg.family_size)
    style = rng.normal(0.0, 1.0, size=(cfg.n_families, cfg.style_dim))[family]
    capability = (size / max(cfg.family_size - 1, 1) - 0.5) * 2.0
    latent_dim = 1 + cfg.style_dim + 1 + cfg.topic_dim + 1 + cfg.nuisance_dim
    weights = rng.normal(0.0, 1.0 / np.sqrt(latent_dim), size=(latent_dim, cfg.feature_dim))
    offset = rng.normal(0.0, 0.1, size=cfg.feature_dim)

    topic = rng.normal(0.0, 1.0 / np.sqrt(cfg.topic_dim), size=(n, cfg.topic_dim))
    difficulty = rng.normal(0.0, cfg.difficulty_scale, size=n)
    true_quality = skill + topic @ affinity.T - difficulty[:, None] + noise_scale * rng.standard_normal((n, m))
    verbosity = verbosity_tendency + cfg.verbosity_noise * rng.standard_normal((n, m))
    judge_logit = true_quality + cfg.judge_length_bias * verbosity + cfg.judge_noise * rng.standard_normal((n, m))
    judge_scores = 1.0 + 4.0 / (1.0 + np.exp(-cfg.judge_sharpness * judge_logit))

    quality_std = (true_quality - true_quality.mean()) / true_quality.std()
    identity = np.concatenate([cfg.style_weight * style, cfg.capability_weight * capability[:, None]], axis=1)
    features = np.empty((n, m, cfg.feature_dim), dtype=np.float32)
    for start in range(0, n, _CHUNK_PROMPTS):
        stop = min(start + _CHUNK_PROMPTS, n)
        rows = stop - start
        latent = np.concatenate(
            [
                cfg.quality_weight * quality_std[start:stop, :, None],
                np.broadcast_to(identity, (rows, m, identity.shape[1])),
                np.broadcast_to(cfg.topic_weight * topic[start:stop, None, :], (rows, m, cfg.topic_dim)),
                cfg.verbosity_weight * verbosity[start:stop, :, None],
                cfg.nuisance_weight * rng.standard_normal((rows, m, cfg.nuisance_dim)),
            ],
            axis=-1,
        )
        features[start:stop] = np.tanh(latent @ weights + offset)

    pool = ResponsePool(
        features=features,
        judge_scores=judge_scores.astype(np.float32),
        true_quality=true_quality.astype(np.float32),
        model_ids=np.broadcast_to(np.arange(m), (n, m)).copy(),
        valid=np.ones((n, m), dtype=bool),
        model_names=cfg.model_names(),
        prompt_ids=[f"syn{i:06d}" for i in range(n)],
    )
    for array in (pool.features, pool.judge_scores, pool.true_quality, pool.model_ids, pool.valid):
        array.flags.writeable = False
    return pool
