"""Benchmark metrics: regret, cumulative regret, labels-to-match, fractions and bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pytest

from activeuf_env.runner import metrics


def test_compute_regret_is_reference_minus_score() -> None:
    regret = metrics.compute_regret(0.6, np.array([0.1, 0.35, 0.6, 0.7]))
    assert regret.dtype == np.float64
    assert regret.tolist() == pytest.approx([0.5, 0.25, 0.0, -0.1])
    assert float(metrics.compute_regret(1, 0.25)) == 0.75


@pytest.mark.parametrize(
    ("reference", "scores", "message"),
    [(float("nan"), [0.1], "reference_score must be a finite number"), (1.0, [0.1, np.inf], "scores must be finite")],
)
def test_compute_regret_rejects_non_finite(reference: float, scores: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.compute_regret(reference, scores)


def test_cumulative_regret_weights_each_round_by_its_labels() -> None:
    labels, cumulative = metrics.cumulative_regret([0.4, 0.2, 0.1, 0.0], [64, 64, 0, 32])
    assert labels.tolist() == [64, 128, 128, 160]
    assert cumulative.tolist() == pytest.approx([25.6, 38.4, 38.4, 38.4])
    assert np.all(np.diff(cumulative) >= 0)  # non-negative regret never decreases the total


def test_cumulative_regret_of_constant_regret_is_linear_in_labels() -> None:
    spent = np.random.default_rng(0).integers(0, 65, size=20)
    labels, cumulative = metrics.cumulative_regret(np.full(20, 0.5), spent)
    assert cumulative == pytest.approx(0.5 * labels)


@pytest.mark.parametrize(
    ("regret", "spent", "message"),
    [
        ([0.1, 0.2], [1], "same length, got 2 and 1"),
        ([0.1], [-1], "labels_per_round must be non-negative, got -1.0"),
        ([np.nan], [1], "regret must be finite"),
        ([[0.1]], [1], r"regret must be one-dimensional, got shape \(1, 1\)"),
    ],
)
def test_cumulative_regret_validation(regret: list[float], spent: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.cumulative_regret(regret, spent)


def test_episode_cumulative_regret_spends_the_increase_of_labels() -> None:
    regret, labels = [0.5, 0.4, 0.2, 0.1], [0, 64, 128, 128]
    _, expected = metrics.cumulative_regret(regret, [0, 64, 64, 0])
    cumulative = metrics.episode_cumulative_regret(regret, labels)
    assert cumulative.tolist() == expected.tolist() == pytest.approx([0.0, 25.6, 38.4, 38.4])
    assert metrics.episode_cumulative_regret([0.5], [10]).tolist() == [5.0]  # the first point spends its own labels


def test_labels_to_match_finds_the_first_crossing() -> None:
    labels = [0, 64, 128, 192, 256]
    scores = [0.0, 0.2, 0.5, 0.4, 0.6]
    assert metrics.labels_to_match(labels, scores, 0.5) == 128  # reaching the target exactly counts
    assert metrics.labels_to_match(labels, scores, 0.55) == 256
    assert metrics.labels_to_match(labels, scores, -1.0) == 0
    assert metrics.labels_to_match(labels, scores, 0.7) == metrics.NEVER == -1
    assert type(metrics.labels_to_match(labels, scores, 0.5)) is int


@pytest.mark.parametrize(
    ("labels", "scores", "target", "message"),
    [
        ([], [], 0.1, "non-empty and of equal length"),
        ([0, 1], [0.1], 0.1, "equal length, got 2, 1"),
        ([0, 2, 1], [0.1, 0.2, 0.3], 0.1, "labels must be non-decreasing, got 1.0"),
        ([0, 1], [0.1, 0.2], float("inf"), "target must be a finite number, got inf"),
    ],
)
def test_labels_to_match_validation(labels: list[int], scores: list[float], target: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.labels_to_match(labels, scores, target)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0.1667, "1/6"),
        (1 / 6, "1/6"),
        (0.25, "1/4"),
        (0.3333, "1/3"),
        (0.66, "2/3"),
        (0.5, "1/2"),
        (0.0, "0"),
        (1.0, "1"),
        (1.5, "3/2"),
        (-0.25, "-1/4"),
        (0.083, "1/12"),
    ],
)
def test_format_fraction(x: float, expected: str) -> None:
    assert metrics.format_fraction(x) == expected


def test_format_fraction_respects_max_denominator() -> None:
    assert metrics.format_fraction(0.3, max_denominator=12) == "3/10"
    assert metrics.format_fraction(0.3, max_denominator=4) == "1/3"
    assert metrics.format_fraction(0.3, max_denominator=1) == "0"
    with pytest.raises(ValueError, match="max_denominator must be an integer >= 1, got 0"):
        metrics.format_fraction(0.3, max_denominator=0)
    with pytest.raises(ValueError, match="x must be a finite number, got nan"):
        metrics.format_fraction(float("nan"))


def test_bootstrap_ci_is_deterministic_given_the_generator() -> None:
    values = np.random.default_rng(0).normal(size=10)
    first = metrics.bootstrap_ci(values, np.random.default_rng(1), n_resamples=500)
    second = metrics.bootstrap_ci(values, np.random.default_rng(1), n_resamples=500)
    assert first == second
    assert all(type(v) is float for v in first)
    mean, low, high = first
    assert mean == pytest.approx(values.mean()) and low < mean < high


def test_bootstrap_ci_of_one_value_has_zero_width() -> None:
    assert metrics.bootstrap_ci([0.3], np.random.default_rng(0), n_resamples=100) == (0.3, 0.3, 0.3)


def test_bootstrap_ci_narrows_with_lower_confidence_and_more_data() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=40)
    _, low95, high95 = metrics.bootstrap_ci(values, np.random.default_rng(3), n_resamples=2000, confidence=0.95)
    _, low50, high50 = metrics.bootstrap_ci(values, np.random.default_rng(3), n_resamples=2000, confidence=0.5)
    assert low95 < low50 < high50 < high95
    _, low_big, high_big = metrics.bootstrap_ci(rng.normal(size=400), np.random.default_rng(3), n_resamples=2000)
    assert high_big - low_big < (high95 - low95) / 2


def test_bootstrap_ci_coverage_is_near_nominal() -> None:
    """Over 300 samples of 30 standard normals, the 95% interval covers the true mean 0 about 95% of the time."""
    rng = np.random.default_rng(4)
    covered = []
    for _ in range(300):
        _, low, high = metrics.bootstrap_ci(rng.normal(size=30), rng, n_resamples=400)
        covered.append(low <= 0.0 <= high)
    assert 0.88 <= np.mean(covered) <= 0.99


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": []}, "values must hold at least one value"),
        ({"values": [1.0, np.nan]}, "values must be finite"),
        ({"n_resamples": 0}, "n_resamples must be an integer >= 1, got 0"),
        ({"confidence": 1.0}, r"confidence must be a finite number in \(0, 1\), got 1.0"),
        ({"n_resamples": True}, "n_resamples must be an integer >= 1, got True"),
        ({"rng": 0}, "rng must be a numpy.random.Generator, got int"),
    ],
)
def test_bootstrap_ci_validation(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"values": [1.0, 2.0], "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(ValueError, match=message):
        metrics.bootstrap_ci(**arguments)  # type: ignore[arg-type]


def test_mean_ci_is_the_one_bootstrap_setting() -> None:
    values = np.random.default_rng(5).normal(size=7)
    expected = metrics.bootstrap_ci(
        values, np.random.default_rng(metrics.BOOTSTRAP_SEED), n_resamples=metrics.BOOTSTRAP_RESAMPLES
    )
    assert metrics.mean_ci(values) == expected == metrics.mean_ci(values.tolist())
    assert metrics.BOOTSTRAP_RESAMPLES == 10_000
