"""Judges and their noise wrappers, vectorized over the batch."""

from __future__ import annotations

import numpy as np
import pytest

from activeuf_env import BradleyTerryJudge, FlipNoise, PositionBias, ScoreJudge, TieAbstain, make_judge

SCORES = np.array([[1.0, 2.0, 2.0, 5.0]])


def _batch(i: list[int], j: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(len(i), dtype=np.int64), np.array(i), np.array(j)


def test_score_judge_prefers_higher_score_and_first_on_ties() -> None:
    judge = ScoreJudge(SCORES)
    verdict = judge.label(*_batch([0, 3, 1, 2], [1, 0, 2, 1]), np.random.default_rng(0))
    assert verdict.tolist() == [False, True, True, True]


def test_score_judge_random_tie_break_is_fair_and_seeded() -> None:
    judge = ScoreJudge(SCORES, tie_break="random")
    p, i, j = _batch([1] * 4000, [2] * 4000)
    first = judge.label(p, i, j, np.random.default_rng(1))
    assert 0.45 < first.mean() < 0.55
    np.testing.assert_array_equal(first, judge.label(p, i, j, np.random.default_rng(1)))
    assert judge.label(*_batch([3], [0]), np.random.default_rng(0)).tolist() == [True]


def test_bradley_terry_matches_its_probability() -> None:
    judge = BradleyTerryJudge(SCORES, temperature=2.0)
    p, i, j = _batch([1] * 20000, [0] * 20000)
    expected = 1.0 / (1.0 + np.exp(-0.5))
    assert abs(judge.label(p, i, j, np.random.default_rng(0)).mean() - expected) < 0.015


def test_flip_noise_flips_at_its_rate() -> None:
    judge = FlipNoise(ScoreJudge(SCORES), p=0.3)
    p, i, j = _batch([3] * 20000, [0] * 20000)
    assert abs((~judge.label(p, i, j, np.random.default_rng(0))).mean() - 0.3) < 0.015


def test_position_bias_favours_the_first_index() -> None:
    judge = PositionBias(ScoreJudge(SCORES), p_first=0.25)
    p, i, j = _batch([0] * 20000, [3] * 20000)
    assert abs(judge.label(p, i, j, np.random.default_rng(0)).mean() - 0.25) < 0.015


def test_tie_abstain_marks_close_pairs_and_composes() -> None:
    judge = TieAbstain(FlipNoise(ScoreJudge(SCORES), p=0.0), margin=0.5)
    assert judge.abstains(*_batch([1, 0, 3], [2, 1, 0])).tolist() == [True, False, False]
    assert judge.scores is SCORES


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ScoreJudge(SCORES, tie_break="last"), "tie_break must be 'first' or 'random', got 'last'"),
        (lambda: BradleyTerryJudge(SCORES, temperature=0.0), "temperature must be a finite number > 0.0, got 0.0"),
        (lambda: FlipNoise(ScoreJudge(SCORES), p=1.5), r"p must be a finite number in \[0.0, 1.0\], got 1.5"),
        (lambda: make_judge(SCORES, "oracle"), "judge must be .*got 'oracle'"),
        (lambda: make_judge(SCORES, noise={"loud": 1.0}), "judge noise must be .*got 'loud'"),
    ],
)
def test_bad_judge_arguments_name_the_value(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
