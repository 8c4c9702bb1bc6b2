"""The calibration report: our learning curves and final scores beside ActiveUltraFeedback's, on several pools.

For every pool (three draws of the synthetic pool and, when the shared data is present, ``ActiveUF/AlpacaEval-v0``)
the script runs the nine methods of AUF's table for ``--seeds`` episodes with the bench defaults (a downstream
evaluation after every round) through :func:`activeuf_env.runner.run_benchmark`, then writes a Markdown report:

- the final columns (mean and bootstrap 95% CI of ``dpo_score`` and ``rm_score``) beside the paper's, and their
  Spearman rank correlations;
- the learning curves at the paper's budget fractions (5k, 10k, ..., 60.8k of 60.8k prompts; ours are linearly
  interpolated between our evaluations), ours beside the paper's, for DPO and RM;
- labels-to-match: the smallest budget fraction at which a method's mean ``dpo_score`` reaches Random's
  full-budget ``dpo_score`` (the paper's "one sixth of the labels"), ours and the paper's;
- the oracle pair set's scores (the reference ``S*``) of each pool;
- one figure per pool (``curves_<pool>.png``): our DPO and RM curves and the paper's.

Run (about 6 minutes on 2 cores with the default 2 workers)::

    .venv/bin/python baselines/calibration_report.py --seeds 5 --out runs/calibration

Needs the ``bench`` extra (pandas, matplotlib, scipy).

Example:
    >>> parse_args(["--seeds", "2", "--pools", "synthetic:0"]).pools
    'synthetic:0'
    >>> labels_to_match([0.25, 0.5, 1.0], [0.01, 0.05, 0.06], 0.04)
    0.5
    >>> round(float(interpolate([0.5, 1.0], [0.0, 0.2], [0.5, 0.75, 1.0])[1]), 3)
    0.1
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from activeuf_env._io import atomic_write_text
from activeuf_env._validation import check_int

PAPER_SIZES: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.8)
"""Dataset sizes (thousands of prompts) of AUF's learning curves; 60.8k is the full UltraFeedback prompt set."""

PAPER_FRACTIONS: tuple[float, ...] = tuple(size / PAPER_SIZES[-1] for size in PAPER_SIZES)
"""The same sizes as fractions of the full budget, where our curves are read."""

PAPER_CURVES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "random": (
        (0.017, 0.031, 0.040, 0.036, 0.047, 0.047, 0.051, 0.053, 0.046),
        (0.164, 0.181, 0.193, 0.266, 0.274, 0.267, 0.225, 0.272, 0.278),
    ),
    "ultrafeedback": (
        (0.023, 0.030, 0.033, 0.037, 0.031, 0.048, 0.042, 0.038, 0.037),
        (0.141, 0.185, 0.205, 0.205, 0.194, 0.216, 0.204, 0.221, 0.287),
    ),
    "maxmin": (
        (0.086, 0.108, 0.121, 0.117, 0.113, 0.106, 0.118, 0.123, 0.112),
        (0.171, 0.245, 0.232, 0.246, 0.272, 0.265, 0.302, 0.257, 0.318),
    ),
    "delta_model": (
        (0.092, 0.124, 0.130, 0.127, 0.129, 0.146, 0.131, 0.143, 0.137),
        (0.103, 0.105, 0.097, 0.117, 0.113, 0.133, 0.121, 0.134, 0.100),
    ),
    "deltaucb": (
        (0.077, 0.102, 0.108, 0.111, 0.114, 0.118, 0.120, 0.116, 0.121),
        (0.145, 0.205, 0.203, 0.208, 0.233, 0.243, 0.297, 0.324, 0.339),
    ),
    "drts": (
        (0.071, 0.098, 0.106, 0.107, 0.113, 0.107, 0.120, 0.112, 0.127),
        (0.177, 0.209, 0.228, 0.206, 0.259, 0.260, 0.280, 0.275, 0.312),
    ),
    "infomax": (
        (0.006, 0.009, 0.016, 0.003, 0.011, 0.006, 0.015, 0.011, 0.017),
        (0.133, 0.194, 0.215, 0.230, 0.235, 0.239, 0.227, 0.265, 0.297),
    ),
    "dts": (
        (0.004, 0.012, 0.007, 0.008, 0.011, 0.008, 0.015, 0.016, 0.024),
        (-0.006, 0.083, 0.127, 0.147, 0.184, 0.173, 0.206, 0.240, 0.224),
    ),
    "maxminlcb": (
        (0.005, 0.005, 0.004, 0.013, 0.015, 0.009, 0.008, 0.015, 0.016),
        (-0.053, 0.009, 0.113, 0.179, 0.153, 0.183, 0.215, 0.201, 0.230),
    ),
}
"""AUF's learning curves (UltraFeedback prompts; Δ over the SFT base at :data:`PAPER_SIZES`): (DPO, RewardBench 2)."""

POOLS: tuple[str, ...] = ("synthetic:0", "synthetic:1", "synthetic:2", "alpaca")
"""``synthetic:<seed>`` is ``ActiveUF/Synthetic-v0`` on ``SyntheticPoolConfig(seed=<seed>)``; ``alpaca`` is
``ActiveUF/AlpacaEval-v0``."""


@dataclass
class Args:
    """Command-line arguments (``--name value``; underscores become dashes)."""

    seeds: int = 5
    """episodes per method and pool (seeds 0 .. seeds-1)"""
    pools: str = ",".join(POOLS)
    """comma-separated pools (see POOLS)"""
    workers: int = 2
    """worker processes (each runs torch on one thread)"""
    out: str = "runs/calibration"
    """output directory: report.md, one results_<pool>.csv and one curves_<pool>.png per pool"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into :class:`Args`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Args()
    for field in dataclasses.fields(Args):
        default = getattr(defaults, field.name)
        kind = int if isinstance(default, int) else str
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=default)
    args = Args(**vars(parser.parse_args(argv)))
    try:
        check_int("--seeds", args.seeds, low=1)
        check_int("--workers", args.workers, low=1)
        for pool in args.pools.split(","):
            env_spec(pool)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def env_spec(pool: str) -> tuple[str, dict[str, Any]]:
    """The env id and env kwargs of a pool name of :data:`POOLS`.

    Raises:
        ValueError: for an unknown pool name (the message names it and the accepted forms).
    """
    from activeuf_env import SyntheticPoolConfig

    if pool == "alpaca":
        return "ActiveUF/AlpacaEval-v0", {}
    head, _, seed = pool.partition(":")
    if head == "synthetic" and seed.isdigit():
        return "ActiveUF/Synthetic-v0", {"instances": SyntheticPoolConfig(seed=int(seed))}
    raise ValueError(f"pool must be 'synthetic:<seed>' or 'alpaca', got {pool!r}")


def interpolate(fractions: list[float], values: list[float], at: list[float] | tuple[float, ...]) -> np.ndarray:
    """``values`` (measured at budget ``fractions``, increasing) read at ``at`` by linear interpolation."""
    return np.interp(np.asarray(at, np.float64), np.asarray(fractions, np.float64), np.asarray(values, np.float64))


def labels_to_match(fractions: list[float] | tuple[float, ...], values: Any, target: float) -> float:
    """The first budget fraction at which ``values`` reach ``target``; ``inf`` when they never do."""
    reached = [f for f, v in zip(fractions, values, strict=True) if v >= target]
    return reached[0] if reached else math.inf


def mean_curves(results: Any) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per agent: (budget fractions, mean ``dpo_score``, mean ``rm_score``) over seeds, one point per evaluation."""
    from activeuf_env.runner.plots import curve_stats

    dpo, rm = curve_stats(results, "dpo_score"), curve_stats(results, "rm_score")
    budgets = results.groupby("agent", sort=False)["budget"].first()
    return {agent: (dpo[agent][0] / float(budgets[agent]), dpo[agent][1], rm[agent][1]) for agent in dpo}


def _fmt_fraction(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.3f}"


def pool_report(pool: str, results: Any, oracle: dict[str, float | int], out: Path) -> tuple[list[str], dict[str, Any]]:
    """The Markdown section of one pool and its headline numbers (Spearman, labels-to-match, curve shares)."""
    from scipy.stats import spearmanr

    from activeuf_env.runner.metrics import mean_ci

    curves = mean_curves(results)
    methods = [m for m in PAPER_CURVES if m in curves]
    finals = results.loc[results.groupby(["agent", "seed"])["labels"].idxmax()]
    lines = [f"### `{pool}`", ""]
    lines += [
        f"Oracle pair set (the reference S*): dpo_score {oracle['dpo_score']:.3f}, rm_score {oracle['rm_score']:.3f}.",
        "",
        "| method | dpo_score [95% CI] | paper DPO | rm_score [95% CI] | paper RM |",
        "|---|---|---|---|---|",
    ]
    final_dpo, final_rm = {}, {}
    for method in methods:
        rows = finals[finals["agent"] == method]
        dpo, rm = mean_ci(rows["dpo_score"].to_numpy()), mean_ci(rows["rm_score"].to_numpy())
        final_dpo[method], final_rm[method] = dpo[0], rm[0]
        paper_dpo, paper_rm = PAPER_CURVES[method][0][-1], PAPER_CURVES[method][1][-1]
        lines.append(
            f"| {method} | {dpo[0]:.3f} [{dpo[1]:.3f}, {dpo[2]:.3f}] | {paper_dpo:.3f} "
            f"| {rm[0]:.3f} [{rm[1]:.3f}, {rm[2]:.3f}] | {paper_rm:.3f} |"
        )
    rho_dpo = float(spearmanr([final_dpo[m] for m in methods], [PAPER_CURVES[m][0][-1] for m in methods])[0])
    rho_rm = float(spearmanr([final_rm[m] for m in methods], [PAPER_CURVES[m][1][-1] for m in methods])[0])
    lines += ["", f"Spearman with the paper's final columns: DPO {rho_dpo:.2f}, RM {rho_rm:.2f}.", ""]

    header = " | ".join(f"{size:g}k" for size in PAPER_SIZES)
    for index, metric in ((0, "DPO (dpo_score)"), (1, "RM (rm_score; paper: Δ over the base)")):
        lines += [f"{metric}, ours / paper, at the paper's budget fractions:", ""]
        lines += [f"| method | {header} |", "|---|" + "---|" * len(PAPER_SIZES)]
        for method in methods:
            ours = interpolate(curves[method][0], curves[method][1 + index], PAPER_FRACTIONS)
            cells = " | ".join(f"{o:.3f} / {p:.3f}" for o, p in zip(ours, PAPER_CURVES[method][index], strict=True))
            lines.append(f"| {method} | {cells} |")
        lines.append("")

    random_final = final_dpo.get("random", math.nan)
    lines += [
        "Labels-to-match (first budget fraction at which the mean dpo_score reaches Random's full-budget "
        f"dpo_score, ours {random_final:.3f}, paper {PAPER_CURVES['random'][0][-1]:.3f}; ours on our evaluation "
        "grid, the paper's on its sizes):",
        "",
        "| method | ours | paper |",
        "|---|---|---|",
    ]
    ltm = {}
    for method in methods:
        ltm[method] = labels_to_match(list(curves[method][0]), curves[method][1], random_final)
        paper = labels_to_match(PAPER_FRACTIONS, PAPER_CURVES[method][0], PAPER_CURVES["random"][0][-1])
        lines.append(f"| {method} | {_fmt_fraction(ltm[method])} | {_fmt_fraction(paper)} |")
    share = {}
    for method in methods:
        at_sixth = float(interpolate(curves[method][0], curves[method][1], [1 / 6])[0])
        share[method] = at_sixth / final_dpo[method] if final_dpo[method] else math.nan
    if "drts" in share:
        lines += ["", f"DRTS's dpo_score at 1/6 of the budget is {share['drts']:.0%} of its final value."]
    lines += ["", f"![curves]({plot_curves(pool, curves, out).name})", ""]
    return lines, {"rho_dpo": rho_dpo, "rho_rm": rho_rm, "ltm": ltm, "share_at_sixth": share, "oracle": oracle}


def plot_curves(pool: str, curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], out: Path) -> Path:
    """Our DPO and RM curves (top) beside the paper's (bottom), one colour per method; returns the PNG path."""
    from activeuf_env.runner.plots import new_figure, save_figure

    figure = new_figure(width=11, height=7)
    axes = figure.subplots(2, 2, sharex=True)
    colors = {m: f"C{i}" for i, m in enumerate(PAPER_CURVES)}
    for column, title in enumerate(("DPO", "RM")):
        for method in PAPER_CURVES:
            if method in curves:
                axes[0, column].plot(curves[method][0], curves[method][1 + column], color=colors[method], label=method)
            axes[1, column].plot(PAPER_FRACTIONS, PAPER_CURVES[method][column], color=colors[method], marker=".")
        axes[0, column].set_title(f"{title}: ours ({pool})")
        axes[1, column].set_title(f"{title}: AUF paper (UltraFeedback, Δ over the base)")
        axes[1, column].set_xlabel("fraction of the label budget")
    axes[0, 0].legend(fontsize=8, ncol=3)
    return save_figure(figure, out / f"curves_{pool.replace(':', '')}.png")


def run_pool(pool: str, args: Args, out: Path) -> tuple[Any, dict[str, float | int]]:
    """Run the benchmark of one pool; return its tidy results and the oracle pair set's scores."""
    import gymnasium

    from activeuf_env.runner import run_benchmark

    env_id, env_kwargs = env_spec(pool)
    result = run_benchmark(
        env_id,
        list(PAPER_CURVES),
        args.seeds,
        out / f"bench_{pool.replace(':', '')}",
        workers=args.workers,
        env_kwargs=env_kwargs,
        plots=False,
        progress=False,
        overwrite=True,
    )
    if result.failures:
        failure = result.failures[0]
        raise RuntimeError(f"{pool}: {len(result.failures)} episode(s) failed, first {failure.agent}: {failure.error}")
    env = gymnasium.make(env_id, **env_kwargs)
    env.reset(seed=0)
    oracle = env.unwrapped.reference_scores()
    env.close()
    return result.results, oracle


def main(args: Args) -> dict[str, dict[str, Any]]:
    """Run every pool, write ``report.md`` into ``args.out`` and print it; return each pool's headline numbers."""
    from activeuf_env.data.locate import locate_alpaca_eval

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["## Calibration report", ""]
    headline: dict[str, dict[str, Any]] = {}
    for pool in args.pools.split(","):
        if pool == "alpaca":
            try:
                locate_alpaca_eval()
            except FileNotFoundError as exc:
                lines += [f"### `{pool}`", "", f"Skipped: {exc}", ""]
                continue
        start = time.perf_counter()
        results, oracle = run_pool(pool, args, out)
        section, headline[pool] = pool_report(pool, results, oracle, out)
        lines += section
        lines.append(f"({args.seeds} seeds, {time.perf_counter() - start:.0f} s)\n")
        atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "report.md", text)
    print(text)
    return headline


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(parse_args())
