"""The synthetic pool is seeded, validated and has the mechanisms of docs/design.md §3.2."""

from __future__ import annotations

import numpy as np
import pytest

from activeuf_env import SyntheticPoolConfig, make_synthetic_pool

CONFIG = SyntheticPoolConfig(n_prompts=1500)


@pytest.fixture(scope="module")
def pool():
    return make_synthetic_pool(CONFIG)


def test_same_seed_same_pool_and_different_seed_differs() -> None:
    small = SyntheticPoolConfig(n_prompts=20, feature_dim=8)
    a, b = make_synthetic_pool(small), make_synthetic_pool(small)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.judge_scores, b.judge_scores)
    c = make_synthetic_pool(SyntheticPoolConfig(n_prompts=20, feature_dim=8, seed=1))
    assert not np.array_equal(a.judge_scores, c.judge_scores)
    d = make_synthetic_pool(small, np.random.default_rng(123))
    assert not np.array_equal(a.true_quality, d.true_quality)


def test_per_model_mean_judge_scores_span_the_paper_range(pool) -> None:
    means = pool.judge_scores.mean(axis=0)
    assert 1.4 <= means.min() <= 1.8
    assert 4.5 <= means.max() <= 4.9
    spread = pool.judge_scores.std(axis=0)
    assert spread[np.argmin(means)] > 1.5 * spread[np.argmax(means)]  # weak models vary more than strong ones


def test_bigger_family_members_are_better(pool) -> None:
    means = pool.true_quality.mean(axis=0).reshape(CONFIG.n_families, CONFIG.family_size)
    assert np.all(np.diff(means, axis=1) > 0)


def test_judge_errors_shrink_with_the_true_gap(pool) -> None:
    rng = np.random.default_rng(0)
    p = rng.integers(0, pool.n_prompts, 200_000)
    i, j = rng.integers(0, 30, (2, 200_000))
    u, s = pool.true_quality, pool.judge_scores
    gap = np.abs(u[p, i] - u[p, j])
    wrong = (s[p, i] > s[p, j]) != (u[p, i] > u[p, j])
    error_rates = [wrong[(i != j) & (gap >= lo) & (gap < hi)].mean() for lo, hi in [(0, 0.25), (0.5, 1), (2, 99)]]
    assert error_rates[0] > 0.3  # close pairs: often mislabelled
    assert error_rates[0] > error_rates[1] > error_rates[2]
    assert error_rates[2] < 0.02  # large gaps: labelled right


def _ridge_r2(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    x_train, x_test = (np.hstack([x, np.ones((len(x), 1))]) for x in (x_train, x_test))
    w = np.linalg.solve(x_train.T @ x_train + 1e-3 * np.eye(x_train.shape[1]), x_train.T @ y_train)
    residual = y_test - x_test @ w
    return 1.0 - residual.var() / y_test.var()


def test_features_predict_quality_but_also_encode_identity(pool) -> None:
    x = pool.features.reshape(-1, pool.feature_dim).astype(np.float64)
    half = len(x) // 2
    u = pool.true_quality.reshape(-1)
    assert _ridge_r2(x[:half], u[:half], x[half:], u[half:]) > 0.3
    # Within-model quality is learnable too, so features are more than a model-identity lookup.
    centred = (pool.true_quality - pool.true_quality.mean(axis=0)).reshape(-1)
    assert _ridge_r2(x[:half], centred[:half], x[half:], centred[half:]) > 0.1
    # Model identity: the family is linearly decodable from features far above chance (1/6).
    family = (pool.model_ids // CONFIG.family_size).reshape(-1)
    onehot = np.eye(CONFIG.n_families)[family]
    x_b = np.hstack([x, np.ones((len(x), 1))])
    w = np.linalg.lstsq(x_b[:half], onehot[:half], rcond=None)[0]
    accuracy = np.mean(np.argmax(x_b[half:] @ w, axis=1) == family[half:])
    assert accuracy > 0.6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_prompts": 1}, "n_prompts must be an integer >= 2, got 1"),
        ({"n_prompts": True}, "n_prompts must be an integer >= 2, got True"),
        ({"feature_dim": 0}, "feature_dim must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"skill_low": 3.0, "skill_high": 1.0}, "skill_low must be below skill_high"),
        ({"skill_low": "low"}, "skill_low must be a finite number, got 'low'"),
        ({"judge_noise": -0.1}, "judge_noise must be a finite number >= 0.0, got -0.1"),
        ({"judge_sharpness": 0.0}, "judge_sharpness must be a finite number > 0.0, got 0.0"),
        ({"quality_weight": float("nan")}, "quality_weight must be a finite number >= 0.0, got nan"),
        ({"family_size": 9}, r"family_size must be an integer in \[1, 7\], got 9"),
        ({"n_families": 1, "family_size": 1}, "n_families \\* family_size must be at least 2"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticPoolConfig(**kwargs)
