"""The ``activeuf`` command.

``activeuf demo`` runs one seeded episode of ``ActiveUF/Synthetic-v0`` with one agent and prints a per-round table
(the benchmark of all agents replaces it once the downstream evaluator exists).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import gymnasium as gym


def run_demo(env_id: str, agent_name: str, seed: int, out: object = sys.stdout) -> dict[str, float | int]:
    """Run one seeded episode of ``env_id`` with ``agent_name`` and print one row per round; return the last info."""
    import activeuf_env  # noqa: F401  (registers the ids)
    import agents  # the library does not depend on agents; only the command does

    agent = agents.make(agent_name)
    env = gym.make(env_id, **agent.env_kwargs())
    agent.reset(seed=seed)
    obs, info = env.reset(seed=seed)
    print(f"{env_id}, agent {agent_name}, seed {seed}", file=out)
    header = f"{'round':>5} {'labels':>6} {'judge calls':>11} {'pair gap':>8} {'label acc':>9} {'ENN loss':>8} {'s':>6}"
    print(header, file=out)
    start = time.perf_counter()
    terminated = truncated = False
    while not (terminated or truncated):
        tick = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(agent.select(obs))
        print(
            f"{info['round']:>5} {info['labels']:>6} {info['judge_calls']:>11} {info['pair_gap']:>8.3f} "
            f"{info['label_accuracy']:>9.3f} {info['enn_loss']:>8.4f} {time.perf_counter() - tick:>6.2f}",
            file=out,
        )
    print(f"episode done in {time.perf_counter() - start:.1f} s", file=out)
    env.close()
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``activeuf`` console script."""
    parser = argparse.ArgumentParser(prog="activeuf", description="ActiveUF environments: demos and benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run one seeded episode and print a per-round table")
    demo.add_argument("--env", default="ActiveUF/Synthetic-v0", help="environment id")
    demo.add_argument("--agent", default="drts", help="agent name (see agents.registered_names())")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        run_demo(args.env, args.agent, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
