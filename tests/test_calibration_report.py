"""The calibration report (baselines/calibration_report.py): curves read at the paper's budget fractions,
labels-to-match and correlations computed from a real (tiny) benchmark, and its figure written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_ENV_KWARGS

from activeuf_env.runner import run_benchmark
from baselines import calibration_report as report


def test_paper_fractions_and_curves_are_aligned() -> None:
    assert report.PAPER_FRACTIONS[-1] == 1.0 and len(report.PAPER_FRACTIONS) == len(report.PAPER_SIZES)
    assert all(len(dpo) == len(rm) == len(report.PAPER_SIZES) for dpo, rm in report.PAPER_CURVES.values())
    # The paper's headline: gap-seekers beat full-data Random at 5k prompts (1/12 of the labels), Random itself later.
    random_final = report.PAPER_CURVES["random"][0][-1]
    assert report.labels_to_match(report.PAPER_FRACTIONS, report.PAPER_CURVES["drts"][0], random_final) < 1 / 6
    assert report.labels_to_match(report.PAPER_FRACTIONS, report.PAPER_CURVES["dts"][0], random_final) == math.inf


def test_bad_pool_names_are_refused() -> None:
    with pytest.raises(ValueError, match="pool must be 'synthetic:<seed>' or 'alpaca', got 'synthetic'"):
        report.env_spec("synthetic")
    with pytest.raises(SystemExit):
        report.parse_args(["--pools", "synthetic:0,alpaca-v0"])


def test_pool_report_from_a_tiny_benchmark(tmp_path: Path) -> None:
    result = run_benchmark(
        "ActiveUF/Synthetic-v0",
        ["random", "maxmin", "dts"],
        2,
        tmp_path / "bench",
        env_kwargs=TINY_ENV_KWARGS,
        plots=False,
        progress=False,
    )
    oracle = {"dpo_score": 0.07, "rm_score": 0.33}
    lines, headline = report.pool_report("synthetic:0", result.results, oracle, tmp_path)
    text = "\n".join(lines)
    assert "Spearman with the paper's final columns" in text and (tmp_path / "curves_synthetic0.png").stat().st_size
    curves = report.mean_curves(result.results)
    fractions, dpo, _ = curves["random"]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and dpo[0] == 0.0
    assert headline["ltm"]["maxmin"] <= headline["ltm"]["random"]  # large gaps reach Random's final score first
    finals = result.results.groupby("agent")["dpo_score"].last()
    assert np.isfinite(headline["rho_dpo"]) and set(headline["ltm"]) == {"random", "maxmin", "dts"}
    assert f"{finals['maxmin']:.3f}" in text
