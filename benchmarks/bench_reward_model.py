"""Time 100 training steps of the ensemble reward model and compare with the machine's fp32 matmul throughput.

Run: ``.venv/bin/python benchmarks/bench_reward_model.py`` (``--help`` for options). For each feature dimension it
times, in the same process and interleaved (repeat after repeat, best of ``--repeats``, so that a shared machine's
load falls on every variant alike):

- ``before``: 100 ``train_step`` calls of the frozen pre-rewrite ensemble (``benchmarks/legacy_ensemble.py``);
- ``after``: the same 100 steps with the package's :class:`~activeuf_env.core.reward_model.EnsembleRewardModel`
  (20 heads, hidden 128, 64 pairs), and that both end with bit-identical weights;
- forward and backward alone (no anchor, clip or optimizer pass), before and after;
- a per-head loop of ``nn.Linear`` heads (the straightforward implementation);
- ``bf16``: the same 100 steps with ``RewardModelConfig(matmul_dtype="bfloat16")`` (bf16 matmuls, fp32 master
  weights and optimizer), and its forward and backward alone;
- the peak fp32 and bf16 GEMM rates (square 2048 matmuls), measured between the repeats too.

It prints the matmul FLOP rate of each step as a fraction of the fp32 peak and the speed-ups, then one row per
dimension for the bf16 option (speed-up over fp32 ``after``, fractions of the fp32 and of the bf16 peak, the
per-head loop ratio, and how far its final weights are from fp32's, relative).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from legacy_ensemble import LegacyEnsembleRewardModel
from torch import nn
from torch.nn import functional as F

from activeuf_env.core.reward_model import EnsembleRewardModel, RewardModelConfig


@dataclass
class Args:
    dims: tuple[int, ...] = (64, 2560)
    heads: int = 20
    hidden: int = 128
    pairs: int = 64
    steps: int = 100
    repeats: int = 5
    threads: int = 2


def time_peak_gemm(size: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Best time of one square ``size`` matmul of ``dtype`` on this machine."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return best


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


def looped_steps(dim: int, args: Args, chosen: torch.Tensor, rejected: torch.Tensor) -> Callable[[], None]:
    model = LoopedHeads(dim, args.heads, args.hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    n_params = sum(p.numel() for p in model.parameters())

    def run() -> None:
        for _ in range(args.steps):
            optimizer.zero_grad()
            rewards = model(torch.cat([chosen, rejected]))
            rc, rr = rewards[:, : args.pairs], rewards[:, args.pairs :]
            anchor = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), model.anchors, strict=True))
            loss = F.softplus(rr - rc).mean() + anchor / n_params + 0.01 * ((rc + rr) ** 2).mean()
            loss.backward()
            for head in model.heads:
                nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()

    return run


def variants(dim: int, args: Args, chosen: np.ndarray, rejected: np.ndarray) -> dict[str, Callable[[], object]]:
    """The timed variants at one ``dim``, each running ``args.steps`` steps; the two ensembles start alike."""
    c, r = torch.from_numpy(chosen), torch.from_numpy(rejected)
    x = torch.cat([c, r])
    before = LegacyEnsembleRewardModel(dim, n_heads=args.heads, hidden_dim=args.hidden, seed=0)
    after = EnsembleRewardModel(dim, n_heads=args.heads, hidden_dim=args.hidden, seed=0)
    bf16_config = RewardModelConfig(matmul_dtype="bfloat16")
    bf16 = EnsembleRewardModel(dim, n_heads=args.heads, hidden_dim=args.hidden, config=bf16_config, seed=0)
    x_bf16 = x.to(torch.bfloat16)

    def relative_distance() -> float:
        """``‖θ_bf16 − θ_fp32‖ / ‖θ_fp32‖`` over all weights (both ran the same number of the same steps)."""
        return float((bf16._flat - after._flat).norm() / after._flat.norm())

    return {
        "before": lambda: [before.train_step(chosen, rejected) for _ in range(args.steps)],
        "after": lambda: [after.train_step(chosen, rejected) for _ in range(args.steps)],
        "bf16": lambda: [bf16.train_step(chosen, rejected) for _ in range(args.steps)],
        "fwd+bwd before": lambda: [before.data_loss(c, r).backward() for _ in range(args.steps)],
        "fwd+bwd after": lambda: [after.data_loss_and_gradients(x, args.pairs) for _ in range(args.steps)],
        "fwd+bwd bf16": lambda: [bf16.data_loss_and_gradients(x_bf16, args.pairs) for _ in range(args.steps)],
        "loop": looped_steps(dim, args, c, r),
        "identical": lambda: all(torch.equal(before.params[k].detach(), after.params[k]) for k in after.params),
        "bf16 distance": relative_distance,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=list(Args.dims))
    parser.add_argument("--repeats", type=int, default=Args.repeats)
    parser.add_argument("--threads", type=int, default=Args.threads, help="torch intra-op threads")
    ns = parser.parse_args()
    args = Args(dims=tuple(ns.dims), repeats=ns.repeats, threads=ns.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of {args.repeats}, interleaved")
    print(f"{args.steps} steps, {args.heads} heads, hidden {args.hidden}, {args.pairs} pairs per step")
    print(
        f"{'D':>5} {'peak GF/s':>9} {'before s':>9} {'after s':>8} {'speed-up':>8} {'before %pk':>10} "
        f"{'after %pk':>9} {'fwd+bwd %pk b/a':>16} {'loop s':>7} {'loop/before':>11} {'loop/after':>10} identical"
    )
    bf16_rows: list[str] = []
    for dim in args.dims:
        chosen = rng.standard_normal((args.pairs, dim)).astype(np.float32)
        rejected = rng.standard_normal((args.pairs, dim)).astype(np.float32)
        timed = variants(dim, args, chosen, rejected)
        identical, distance = timed.pop("identical"), timed.pop("bf16 distance")
        best = dict.fromkeys(timed, float("inf"))
        peak, peak_bf16 = time_peak_gemm(), time_peak_gemm(dtype=torch.bfloat16)
        for _ in range(args.repeats):
            for name, run in timed.items():
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
            peak = min(peak, time_peak_gemm())
            peak_bf16 = min(peak_bf16, time_peak_gemm(dtype=torch.bfloat16))
        peak_rate, peak_bf16_rate = 2 * 2048**3 / peak / 1e9, 2 * 2048**3 / peak_bf16 / 1e9
        rate = step_matmul_flops(dim, args.heads, args.hidden, args.pairs) * args.steps / 1e9 / peak_rate
        print(
            f"{dim:>5} {peak_rate:>9.0f} {best['before']:>9.3f} {best['after']:>8.3f} "
            f"{best['before'] / best['after']:>7.2f}x {rate / best['before']:>10.0%} {rate / best['after']:>9.0%} "
            f"{rate / best['fwd+bwd before']:>8.0%} / {rate / best['fwd+bwd after']:<5.0%} {best['loop']:>7.3f} "
            f"{best['loop'] / best['before']:>10.1f}x {best['loop'] / best['after']:>9.1f}x {identical()}"
        )
        rate_bf16 = rate * peak_rate / peak_bf16_rate  # the step's matmul seconds at the bf16 peak
        bf16_rows.append(
            f"{dim:>5} {peak_bf16_rate:>9.0f} {best['bf16']:>7.3f} {best['after'] / best['bf16']:>11.2f}x "
            f"{best['before'] / best['bf16']:>12.2f}x {rate / best['bf16']:>9.0%} {rate_bf16 / best['bf16']:>10.0%} "
            f"{rate / best['fwd+bwd bf16']:>11.0%} {best['loop'] / best['bf16']:>9.1f}x {distance():>13.1e}"
        )
    print('matmul_dtype="bfloat16" (same run; "of pk" = of the fp32 peak, "of bf16 pk" = of the bf16 GEMM peak):')
    print(
        f"{'D':>5} {'bf16 GF/s':>9} {'bf16 s':>7} {'after/bf16':>12} {'before/bf16':>13} {'of pk':>9} "
        f"{'of bf16 pk':>10} {'fwd+bwd %pk':>11} {'loop/bf16':>10} {'rel. distance':>13}"
    )
    print("\n".join(bf16_rows))


if __name__ == "__main__":
    main()
