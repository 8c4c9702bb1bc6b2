"""Plots of a benchmark's tidy results table: score and cumulative regret against labels, final scores.

Every function takes the tidy ``pandas.DataFrame`` of :func:`~activeuf_env.runner.benchmark.run_benchmark` (a row
per agent, seed and round; columns :data:`~activeuf_env.runner.episode.RESULT_COLUMNS`) and a path, writes a PNG
(atomically) and returns the path. Figures are drawn on matplotlib's Agg canvas directly (no ``pyplot``, no display,
and the global backend of a notebook or script is left alone). Bands and error bars are percentile-bootstrap 95% CIs
of the mean over seeds from :func:`~activeuf_env.runner.metrics.mean_ci`, the same setting as ``summary.md``, so the
same table gives the same intervals in both.

Needs the ``bench`` extra (pandas, matplotlib): ``pip install activeuf-env[bench]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from activeuf_env._io import atomic_path
from activeuf_env.runner.extras import require_bench_extra
from activeuf_env.runner.metrics import REFERENCE_AGENT, episode_cumulative_regret, mean_ci

__all__ = [
    "curve_stats",
    "new_figure",
    "plot_cumulative_regret",
    "plot_final_scores",
    "plot_score_curves",
    "save_figure",
]


def new_figure(width: float = 8.0, height: float = 5.0) -> Any:
    """An off-screen matplotlib figure (no pyplot state), constrained layout."""
    require_bench_extra(["pandas", "matplotlib"])
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``figure`` atomically, in the format of ``path``'s suffix (PNG by default)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    return path


def _check_columns(results: Any, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in getattr(results, "columns", ())]
    if missing:
        raise ValueError(
            f"the results table needs columns {list(columns)}; missing {missing} "
            f"(got {list(getattr(results, 'columns', []))})"
        )
    if results.empty:
        raise ValueError("the results table is empty: there is nothing to plot")


def _colors(agents: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    palette = colormaps["tab20"]
    others = [agent for agent in agents if agent != REFERENCE_AGENT]
    hues = [*range(0, 20, 2), *range(1, 20, 2)]  # the 10 strong colours of tab20 first, then their light twins
    colors: dict[str, Any] = {agent: palette(hues[index % 20]) for index, agent in enumerate(others)}
    colors[REFERENCE_AGENT] = "black"
    return colors


def curve_stats(results: Any, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per agent, a metric's mean curve over seeds against mean labels, with a bootstrap 95% CI per round.

    Args:
        results: the tidy results table (needs ``agent``, ``seed``, ``round``, ``labels`` and ``metric``).
        metric: the column to average, e.g. ``"score"``.

    Returns:
        ``{agent: (labels, mean, low, high)}``, float64 arrays ``[rounds]``, agents in order of appearance.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"agent": ["a"] * 4, "seed": [0, 0, 1, 1], "round": [0, 1, 0, 1],
        ...                       "labels": [0, 8, 0, 8], "score": [0.0, 0.5, 0.0, 0.7]})
        >>> labels, mean, low, high = curve_stats(table, "score")["a"]
        >>> labels.tolist(), mean.round(2).tolist(), bool(low[1] <= 0.6 <= high[1])
        ([0.0, 8.0], [0.0, 0.6], True)
    """
    _check_columns(results, ("agent", "seed", "round", "labels", metric))
    curves = {}
    for agent in dict.fromkeys(results["agent"]):
        rows = results[results["agent"] == agent]
        by_round = rows.groupby("round", sort=True)
        labels = by_round["labels"].mean().to_numpy(dtype=np.float64)
        stats = np.array([mean_ci(group[metric].to_numpy(dtype=np.float64)) for _, group in by_round])
        curves[str(agent)] = (labels, stats[:, 0], stats[:, 1], stats[:, 2])
    return curves


def _plot_curves(results: Any, path: str | os.PathLike[str], metric: str, ylabel: str, title: str) -> Path:
    curves = curve_stats(results, metric)
    figure = new_figure()
    axes = figure.add_subplot()
    colors = _colors(list(curves))
    for agent, (labels, mean, low, high) in curves.items():
        reference = agent == REFERENCE_AGENT
        axes.plot(labels, mean, color=colors[agent], label=agent, linewidth=2.2 if reference else 1.5,
                  linestyle="--" if reference else "-")  # fmt: skip
        axes.fill_between(labels, low, high, color=colors[agent], alpha=0.15, linewidth=0)
    if metric == "score" and "reference_score" in results.columns:
        axes.axhline(float(results["reference_score"].mean()), color="grey", linestyle=":", label="S* (oracle pairs)")
    axes.set_xlabel("labels")
    axes.set_ylabel(ylabel)
    n_seeds = results.groupby("agent")["seed"].nunique().max()
    axes.set_title(f"{title} (mean over {n_seeds} seed(s), 95% bootstrap CI)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", ncol=2 if len(curves) > 7 else 1, loc="best")
    return save_figure(figure, path)


def plot_score_curves(results: Any, path: str | os.PathLike[str], metric: str = "score") -> Path:
    """Downstream score against labels spent: one mean line per agent with a 95% CI band over seeds.

    The reference agent (``random``) is drawn dashed in black, the oracle score ``S*`` as a dotted line.

    Args:
        results: the tidy results table.
        path: the PNG to write (parent directories are created).
        metric: the score column to plot (``"score"``, ``"rm_score"``, ``"dpo_score"``, ...).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: when the table is empty or lacks a needed column.
    """
    return _plot_curves(results, path, metric, metric, f"{metric} vs labels")


def _with_cumulative_regret(results: Any) -> Any:
    """A copy of the table (sorted by agent, seed and round) with the ``cumulative_regret`` column added."""
    _check_columns(results, ("agent", "seed", "round", "labels", "regret"))
    results = results.sort_values(["agent", "seed", "round"], kind="stable").copy()
    cumulative = np.empty(len(results), dtype=np.float64)
    regret, labels = results["regret"].to_numpy(np.float64), results["labels"].to_numpy()
    for rows in results.groupby(["agent", "seed"], sort=False).indices.values():
        cumulative[rows] = episode_cumulative_regret(regret[rows], labels[rows])
    results["cumulative_regret"] = cumulative
    return results


def plot_cumulative_regret(results: Any, path: str | os.PathLike[str]) -> Path:
    """Cumulative regret (Σ over rounds of regret × labels spent in the round) against labels, per agent.

    Uses the table's ``cumulative_regret`` column; a table without it gets it from ``regret`` and ``labels``, per
    episode, with :func:`~activeuf_env.runner.metrics.episode_cumulative_regret` (as the benchmark computes it).

    Args:
        results: the tidy results table.
        path: the PNG to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: when the table is empty or lacks a needed column.
    """
    if "cumulative_regret" not in getattr(results, "columns", ()):
        results = _with_cumulative_regret(results)
    return _plot_curves(results, path, "cumulative_regret", "cumulative regret (score × labels)", "cumulative regret")


def plot_final_scores(results: Any, path: str | os.PathLike[str]) -> Path:
    """Grouped bars of the final ``rm_score`` and ``dpo_score`` per agent, with 95% CI error bars over seeds.

    Agents are sorted by their mean final ``score``.

    Arguments, return value and errors as in :func:`plot_score_curves`.
    """
    _check_columns(results, ("agent", "seed", "round", "rm_score", "dpo_score", "score"))
    ordered = results.sort_values(["agent", "seed", "round"], kind="stable")
    finals = ordered.groupby(["agent", "seed"], sort=False).tail(1)
    order = finals.groupby("agent")["score"].mean().sort_values(ascending=False).index.tolist()
    figure = new_figure(width=max(6.0, 0.75 * len(order) + 2.0))
    axes = figure.add_subplot()
    positions = np.arange(len(order), dtype=np.float64)
    width = 0.38
    for offset, (metric, color) in zip(
        (-width / 2, width / 2), (("rm_score", "tab:blue"), ("dpo_score", "tab:orange")), strict=True
    ):
        stats = np.array(
            [mean_ci(finals.loc[finals["agent"] == agent, metric].to_numpy(np.float64)) for agent in order]
        )
        errors = np.stack([stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]])
        axes.bar(positions + offset, stats[:, 0], width, yerr=errors, capsize=3, color=color, label=metric)
    axes.set_xticks(positions, order, rotation=45, ha="right")
    axes.set_ylabel("final value")
    axes.set_title("final rm_score and dpo_score\n(mean over seeds, 95% bootstrap CI)")
    axes.grid(axis="y", alpha=0.3)
    axes.legend()
    return save_figure(figure, path)
