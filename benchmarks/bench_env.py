"""Time an episode phase by phase and report the environment's own overhead and peak memory.

Run: ``.venv/bin/python benchmarks/bench_env.py --env ActiveUF/SyntheticPaperScale-v0`` (a full AUF-scale episode:
60,829 prompts x 30 responses, 951 rounds; several minutes on 2 cores), or ``--env ActiveUF/Synthetic-v0``. Prints
the time spent making the env (drawing the pool), resetting, in the agent's ``select``, in ensemble training, in
ensemble prediction, and in the rest of ``step`` (validation, labelling, storing, observation), the env overhead as a
fraction of the step time, and the peak resident memory of the process.

``--compare`` plays the same episode twice in lockstep, round by round, once as it was when issue 13 was filed
(``legacy``: the frozen pre-rewrite ensemble ``benchmarks/legacy_ensemble.py`` and the frozen downstream optimiser
``benchmarks/legacy_downstream.py``) and once with the package's: both see the same machine load at the same time,
which on a shared machine is the only fair comparison. It prints both phase tables side by side, the speed-up, and
whether every round's ``info`` (scores, ensemble loss, counters) is identical, or else its largest difference (the
downstream optimiser's rewrite changes the scores by rounding). Peak memory is then that of both.

``--implementations legacy current bf16`` plays any of the three in lockstep (``bf16``: the package's ensemble with
``RewardModelConfig(matmul_dtype="bfloat16")``, the env's other settings unchanged), ``--seeds 0 1 2`` one
lockstep episode per seed; the phase tables then sum over the seeds, and each seed's final scores are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from legacy_downstream import legacy_fit_logistic
from legacy_ensemble import LegacyEnsembleRewardModel

import activeuf_env  # noqa: F401
import agents
from activeuf_env.core import downstream
from activeuf_env.core.proxy_training import fit_logistic
from activeuf_env.core.reward_model import EnsembleRewardModel, RewardModelConfig
from activeuf_env.envs import active_uf
from activeuf_env.runner.episode import make_env, play_episode

IMPLEMENTATIONS = {"legacy": LegacyEnsembleRewardModel, "current": EnsembleRewardModel, "bf16": EnsembleRewardModel}
MATMUL_DTYPES = {"legacy": "float32", "current": "float32", "bf16": "bfloat16"}
FITS = {"legacy": legacy_fit_logistic, "current": fit_logistic, "bf16": fit_logistic}
PHASES = (
    "make + first reset (draws the pool)",
    "agent select",
    "env.step (all)",
    "ensemble training",
    "ensemble prediction",
    "downstream evaluation",
)


@dataclass
class Args:
    env: str = "ActiveUF/SyntheticPaperScale-v0"
    agent: str = "drts"
    seeds: tuple[int, ...] = (0,)
    max_rounds: int | None = None
    implementations: tuple[str, ...] = ("current",)


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


@contextlib.contextmanager
def implementation(name: str) -> Iterator[None]:
    """Let the env build its ensemble from ``name``'s class (it does so at reset) and its downstream evaluator fit
    with ``name``'s optimiser (at every evaluation) while the block runs."""
    saved = active_uf.EnsembleRewardModel, downstream.fit_logistic
    active_uf.EnsembleRewardModel, downstream.fit_logistic = IMPLEMENTATIONS[name], FITS[name]
    try:
        yield
    finally:
        active_uf.EnsembleRewardModel, downstream.fit_logistic = saved


@dataclass
class Run:
    """One implementation's episode in progress."""

    name: str
    totals: dict[str, float]
    env: Any
    steps: Iterator[Any]
    infos: list[dict[str, Any]]
    done: bool = False


def start(args: Args, name: str, seed: int, totals: dict[str, float]) -> Run:
    cls, agent = IMPLEMENTATIONS[name], TimedAgent(agents.make(args.agent), totals)
    begin = time.perf_counter()
    kwargs = {}
    if MATMUL_DTYPES[name] != "float32":
        model = gym.spec(args.env).kwargs.get("reward_model") or RewardModelConfig()
        kwargs["reward_model"] = dataclasses.replace(model, matmul_dtype=MATMUL_DTYPES[name])
    env = make_env(args.env, agent.agent, kwargs)
    with implementation(name):
        steps = play_episode(env, agent, seed)
        info = next(steps).info  # the reset
    unwrapped = env.unwrapped
    model, evaluator = unwrapped.episode.model, unwrapped._instance(unwrapped.episode.instance_id).evaluator
    assert type(model) is cls and getattr(model.config, "matmul_dtype", "float32") == MATMUL_DTYPES[name]
    # Instrument the entry points the env calls, on this episode's ensemble and evaluator: the script only observes.
    model.fit_round = timed(totals, "ensemble training", model.fit_round)
    model.predict = timed(totals, "ensemble prediction", model.predict)
    evaluator.evaluate = timed(totals, "downstream evaluation", evaluator.evaluate)
    totals["make + first reset (draws the pool)"] += time.perf_counter() - begin
    return Run(name, totals, env, steps, [info])


def advance(run: Run) -> None:
    """Play one round (the agent's select, then env.step)."""
    tick = time.perf_counter()
    with implementation(run.name):
        step = next(run.steps, None)
    run.totals["select + step"] += time.perf_counter() - tick
    if step is None:
        run.done = True
    else:
        run.infos.append(step.info)


def info_difference(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> tuple[float, str]:
    """The largest absolute difference of a numeric ``info`` value between two runs' rounds, and its key."""
    largest = (0.0, "")
    for a, b in zip(first, second, strict=False):
        for key in a.keys() & b.keys():
            if isinstance(a[key], (int, float)) and isinstance(b[key], (int, float)):
                largest = max(largest, (abs(float(a[key]) - float(b[key])), key))
    return largest


def report(name: str, run: Run) -> list[str]:
    totals = run.totals
    totals["env.step (all)"] = totals["select + step"] - totals["agent select"]
    overhead = totals["env.step (all)"] - totals["ensemble training"] - totals["ensemble prediction"]
    rest = overhead - totals["downstream evaluation"]
    lines = [f"  {phase:<38} {totals[phase]:>9.2f} s" for phase in PHASES]
    share = overhead / max(totals["env.step (all)"], 1e-9)
    lines.append(f"  {'env overhead (step - ensemble)':<38} {overhead:>9.2f} s = {share:.1%} of step time")
    lines.append(f"  {'  of which not the evaluation':<38} {rest:>9.2f} s")
    info = run.infos[-1]
    lines.append(
        f"  {name}: {len(run.infos) - 1} rounds, {info['labels']} labels, final score {info.get('score')!r}, "
        f"rm_score {info.get('rm_score')!r}, dpo_score {info.get('dpo_score')!r}, enn_loss {info.get('enn_loss')!r}"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=Args.env)
    parser.add_argument("--agent", default=Args.agent)
    parser.add_argument("--seed", type=int, nargs="+", default=list(Args.seeds), dest="seeds", help="or --seeds")
    parser.add_argument("--seeds", type=int, nargs="+", dest="seeds", help=argparse.SUPPRESS)
    parser.add_argument("--max-rounds", type=int, default=None, help="stop early after this many rounds")
    parser.add_argument("--compare", action="store_true", help="legacy and current ensemble in lockstep")
    parser.add_argument("--implementations", nargs="+", choices=list(IMPLEMENTATIONS), help="played in lockstep")
    ns = parser.parse_args()
    names = tuple(ns.implementations or (("legacy", "current") if ns.compare else ("current",)))
    args = Args(env=ns.env, agent=ns.agent, seeds=tuple(ns.seeds), max_rounds=ns.max_rounds, implementations=names)

    totals: dict[str, dict[str, float]] = {name: defaultdict(float) for name in names}
    last: dict[str, Run] = {}
    same = {name: True for name in names[1:]}
    largest: dict[str, tuple[float, str]] = {name: (0.0, "") for name in names[1:]}
    finals: list[str] = []
    for seed in args.seeds:
        runs = {name: start(args, name, seed, totals[name]) for name in names}
        for _ in itertools.islice(itertools.count(), args.max_rounds):
            for run in runs.values():
                advance(run)
            if all(run.done for run in runs.values()):
                break
        for name, run in runs.items():
            run.env.close()
            info = run.infos[-1]
            finals.append(
                f"  seed {seed} {name:<8} score {info.get('score')!r}, rm_score {info.get('rm_score')!r}, "
                f"dpo_score {info.get('dpo_score')!r}"
            )
            if name != names[0]:
                same[name] &= run.infos == runs[names[0]].infos
                largest[name] = max(largest[name], info_difference(runs[names[0]].infos, run.infos))
        last = runs

    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    lockstep = f" ({', '.join(names)} in lockstep)" if len(names) > 1 else ""
    print(f"{args.env}, agent {args.agent}, seeds {list(args.seeds)}{lockstep}; phases summed over the seeds")
    for name, run in last.items():
        print(f"{name} ensemble ({IMPLEMENTATIONS[name].__module__}, matmul_dtype {MATMUL_DTYPES[name]}):")
        print("\n".join(report(name, run)))
    print("final scores:\n" + "\n".join(finals))
    first = names[0]
    for name in names[1:]:
        for phase in ("ensemble training", "ensemble prediction", "env.step (all)"):
            ratio = totals[first][phase] / max(totals[name][phase], 1e-9)
            print(f"  speed-up of {name} over {first}, {phase:<20} {ratio:>6.2f}x")
        print(f"  every round's info of {name} identical to {first}'s: {same[name]}")
        if not same[name]:
            print(f"  largest difference of a numeric info value: {largest[name][0]:.3g} ({largest[name][1]})")
    print(f"  peak resident memory {peak_gib:.2f} GiB" + (" (all episodes)" * (len(names) > 1)))


if __name__ == "__main__":
    main()
