"""Reproduce ActiveUltraFeedback's method ranking on the synthetic pool, CleanRL-style.

The synthetic pool is built so that the selection methods of the AUF paper rank on it as they do in the paper's
table (UltraFeedback prompts, full data); this script checks that. It runs every method of that table for
``--seeds`` episodes of ``--env`` through :func:`activeuf_env.runner.run_benchmark` (full budget, one downstream
evaluation at the end, into a temporary directory), then prints, per method, the mean ± std of our ``dpo_score``
and ``rm_score`` next to the paper's DPO and RM gains (Δ vs the SFT base), the per-category reward-model accuracies,
and the Spearman rank correlations of our scores with the paper's columns (targets: ≥ 0.8 for DPO, ≥ 0.6 for RM).

Run (about 2 minutes for 5 seeds on 2 cores)::

    .venv/bin/python baselines/reproduce_paper_table.py --seeds 5
    .venv/bin/python baselines/reproduce_paper_table.py --seeds 5 --first-seed 5 --out table.md

Needs scipy (the ``bench`` extra) for the Spearman correlation.

Example:
    >>> Args().seeds, Args().env
    (5, 'ActiveUF/Synthetic-v0')
    >>> parse_args(["--seeds", "2", "--workers", "1"]).seeds
    2
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activeuf_env._io import atomic_write_text
from activeuf_env._validation import check_int

PAPER: dict[str, tuple[float, float]] = {
    "delta_model": (0.137, 0.100),
    "drts": (0.127, 0.312),
    "deltaucb": (0.121, 0.339),
    "maxmin": (0.112, 0.318),
    "random": (0.046, 0.278),
    "ultrafeedback": (0.037, 0.287),
    "dts": (0.024, 0.224),
    "infomax": (0.017, 0.297),
    "maxminlcb": (0.016, 0.230),
}
"""AUF's table (UltraFeedback prompts, full data): ``agents.make`` name -> (DPO Δ, RM Δ on RewardBench 2)."""

SCORE_KEYS = ("dpo_score", "rm_score", "rm_focus", "rm_precise", "rm_same_skill")

FINAL_EVALUATION_ONLY = {"eval_every": 1_000_000}
"""Env overrides: evaluate downstream after the last round only (the table needs final scores alone)."""


@dataclass
class Args:
    """Command-line arguments (``--name value``; underscores become dashes)."""

    seeds: int = 5
    """episodes per method, with env/agent seeds ``first_seed, ..., first_seed + seeds - 1``"""
    first_seed: int = 0
    """the first seed"""
    env: str = "ActiveUF/Synthetic-v0"
    """the Gymnasium environment id"""
    workers: int = 2
    """worker processes (each runs torch on one thread)"""
    out: str | None = None
    """optional path for the table: ``.csv`` writes CSV, anything else Markdown"""


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
        check_int("--first-seed", args.first_seed, low=0)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def final_scores(args: Args) -> Any:
    """Run the methods × seeds with :func:`activeuf_env.runner.run_benchmark`; one row of final scores per episode.

    Returns:
        A ``pandas.DataFrame`` with ``agent``, ``seed`` and :data:`SCORE_KEYS`, in the order of :data:`PAPER`.

    Raises:
        RuntimeError: when an episode failed (the table needs every method).
    """
    from activeuf_env.runner import run_benchmark

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    with tempfile.TemporaryDirectory(prefix="activeuf-paper-table-") as out:
        result = run_benchmark(
            args.env,
            list(PAPER),
            seeds,
            out,
            workers=args.workers,
            env_kwargs=FINAL_EVALUATION_ONLY,
            plots=False,
            progress=False,
        )
    if result.failures:
        failure = result.failures[0]
        raise RuntimeError(
            f"{len(result.failures)} episode(s) failed, first {failure.agent} seed {failure.seed}: {failure.error}"
        )
    finals = result.results.groupby(["agent", "seed"], sort=False).tail(1)
    return finals[["agent", "seed", *SCORE_KEYS]].reset_index(drop=True)


def main(args: Args) -> list[dict[str, float | str]]:
    """Run the methods × seeds, print the table and the correlations; return the table's rows."""
    import numpy as np
    from scipy.stats import spearmanr

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    start = time.perf_counter()
    finals = final_scores(args)

    rows: list[dict[str, float | str]] = []
    for method in PAPER:
        runs = finals[finals["agent"] == method]
        scores = {key: runs[key].to_numpy(dtype=np.float64) for key in SCORE_KEYS}
        row: dict[str, float | str] = {"method": method}
        for key in SCORE_KEYS:
            row[key] = float(scores[key].mean())
        row["dpo_std"], row["rm_std"] = float(scores["dpo_score"].std()), float(scores["rm_score"].std())
        row["paper_dpo"], row["paper_rm"] = PAPER[method]
        rows.append(row)
    rho_dpo = float(spearmanr([r["dpo_score"] for r in rows], [r["paper_dpo"] for r in rows])[0])
    rho_rm = float(spearmanr([r["rm_score"] for r in rows], [r["paper_rm"] for r in rows])[0])

    header = "| method | dpo_score | paper DPO | rm_score | paper RM | focus | precise | same_skill |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['dpo_score']:.3f} ± {r['dpo_std']:.3f} | {r['paper_dpo']:.3f} "
            f"| {r['rm_score']:.3f} ± {r['rm_std']:.3f} | {r['paper_rm']:.3f} | {r['rm_focus']:.3f} "
            f"| {r['rm_precise']:.3f} | {r['rm_same_skill']:.3f} |"
        )
    summary = (
        f"Spearman with the paper: DPO {rho_dpo:.2f} (target >= 0.8), RM {rho_rm:.2f} (target >= 0.6); "
        f"{args.env}, seeds {seeds[0]}-{seeds[-1]}, {time.perf_counter() - start:.0f} s"
    )
    print("\n".join(lines))
    print(summary)
    if args.out is not None:
        path = Path(args.out)
        if path.suffix == ".csv":
            keys = ["method", *SCORE_KEYS, "dpo_std", "rm_std", "paper_dpo", "paper_rm"]
            text = "\n".join([",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in rows]) + "\n"
        else:
            text = "\n".join([*lines, "", summary]) + "\n"
        atomic_write_text(path, text)
        print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(parse_args())
