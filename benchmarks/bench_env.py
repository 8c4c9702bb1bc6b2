"""Time an episode phase by phase and report the environment's own overhead and peak memory.

Run: ``.venv/bin/python benchmarks/bench_env.py --env ActiveUF/SyntheticPaperScale-v0`` (a full AUF-scale episode:
60,829 prompts x 30 responses, 951 rounds; several minutes on 2 cores), or ``--env ActiveUF/Synthetic-v0``. Prints
the time spent making the env (drawing the pool), resetting, in the agent's ``select``, in ensemble training, in
ensemble prediction, and in the rest of ``step`` (validation, labelling, storing, observation), the env overhead as a
fraction of the step time, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import activeuf_env  # noqa: F401
import agents
from activeuf_env.core.reward_model import EnsembleRewardModel
from activeuf_env.runner.episode import make_env, play_episode


@dataclass
class Args:
    env: str = "ActiveUF/SyntheticPaperScale-v0"
    agent: str = "drts"
    seed: int = 0
    max_rounds: int | None = None


def timed(totals: dict[str, float], phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``function`` so that its wall time accumulates in ``totals[phase]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[phase] += time.perf_counter() - start

    return wrapper


@dataclass
class TimedAgent:
    """An agent whose ``select`` calls add their wall time to ``totals["agent select"]``."""

    agent: agents.Agent
    totals: dict[str, float]

    def reset(self, seed: int | None = None, info: dict[str, Any] | None = None) -> None:
        self.agent.reset(seed=seed, info=info)

    def select(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return timed(self.totals, "agent select", self.agent.select)(obs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=Args.env)
    parser.add_argument("--agent", default=Args.agent)
    parser.add_argument("--seed", type=int, default=Args.seed)
    parser.add_argument("--max-rounds", type=int, default=None, help="stop early after this many rounds")
    ns = parser.parse_args()
    args = Args(env=ns.env, agent=ns.agent, seed=ns.seed, max_rounds=ns.max_rounds)

    totals: dict[str, float] = defaultdict(float)
    # Instrument the ensemble's two entry points the env calls; the script only observes, it changes no behaviour.
    EnsembleRewardModel.fit_round = timed(totals, "ensemble training", EnsembleRewardModel.fit_round)
    EnsembleRewardModel.predict = timed(totals, "ensemble prediction", EnsembleRewardModel.predict)

    agent = TimedAgent(agents.make(args.agent), totals)
    start = time.perf_counter()
    env = make_env(args.env, agent.agent)
    steps = play_episode(env, agent, args.seed)
    info = next(steps).info  # the reset
    totals["make + first reset (draws the pool)"] = time.perf_counter() - start
    rounds = 0
    tick = time.perf_counter()
    for step in itertools.islice(steps, args.max_rounds):  # each step: the agent's select, then env.step
        totals["select + step"] += time.perf_counter() - tick
        info, rounds = step.info, rounds + 1
        tick = time.perf_counter()
    env.close()
    totals["env.step (all)"] = totals["select + step"] - totals["agent select"]

    inner = totals["ensemble training"] + totals["ensemble prediction"]
    overhead = totals["env.step (all)"] - inner
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.env}, agent {args.agent}, seed {args.seed}: {rounds} rounds, {info['labels']} labels")
    for phase in (
        "make + first reset (draws the pool)",
        "agent select",
        "env.step (all)",
        "ensemble training",
        "ensemble prediction",
    ):
        print(f"  {phase:<38} {totals[phase]:>9.2f} s")
    share = overhead / totals["env.step (all)"]
    print(f"  {'env overhead (step - ensemble)':<38} {overhead:>9.2f} s = {share:.1%} of step time")
    print(f"  peak resident memory {peak_gib:.2f} GiB")


if __name__ == "__main__":
    main()
