"""Time every registered agent's ``select`` on one batch and print a table (median of repeats, per batch).

Usage::

    python benchmarks/bench_agents.py                    # B = 64; K = 8, 30, 128
    python benchmarks/bench_agents.py --repeats 500 --k 30

The observation mimics an ENN output: ``mean ~ N(0, 1)``, ``std ~ U(0.05, 0.5)``, all responses valid, plus
``judge_scores`` and ``model_ids`` for the privileged and judge-free baselines. Each agent is warmed up, then
timed ``--repeats`` times with ``time.perf_counter``; the table gives the median (and the 10th-90th percentile
range at K = 30) in milliseconds per batch. The last column compares with the per-batch times measured for AUF's
reference implementations on the same machine class (DRTS 48 ms, DTS 150 ms, MaxMinLCB 18 ms).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import agents

# AUF's reference implementations, ms per (64 x 30) batch on this machine class.
AUF_MS = {"drts": 48.0, "dts": 150.0, "maxminlcb": 18.0}


def make_obs(n_prompts: int, n_slots: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random, fully valid observation of ``n_prompts`` prompts with ``n_slots`` responses each."""
    mean = rng.normal(size=(n_prompts, n_slots)).astype(np.float32)
    std = rng.uniform(0.05, 0.5, size=(n_prompts, n_slots)).astype(np.float32)
    return {
        "mean": mean,
        "lower": mean - std,
        "upper": mean + std,
        "valid": np.ones((n_prompts, n_slots), np.int8),
        "model_ids": np.tile(np.arange(n_slots, dtype=np.int64), (n_prompts, 1)),
        "prompt_valid": np.ones(n_prompts, np.int8),
        "budget_remaining": np.ones(1, np.float32),
        "judge_scores": rng.uniform(1.0, 5.0, size=(n_prompts, n_slots)).astype(np.float32),
    }


def time_select(agent: agents.Agent, obs: dict[str, np.ndarray], repeats: int) -> list[float]:
    """Per-call wall times of ``agent.select(obs)`` in milliseconds, after a short warm-up."""
    for _ in range(min(20, repeats)):
        agent.select(obs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        agent.select(obs)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="prompts per batch (B)")
    parser.add_argument("--k", type=int, nargs="+", default=[8, 30, 128], help="responses per prompt (K)")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per agent and K")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    observations = {k: make_obs(args.batch, k, rng) for k in args.k}
    names = agents.registered_names()
    results: dict[str, dict[int, list[float]]] = {name: {} for name in names}
    for name in names:
        agent = agents.make(name)
        # Model ids 0..K-1 named as one family's sizes, so that delta_model's default pair exists.
        agent.reset(seed=args.seed, info={"model_names": [f"fam0-{size}" for size in ("xs", "s", "m", "l", "xl")]})
        for k, obs in observations.items():
            results[name][k] = time_select(agent, obs, args.repeats)

    ref_k = 30 if 30 in args.k else args.k[0]
    header = ["agent", *(f"K={k} (ms)" for k in args.k), f"p10-p90 K={ref_k}", f"vs AUF K={ref_k}"]
    rows = []
    for name in names:
        medians = [f"{statistics.median(results[name][k]):.3f}" for k in args.k]
        quantiles = statistics.quantiles(results[name][ref_k], n=10)
        spread = f"{quantiles[0]:.3f}-{quantiles[-1]:.3f}"
        speedup = ""
        if name in AUF_MS and ref_k == 30 and args.batch == 64:
            speedup = f"{AUF_MS[name] / statistics.median(results[name][ref_k]):.0f}x faster"
        rows.append([name, *medians, spread, speedup])
    widths = [max(len(str(row[c])) for row in [header, *rows]) for c in range(len(header))]
    print(f"agent select: B={args.batch}, median of {args.repeats} calls, ms per batch")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
