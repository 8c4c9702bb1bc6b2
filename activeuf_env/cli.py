"""The ``activeuf`` command: benchmarks, sweeps, the demo, and a one-episode table.

``activeuf bench`` runs every (agent, seed) episode of an environment and writes the tidy
table, ``summary.md``, PNG plots, ``config.json`` and one W&B run per episode (offline unless W&B is configured) into
``--out`` (see :func:`activeuf_env.runner.run_benchmark`), in worker processes or as Ray tasks (``--backend ray``).
``activeuf sweep`` tunes every agent over a grid on selection seeds and reports the chosen configurations on fresh
seeds (:func:`activeuf_env.runner.sweep.run_sweep`). ``activeuf demo`` is the README's main job: every
registered agent and baseline on ``ActiveUF/Synthetic-v0``, 3 seeds, 2 workers, W&B offline, into ``runs/demo``.
``activeuf episode`` prints one episode round by round (the runner's episode loop,
:func:`activeuf_env.runner.play_episode`). ``activeuf features`` encodes a dataset's prompts and responses into the
embedding cache (with a progress bar), so later reads of that dataset skip the encoder.

Sub-commands are registered in :data:`COMMANDS` (name -> function that adds its parser and sets ``handler``), so a
new one is one function and one entry.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from activeuf_env._validation import check_int
from activeuf_env.runner.artefacts import EPISODES_FOLDER
from activeuf_env.tracking.recorder import DEFAULT_PROJECT, WANDB_MODES

__all__ = [
    "COMMANDS",
    "build_parser",
    "main",
    "parse_agent_kwargs",
    "parse_env_kwargs",
    "parse_seeds",
    "run_episode_table",
]

DEMO_ENV = "ActiveUF/Synthetic-v0"
DEMO_SEEDS = 3
DEMO_WORKERS = 2
DEMO_OUT = "runs/demo"


def parse_seeds(text: str) -> list[int]:
    """Parse ``--seeds``: a count ``N`` (seeds ``0 .. N-1``) or a comma-separated list of seeds.

    Example:
        >>> parse_seeds("3"), parse_seeds("0,5,7")
        ([0, 1, 2], [0, 5, 7])
    """
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be a count or a comma-separated list of integers, got {text!r}") from None
    if not values:
        raise ValueError(f"--seeds must be a count or a comma-separated list of integers, got {text!r}")
    if "," not in text:
        return list(range(check_int("--seeds", values[0], low=1)))  # type: ignore[arg-type]
    return [check_int("--seeds", value, low=0) for value in values]  # type: ignore[misc]


def parse_agent_kwargs(text: str | None) -> dict[str, dict[str, Any]]:
    """Parse ``--agent-kwargs``: a JSON object of hyperparameters per agent name.

    Example:
        >>> parse_agent_kwargs('{"delta_model": {"chosen_model": "gemma-7b-it", "rejected_model": "gemma-2b-it"}}')
        {'delta_model': {'chosen_model': 'gemma-7b-it', 'rejected_model': 'gemma-2b-it'}}
    """
    if text is None:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--agent-kwargs must be a JSON object, got {text!r} ({exc})") from None
    if not isinstance(kwargs, dict) or not all(isinstance(value, dict) for value in kwargs.values()):
        raise ValueError(
            f"--agent-kwargs must be a JSON object of agent name -> object of hyperparameters, got {text!r}"
        )
    return kwargs


def parse_env_kwargs(text: str | None) -> dict[str, Any]:
    """Parse ``--env-kwargs``: a JSON object of env constructor overrides.

    ``instances``, ``reward_model`` and ``downstream`` may be given as objects of their config's fields
    (:class:`~activeuf_env.SyntheticPoolConfig`, :class:`~activeuf_env.RewardModelConfig`,
    :class:`~activeuf_env.core.downstream.DownstreamConfig`).

    Example:
        >>> kwargs = parse_env_kwargs('{"batch_size": 16, "instances": {"n_prompts": 200, "feature_dim": 16}}')
        >>> kwargs["batch_size"], type(kwargs["instances"]).__name__, kwargs["instances"].n_prompts
        (16, 'SyntheticPoolConfig', 200)
    """
    if not text:
        return {}
    from activeuf_env import RewardModelConfig, SyntheticPoolConfig
    from activeuf_env.core.downstream import DownstreamConfig

    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--env-kwargs must be a JSON object, got {text!r} ({exc})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--env-kwargs must be a JSON object, got {text!r}")
    configs: dict[str, type] = {
        "instances": SyntheticPoolConfig,
        "reward_model": RewardModelConfig,
        "downstream": DownstreamConfig,
    }
    for key, config in configs.items():
        if isinstance(kwargs.get(key), dict):
            try:
                kwargs[key] = config(**kwargs[key])
            except TypeError as exc:
                raise ValueError(f"--env-kwargs {key!r}: {exc}") from None
    return kwargs


# ---------------------------------------------------------------------- episode


def run_episode_table(
    env_id: str,
    agent_name: str,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Run one seeded episode of ``env_id`` with ``agent_name`` and print one row per round; return the last info.

    Args:
        env_id: a registered environment id.
        agent_name: a name of ``agents.registered_names()``.
        seed: seed of the env and the agent.
        env_kwargs: overrides of the env's registered kwargs (merged with the agent's own ``env_kwargs()`` by
            :func:`activeuf_env.runner.merge_env_kwargs`: a contradiction is an error).
        out: where to print (default: ``sys.stdout``).

    Returns:
        The ``info`` of the last step.
    """
    out = sys.stdout if out is None else out
    import activeuf_env  # noqa: F401  (registers the ids)
    import agents  # the library does not depend on agents; only the command does
    from activeuf_env.runner.episode import make_env, play_episode

    agent = agents.make(agent_name)
    env = make_env(env_id, agent, env_kwargs)
    start = tick = time.perf_counter()
    try:
        for step in play_episode(env, agent, check_int("seed", seed, low=0)):  # type: ignore[arg-type]
            info = step.info
            if step.index == 0:
                print(f"{env_id}, agent {agent_name}, seed {seed}", file=out)
                print(
                    f"{'round':>5} {'labels':>6} {'judge calls':>11} {'pair gap':>8} {'label acc':>9} {'score':>6} "
                    f"{'regret':>6} {'s':>5}",
                    file=out,
                )
            else:
                print(
                    f"{info['round']:>5} {info['labels']:>6} {info['judge_calls']:>11} {info['pair_gap']:>8.3f} "
                    f"{info['label_accuracy']:>9.3f} {info.get('score', float('nan')):>6.3f} "
                    f"{info.get('regret', float('nan')):>6.3f} {time.perf_counter() - tick:>5.2f}",
                    file=out,
                )
            tick = time.perf_counter()
    finally:
        env.close()
    print(f"episode done in {time.perf_counter() - start:.1f} s", file=out)
    return info


def _episode(args: argparse.Namespace) -> int:
    run_episode_table(args.env, args.agent, args.seed, parse_env_kwargs(args.env_kwargs))
    return 0


def _subparser(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A sub-command parser whose ``--help`` shows every default."""
    return commands.add_parser(name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def _add_episode(commands: Any) -> None:
    parser = _subparser(commands, "episode", help="run one seeded episode and print a per-round table")
    parser.add_argument("--env", default=DEMO_ENV, help="environment id")
    parser.add_argument("--agent", default="drts", help="agent name (see agents.registered_names())")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-kwargs", default=None, help="JSON env overrides, e.g. '{\"batch_size\": 16}'")
    parser.set_defaults(handler=_episode)


# ---------------------------------------------------------------------- bench and demo


def _report(result: Any, out: TextIO | None = None) -> int:
    """Print the summary and where everything is; exit status 1 when an episode failed."""
    out = sys.stdout if out is None else out
    print(result.summary_markdown, file=out)
    files = result.files
    tables = [str(files[key]) for key in ("results_csv", "results_parquet") if key in files]
    plots = [str(files[key]) for key in ("score_plot", "regret_plot", "final_plot") if key in files]
    print(f"tables:  {', '.join(tables)}", file=out)
    print(f"summary: {files['summary']}", file=out)
    print(f"config:  {files['config']}", file=out)
    print(f"plots:   {', '.join(plots) if plots else 'none'}", file=out)
    if "wandb" in files:
        print(
            f"W&B:     {files['wandb']} ({len(result.wandb_run_dirs)} runs; offline runs upload with "
            f"`wandb sync {files['wandb']}/offline-run-*`)",
            file=out,
        )
    else:
        print("W&B:     off", file=out)
    print(f"done in {result.seconds:.1f} s", file=out)
    return 1 if result.failures else 0


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments ``bench`` and ``sweep`` pass on alike."""
    env_kwargs = parse_env_kwargs(args.env_kwargs)
    if args.eval_every is not None:
        env_kwargs["eval_every"] = args.eval_every
    if getattr(args, "split", None) is not None:
        env_kwargs["split"] = args.split
    return {
        "agents": [name.strip() for name in args.agents.split(",") if name.strip()] if args.agents else None,
        "out": args.out,
        "workers": args.workers,
        "env_kwargs": env_kwargs,
        "agent_kwargs": parse_agent_kwargs(args.agent_kwargs),
        "wandb": args.wandb,
        "wandb_dir": args.wandb_dir,
        "wandb_project": args.wandb_project,
        "wandb_mode": args.wandb_mode,
        "progress": args.progress,
        "overwrite": args.overwrite,
        "resume": args.resume,
        "backend": _backend(args),
        "command": args.command_line,
    }


def _bench(args: argparse.Namespace) -> int:
    from activeuf_env.runner.benchmark import run_benchmark

    result = run_benchmark(args.env, seeds=parse_seeds(args.seeds), paired=args.paired, **_run_options(args))
    return _report(result)


def _sweep(args: argparse.Namespace) -> int:
    from activeuf_env.runner.grid import PAPER_GRID
    from activeuf_env.runner.sweep import run_sweep

    result = run_sweep(
        args.env,
        PAPER_GRID if args.grid == "paper" else args.grid,
        selection_seeds=parse_seeds(args.seeds),
        report_seeds=parse_seeds(args.report_seeds) if args.report_seeds else None,
        **_run_options(args),
    )
    print(result.summary_markdown)
    print(f"summary: {result.out / 'summary.md'}")
    print(f"table:   {result.out / 'sweep_results.csv'}")
    print(f"runs:    {result.out / 'selection'}, {result.out / 'report'} (one benchmark folder per configuration)")
    print(f"done in {result.seconds:.1f} s")
    return 0


def _backend(args: argparse.Namespace) -> Any:
    """``--backend``: "process", or a RayBackend (a local instance gets --workers × --cpus-per-task CPUs)."""
    if args.backend == "process":
        if args.ray_address:
            raise ValueError(f"--ray-address {args.ray_address} needs --backend ray")
        return "process"
    from activeuf_env.runner.ray_backend import RayBackend

    local_cpus = None if args.ray_address else max(1, math.ceil(args.workers * args.cpus_per_task))
    return RayBackend(args.ray_address, args.cpus_per_task, args.task_retries, local_cpus=local_cpus)


def _demo(args: argparse.Namespace) -> int:
    from activeuf_env.runner.benchmark import run_benchmark

    result = run_benchmark(
        DEMO_ENV,
        None,
        parse_seeds(args.seeds),
        out=args.out,
        workers=args.workers,
        wandb=args.wandb,
        # The demo never uploads: offline unless the user chose a mode through WANDB_MODE.
        wandb_mode=None if os.environ.get("WANDB_MODE") else "offline",
        progress=args.progress,
        overwrite=True,
        command=args.command_line,
    )
    return _report(result)


def _features(args: argparse.Namespace) -> int:
    from activeuf_env.data.readers import cache_dataset_embeddings

    prompt_file, response_file = cache_dataset_embeddings(
        args.path,
        encoder=args.encoder,
        cache=args.cache_dir if args.cache_dir is not None else True,
        on_error=args.on_error,
        split=args.split,
        progress=args.progress,
    )
    print(f"prompt embeddings:   {prompt_file}")
    print(f"response embeddings: {response_file}")
    return 0


def _add_features(commands: Any) -> None:
    parser = _subparser(commands, "features", help="encode a dataset's texts into the embedding cache")
    parser.add_argument("path", help="an AUF dataset (JSONL, Parquet, datasets directory) or a multi-model JSONL")
    parser.add_argument("--encoder", default=None, help="a local transformers model path (default: all-MiniLM-L6-v2)")
    parser.add_argument("--cache-dir", default=None, help="cache directory (default: $ACTIVEUF_CACHE_DIR or ~/.cache)")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="malformed rows")
    parser.add_argument("--split", default=None, help="the split of a datasets DatasetDict directory")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    parser.set_defaults(handler=_features)


def _positive_int(text: str) -> int:
    try:
        return check_int("the value", int(text), low=1)  # type: ignore[return-value]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from exc


def _add_common(parser: argparse.ArgumentParser, out: str, seeds: str, workers: int, seeds_are: str = "seeds") -> None:
    parser.add_argument("--seeds", default=seeds, help=f"{seeds_are}: a count N (0..N-1) or a comma-separated list")
    parser.add_argument("--workers", type=_positive_int, default=workers, help="worker processes")
    parser.add_argument("--out", default=out, help="output directory")
    parser.add_argument("--wandb", action=argparse.BooleanOptionalAction, default=True, help="one W&B run per episode")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")


def _add_grid_options(parser: argparse.ArgumentParser, out: str, seeds: str, seeds_are: str = "seeds") -> None:
    """The options ``bench`` and ``sweep`` share: env, agents, seeds, workers or Ray, output folder, W&B."""
    parser.add_argument("--env", default=DEMO_ENV, help="environment id")
    parser.add_argument(
        "--agents",
        default=None,
        help="comma-separated agent names or 'module:Class' paths of your own agents; None: every registered agent",
    )
    _add_common(parser, out=out, seeds=seeds, workers=2, seeds_are=seeds_are)
    parser.add_argument("--eval-every", type=_positive_int, default=None, help="downstream evaluation every N rounds")
    parser.add_argument("--env-kwargs", default=None, help="JSON env overrides, e.g. '{\"batch_size\": 16}'")
    parser.add_argument(
        "--agent-kwargs", default=None, help='JSON hyperparameters per agent, e.g. \'{"drts": {"beta": 2.0}}\''
    )
    parser.add_argument(
        "--backend",
        choices=("process", "ray"),
        default="process",
        help="where episodes run: worker processes, or Ray tasks (pip install 'activeuf-env[ray]')",
    )
    parser.add_argument(
        "--ray-address", default=None, help="a Ray cluster's address (default: start a local Ray with --workers CPUs)"
    )
    parser.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs Ray reserves per episode")
    parser.add_argument(
        "--task-retries", type=int, default=3, help="Ray: how often an episode whose worker died is run again"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="finish the run in --out: run only its missing or failed episodes (same settings; seeds, agents may grow)",
    )
    parser.add_argument("--wandb-project", default=DEFAULT_PROJECT, help="W&B project")
    parser.add_argument("--wandb-dir", default=None, help="where W&B writes its wandb/ folder (default: --out)")
    parser.add_argument(
        "--wandb-mode", choices=[m for m in WANDB_MODES if m], default=None, help="default: offline without a key"
    )


def _add_bench(commands: Any) -> None:
    parser = _subparser(commands, "bench", help="benchmark agents × seeds on an env: tables, summary, plots, W&B")
    _add_grid_options(parser, out="runs/bench", seeds="5")
    parser.add_argument(
        "--split", default=None, help="task split of a task env (ActiveUF/SyntheticTasks-v0): train, validation, test"
    )
    parser.add_argument(
        "--paired", default=None, help="an agent to compare with every other, episode by episode, in the summary"
    )
    parser.set_defaults(handler=_bench)


def _add_sweep(commands: Any) -> None:
    parser = _subparser(
        commands, "sweep", help="tune every agent over a grid on selection seeds, report the best on fresh seeds"
    )
    _add_grid_options(parser, out="runs/sweep", seeds="3", seeds_are="selection seeds")
    parser.add_argument(
        "--grid",
        default="paper",
        help="a JSON or YAML grid file (sections agent, agents, reward_model, env), or 'paper' for AUF's 12-point grid",
    )
    parser.add_argument(
        "--report-seeds", default=None, help="fresh seeds for the report (default: as many, after the selection seeds)"
    )
    parser.set_defaults(handler=_sweep)


def _add_demo(commands: Any) -> None:
    parser = _subparser(
        commands, "demo", help=f"the main job: every agent and baseline on {DEMO_ENV}, {DEMO_SEEDS} seeds, W&B offline"
    )
    _add_common(parser, out=DEMO_OUT, seeds=str(DEMO_SEEDS), workers=DEMO_WORKERS)
    parser.set_defaults(handler=_demo)


def describe_env_ids() -> list[str]:
    """One line per registered ``ActiveUF/*`` id: responses per prompt K, feature dimension D and rounds.

    Example:
        >>> describe_env_ids()[0]
        'ActiveUF/AlpacaEval-v0: K, D from the data (the shared AlpacaEval set: 640 train prompts, 10 rounds of 64)'
    """
    import gymnasium

    from activeuf_env import SyntheticPoolConfig
    from activeuf_env.envs.real_data import ALPACA_EVAL_BATCH_SIZE, ALPACA_EVAL_EVAL_SIZE, ALPACA_EVAL_PROMPTS
    from activeuf_env.envs.tasks import MAX_RESPONSES, TASK_SPLITS

    lines = []
    for env_id in sorted(name for name in gymnasium.registry if name.startswith("ActiveUF/")):
        kwargs = gymnasium.registry[env_id].kwargs
        pool = kwargs.get("instances")
        if isinstance(pool, SyntheticPoolConfig):
            train = pool.n_prompts - kwargs["eval_size"]
            rounds = -(-train // kwargs["batch_size"])
            lines.append(
                f"{env_id}: K={pool.n_models}, D={pool.feature_dim}, {train} train prompts, "
                f"{rounds} rounds of {kwargs['batch_size']}"
            )
        elif env_id == "ActiveUF/AlpacaEval-v0":
            train = ALPACA_EVAL_PROMPTS - ALPACA_EVAL_EVAL_SIZE
            rounds = -(-train // ALPACA_EVAL_BATCH_SIZE)
            lines.append(
                f"{env_id}: K, D from the data (the shared AlpacaEval set: {train} train prompts, "
                f"{rounds} rounds of {ALPACA_EVAL_BATCH_SIZE})"
            )
        elif env_id == "ActiveUF/SyntheticTasks-v0":
            splits = ", ".join(f"{name} {r.start}-{r.stop - 1}" for name, r in TASK_SPLITS.items())
            lines.append(f"{env_id}: K, D, judge and budget drawn per task, K padded to {MAX_RESPONSES} ({splits})")
        else:
            lines.append(f"{env_id}: K, D and rounds from data_path= (any dataset)")
    return lines


def _list(args: argparse.Namespace) -> int:
    import dataclasses

    import agents

    print("agents (agents.make(name, **hyperparameters); --agents NAME or module:Class):")
    for name in agents.registered_names():
        agent = agents.make(name)
        fields = ", ".join(f"{field.name}={getattr(agent, field.name)!r}" for field in dataclasses.fields(agent))
        print(f"  {name:<14} {fields or '(no hyperparameters)'}")
    print("environments (gymnasium.make(id, **kwargs); --env ID):")
    for line in describe_env_ids():
        print(f"  {line}")
    return 0


def _add_list(commands: Any) -> None:
    parser = _subparser(commands, "list", help="the registered agents with their hyperparameters, and the env ids")
    parser.set_defaults(handler=_list)


COMMANDS: dict[str, Callable[[Any], None]] = {
    "demo": _add_demo,
    "bench": _add_bench,
    "sweep": _add_sweep,
    "episode": _add_episode,
    "features": _add_features,
    "list": _add_list,
}
"""Sub-command name -> function adding its parser to the sub-parsers (it sets ``handler``: args -> exit status)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``activeuf`` argument parser, one sub-parser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="activeuf", description="ActiveUF environments: demos and benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for add in COMMANDS.values():
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``activeuf`` console script; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(arguments)
    args.command_line = shlex.join(["activeuf", *arguments])
    # Like `python -m`, so that `--agents my_module:MyAgent` finds a module in the working directory (the benchmark's
    # spawned workers inherit this path).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    # SIGTERM (a scheduler's stop, `kill`) ends the run like Ctrl-C: finished episodes stay stored, workers end.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.handler(args))
    except (ValueError, ImportError, OSError) as exc:  # OSError: an unwritable --out (ResultsNotWritten among them)
        parser.exit(2, f"activeuf {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        hint = ""
        if args.command in ("bench", "demo"):
            hint = f"; the finished episodes are kept in {os.path.join(args.out, EPISODES_FOLDER)}"
            hint += ": rerun the same command with --resume to finish the run" if args.command == "bench" else ""
        elif args.command == "sweep":
            hint = f"; the finished episodes are kept in {args.out}: rerun the same command with --resume to finish it"
        parser.exit(130, f"activeuf {args.command}: interrupted{hint}\n")
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 2  # pragma: no cover - parser.exit raises SystemExit


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
