"""Time 100 training steps of the ensemble reward model and compare with the machine's fp32 matmul throughput.

Run: ``.venv/bin/python benchmarks/bench_reward_model.py`` (``--help`` for options). Prints, for each feature
dimension: the time of 100 ``train_step`` calls (20 heads, hidden 128, 64 pairs), the matmul FLOP rate this implies,
its fraction of the measured peak fp32 GEMM rate, the same fraction for forward and backward alone (no optimizer,
anchor or clip pass), and the time of the same steps with a per-head loop of
``nn.Linear`` heads (the straightforward implementation) for comparison.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from activeuf_env.core.reward_model import EnsembleRewardModel


@dataclass
class Args:
    dims: tuple[int, ...] = (64, 2560)
    heads: int = 20
    hidden: int = 128
    pairs: int = 64
    steps: int = 100
    repeats: int = 3


def measure_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Best fp32 GEMM rate (GFLOP/s) of square ``size`` matmuls on this machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def step_matmul_flops(dim: int, heads: int, hidden: int, pairs: int) -> float:
    """Matmul FLOPs of one training step: forward, weight gradients and the hidden-layer input gradients."""
    rows = 2 * pairs
    first, second, third = 2 * rows * dim * heads * hidden, 2 * heads * rows * hidden**2, 2 * heads * rows * hidden
    return 2 * first + 3 * second + 3 * third


class LoopedHeads(nn.Module):
    """The straightforward baseline: a Python list of ``nn.Sequential`` heads run one after another."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Linear(dim, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, 1, bias=False),
            )
            for _ in range(heads)
        )
        self.anchors = [p.detach().clone() for p in self.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(x).squeeze(-1) for head in self.heads])


def time_looped(dim: int, args: Args, chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    model = LoopedHeads(dim, args.heads, args.hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    n_params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    for _ in range(args.steps):
        optimizer.zero_grad()
        rewards = model(torch.cat([chosen, rejected]))
        rc, rr = rewards[:, : args.pairs], rewards[:, args.pairs :]
        anchor = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), model.anchors, strict=False)) / n_params
        loss = F.softplus(rr - rc).mean() + anchor + 0.01 * ((rc + rr) ** 2).mean()
        loss.backward()
        for head in model.heads:
            nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - start


def time_ensemble(dim: int, args: Args, chosen: np.ndarray, rejected: np.ndarray) -> float:
    model = EnsembleRewardModel(dim, n_heads=args.heads, hidden_dim=args.hidden, seed=0)
    model.train_step(chosen, rejected)
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_step(chosen, rejected)
    return time.perf_counter() - start


def time_forward_backward(dim: int, args: Args, chosen: np.ndarray, rejected: np.ndarray) -> float:
    """The same steps without the optimizer, anchor and clip passes: the matmul-bound part alone."""
    model = EnsembleRewardModel(dim, n_heads=args.heads, hidden_dim=args.hidden, seed=0)
    c, r = torch.from_numpy(chosen), torch.from_numpy(rejected)
    model.data_loss(c, r).backward()
    start = time.perf_counter()
    for _ in range(args.steps):
        model.data_loss(c, r).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=list(Args.dims))
    parser.add_argument("--repeats", type=int, default=Args.repeats)
    ns = parser.parse_args()
    args = Args(dims=tuple(ns.dims), repeats=ns.repeats)
    rng = np.random.default_rng(0)
    peak = measure_peak_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; peak fp32 GEMM {peak:.1f} GFLOP/s")
    print(f"{args.steps} steps, {args.heads} heads, hidden {args.hidden}, {args.pairs} pairs per step")
    print(
        f"{'D':>6} {'ensemble s':>11} {'GFLOP/s':>8} {'of peak':>8} {'fwd+bwd of peak':>16} {'per-head loop s':>16} "
        f"{'speed-up':>9}"
    )
    for dim in args.dims:
        chosen = rng.standard_normal((args.pairs, dim)).astype(np.float32)
        rejected = rng.standard_normal((args.pairs, dim)).astype(np.float32)
        ours = min(time_ensemble(dim, args, chosen, rejected) for _ in range(args.repeats))
        looped = min(
            time_looped(dim, args, torch.from_numpy(chosen), torch.from_numpy(rejected)) for _ in range(args.repeats)
        )
        matmul = min(time_forward_backward(dim, args, chosen, rejected) for _ in range(args.repeats))
        flops = step_matmul_flops(dim, args.heads, args.hidden, args.pairs) * args.steps / 1e9
        rate = flops / ours
        print(
            f"{dim:>6} {ours:>11.3f} {rate:>8.1f} {rate / peak:>8.0%} {flops / matmul / peak:>16.0%} "
            f"{looped:>16.3f} {looped / ours:>8.1f}x"
        )


if __name__ == "__main__":
    main()
