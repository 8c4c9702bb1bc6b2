"""Plots of the tidy results table: PNGs written off-screen, CI bands from the seeds, clear errors on bad tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")

from activeuf_env.runner.plots import (  # noqa: E402 - after the skip
    curve_stats,
    plot_cumulative_regret,
    plot_final_scores,
    plot_score_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_table(agents: tuple[str, ...] = ("random", "drts", "maxmin"), seeds: int = 3, rounds: int = 5) -> pd.DataFrame:
    """A tidy table shaped like run_benchmark's, with seeded noise (no episodes needed)."""
    rng = np.random.default_rng(0)
    rows = []
    for a, agent in enumerate(agents):
        for seed in range(seeds):
            cumulative = 0.0
            for rnd in range(rounds + 1):
                score = 0.125 + 0.02 * (a + 1) * rnd + (0.01 * rng.standard_normal() if rnd else 0.0)
                regret = 0.4 - score
                cumulative += regret * (16 if rnd else 0)
                rows.append(
                    {"agent": agent, "seed": seed, "round": rnd, "labels": 16 * rnd, "score": score,
                     "rm_score": 0.25 + score, "dpo_score": score / 4, "regret": regret, "reference_score": 0.4,
                     "cumulative_regret": cumulative}
                )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("plot", [plot_score_curves, plot_cumulative_regret, plot_final_scores])
def test_each_plot_writes_a_png_and_returns_its_path(plot: object, tmp_path: Path) -> None:
    backend = matplotlib.get_backend()
    path = plot(make_table(), tmp_path / "sub" / "figure.png")  # type: ignore[operator]
    assert path == tmp_path / "sub" / "figure.png"
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000
    assert matplotlib.get_backend() == backend  # drawn on an Agg canvas, the global backend untouched


def test_cumulative_regret_is_computed_when_the_column_is_missing(tmp_path: Path) -> None:
    from activeuf_env.runner.plots import _with_cumulative_regret

    table = make_table()
    rebuilt = _with_cumulative_regret(table.drop(columns="cumulative_regret").sample(frac=1.0, random_state=0))
    assert np.allclose(rebuilt.sort_index()["cumulative_regret"], table["cumulative_regret"])
    assert plot_cumulative_regret(table.drop(columns="cumulative_regret"), tmp_path / "regret.png").is_file()


def test_a_failed_plot_leaves_no_file_behind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not supported"):
        plot_score_curves(make_table(), tmp_path / "figure.nope")
    assert list(tmp_path.iterdir()) == []


def test_curve_stats_are_means_over_seeds_with_a_band_around_them() -> None:
    table = make_table(seeds=4)
    labels, mean, low, high = curve_stats(table, "score")["drts"]
    assert labels.tolist() == [16.0 * r for r in range(6)]
    expected = table[table["agent"] == "drts"].groupby("round")["score"].mean().to_numpy()
    assert np.allclose(mean, expected)
    assert np.all(low <= mean) and np.all(mean <= high) and low[0] == high[0]  # round 0 is the same for all seeds


def test_plots_reject_empty_or_incomplete_tables(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing \['dpo_score'\]"):
        plot_final_scores(make_table().drop(columns="dpo_score"), tmp_path / "x.png")
    with pytest.raises(ValueError, match="the results table is empty"):
        plot_score_curves(make_table().iloc[:0], tmp_path / "x.png")
