"""Meta-train the learned selector over the train split of ``ActiveUF/SyntheticTasks-v0`` (CleanRL style: read top
to bottom).

    python -m agents.learned.train --out runs/selector            # the shipped checkpoint's command, see README
    python -m agents.learned.train --out runs/selector --resume   # continue an interrupted run exactly

1. **Imitation** (``--imitation-iterations``, DAgger-style): the policy plays train tasks and learns, by
   cross-entropy, the choices ``--imitate`` (default ``deltaquantile``) would make in the states it visits, so RL
   starts from a hand-designed rule of the family. A privileged labeller works too (``maxmin`` reads the judge's
   scores, which the policy never sees: the policy then learns its best guess of the judge's extremes).
2. **Policy gradient** (REINFORCE with a paired baseline): every iteration samples ``--episodes`` (task, seed) pairs
   from the train split; the policy plays each (sampling its choices) and the teacher plays the same task and seed.
   The advantage of round ``t`` is the policy's score gain from ``t`` to the end minus the teacher's from the same
   round: the task's difficulty and the seed's luck cancel, which a round-level noisy reward needs.
3. **Validation** every ``--validate-every`` iterations on the validation split (never the test split): the mean
   paired difference of final ``score`` against the teacher, over ``--validation-tasks`` × ``--validation-seeds``
   episodes with fixed seeds. The best one is kept as ``best.safetensors`` (+ ``.json``); ``last.pt`` holds the whole
   training state (``--resume``), ``progress.csv`` one row per iteration; ``--track`` logs the same to W&B.

Every iteration's randomness derives from ``(--seed, iteration)``, so a resumed run continues exactly.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from activeuf_env._io import atomic_path
from activeuf_env.envs.tasks import split_tasks
from agents.learned.checkpoint import save_checkpoint
from agents.learned.policy import PolicyConfig, SelectorPolicy
from agents.learned.rollout import Rollout, env_kwargs_for, play_policy, play_teacher, run_jobs

__all__ = ["Args", "main", "paired_advantages", "parse_args", "plot_progress", "train"]


@dataclasses.dataclass
class Args:
    """Every option of the training script (the ``--help`` text is each field's ``help`` metadata)."""

    out: str = dataclasses.field(default="runs/selector", metadata={"help": "output folder"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of everything the run draws"})
    iterations: int = dataclasses.field(default=10, metadata={"help": "policy-gradient iterations"})
    episodes: int = dataclasses.field(default=24, metadata={"help": "policy episodes per iteration"})
    imitation_iterations: int = dataclasses.field(default=20, metadata={"help": "imitation iterations first"})
    imitation_episodes: int = dataclasses.field(default=8, metadata={"help": "teacher episodes per imitation round"})
    imitation_steps: int = dataclasses.field(default=20, metadata={"help": "Adam steps on each imitation batch"})
    train_tasks: int = dataclasses.field(default=2000, metadata={"help": "tasks of the train split to sample from"})
    teacher: str = dataclasses.field(default="deltaquantile", metadata={"help": "the paired baseline agent"})
    imitate: str = dataclasses.field(default="deltaquantile", metadata={"help": "the agent imitated in the warm start"})
    lr: float = dataclasses.field(default=1e-3, metadata={"help": "Adam learning rate"})
    entropy: float = dataclasses.field(default=0.003, metadata={"help": "entropy bonus coefficient"})
    gamma: float = dataclasses.field(default=1.0, metadata={"help": "discount of later rounds' paired gains"})
    hidden: int = dataclasses.field(default=32, metadata={"help": "width of the policy's layers"})
    pair_rank: int = dataclasses.field(default=8, metadata={"help": "rank of the pair interaction term"})
    validation_tasks: int = dataclasses.field(default=20, metadata={"help": "validation tasks"})
    validation_seeds: int = dataclasses.field(default=2, metadata={"help": "episodes per validation task"})
    validate_every: int = dataclasses.field(default=10, metadata={"help": "iterations between validations"})
    workers: int = dataclasses.field(default=2, metadata={"help": "rollout processes (spawn); 1: this process"})
    track: bool = dataclasses.field(default=False, metadata={"help": "log to W&B (offline unless configured)"})
    wandb_project: str = dataclasses.field(default="activeuf-env", metadata={"help": "W&B project"})
    resume: bool = dataclasses.field(default=False, metadata={"help": "continue the run in --out from last.pt"})
    progress: bool = dataclasses.field(default=True, metadata={"help": "progress bar"})


def parse_args(argv: list[str] | None = None) -> Args:
    """``Args`` from the command line (every field is an option, with its default in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m agents.learned.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default, **field.metadata)
        else:
            kind = {"int": int, "float": float, "str": str}[str(field.type)]
            parser.add_argument(flag, type=kind, default=field.default, **field.metadata)
    return Args(**vars(parser.parse_args(argv)))


# ---------------------------------------------------------------------- losses


def _stack(rollouts: list[Rollout], targets: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every round of ``rollouts`` stacked: features ``[R, B, K, F]``, valid ``[R, B, K]``, and the choices (or the
    labeller's ``targets``) ``[R, B]``."""
    return (
        torch.stack([f for r in rollouts for f in r.features]),
        torch.stack([v for r in rollouts for v in r.valid]),
        torch.stack([c for r in rollouts for c in (r.targets if targets else r.choices)]),
    )


def _log_probs(
    policy: SelectorPolicy, stacked: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per round and prompt of :func:`_stack`'s tensors: the log-probability of the given choice, the entropy, and
    whether the prompt is active."""
    features, valid, choices = stacked
    log_p = torch.log_softmax(policy(features, valid), dim=-1)
    taken = log_p.gather(-1, choices[..., None])[..., 0]
    # Masked choices have log p = -inf and p = 0; zero their log p first (a where() after the product would pass
    # NaN gradients back through 0 * -inf).
    finite_log_p = log_p.masked_fill(~torch.isfinite(log_p), 0.0)
    entropy = -(finite_log_p.exp() * finite_log_p).sum(dim=-1)
    return taken, entropy, valid.any(dim=-1)


def paired_advantages(rollouts: list[Rollout], teachers: list[Rollout], gamma: float = 1.0) -> torch.Tensor:
    """Per round of every rollout: its discounted score gains from that round on, minus the teacher's from the same
    round (``[R]``); ``gamma = 1`` compares the gains to the end of the episode.

    The teacher's episode is independent of the policy's choices, so it is a valid baseline for every round, and it
    removes what the task and the seed add to both."""
    values = []
    for rollout, teacher in zip(rollouts, teachers, strict=True):
        n = max(len(rollout.scores), len(teacher.scores))
        mine = np.diff(np.pad(rollout.scores, (0, n - len(rollout.scores)), mode="edge"))
        theirs = np.diff(np.pad(teacher.scores, (0, n - len(teacher.scores)), mode="edge"))
        gains, total = np.zeros(n - 1), 0.0
        for t in range(n - 2, -1, -1):  # discounted sums from the end, over at most about 20 rounds
            total = (mine[t] - theirs[t]) + gamma * total
            gains[t] = total
        values.extend(gains[: len(rollout.choices)])
    return torch.tensor(values, dtype=torch.float32)


# ---------------------------------------------------------------------- the run


def _draw(args: Args, iteration: int, count: int) -> list[tuple[int, int]]:
    """(task, seed) pairs of an iteration, from the train split; a function of (seed, iteration) only."""
    rng = np.random.default_rng([args.seed, iteration])
    train = split_tasks("train", args.train_tasks)
    tasks = np.asarray(train)[rng.integers(len(train), size=count)]
    seeds = rng.integers(2**31, size=count)
    return [(int(t), int(s)) for t, s in zip(tasks, seeds, strict=True)]


def _validation_keys(args: Args) -> list[tuple[int, int]]:
    tasks = split_tasks("validation", args.validation_tasks)
    return [(task, seed) for task in tasks for seed in range(args.validation_seeds)]


def _save_state(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(args: Args) -> dict[str, Any]:
    """Run the training of the module docstring; returns the summary written to ``out/summary.json``."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    config = PolicyConfig(hidden=args.hidden, pair_rank=args.pair_rank)
    policy = SelectorPolicy(config, seed=args.seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.lr)
    state: dict[str, Any] = {"iteration": 0, "best": None, "rows": [], "seconds": 0.0, "adv_scale": 0.0}
    if args.resume and (out / "last.pt").is_file():
        saved = torch.load(out / "last.pt", weights_only=True)
        ignored = ("resume", "progress", "track")
        if {k: v for k, v in saved["args"].items() if k not in ignored} != {
            k: v for k, v in dataclasses.asdict(args).items() if k not in ignored
        }:
            raise ValueError(f"cannot resume {str(out / 'last.pt')!r}: it was trained with other arguments")
        policy.load_state_dict(saved["policy"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
    recorder = _tracker(args)
    runner = run_jobs(args.workers)
    env_kwargs = env_kwargs_for(args.teacher, args.imitate)
    teacher_validation = runner(
        [(play_teacher, (args.teacher, "validation", task, seed, env_kwargs)) for task, seed in _validation_keys(args)]
    )
    total = args.imitation_iterations + args.iterations
    start = time.perf_counter() - state["seconds"]
    try:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=state["iteration"], desc="iterations", disable=not args.progress)
        while state["iteration"] < total:
            iteration = state["iteration"]
            row = _iterate(args, iteration, policy, optimizer, runner, state)
            if (iteration + 1) % args.validate_every == 0 or iteration + 1 == total:
                row.update(_validate(args, policy, runner, teacher_validation, out, state, iteration))
            state["iteration"] = iteration + 1
            state["seconds"] = time.perf_counter() - start
            row["seconds"] = state["seconds"]
            state["rows"].append(row)
            _write_progress(out, state["rows"])
            _save_state(out / "last.pt", {
                "args": dataclasses.asdict(args), "policy": policy.state_dict(),
                "optimizer": optimizer.state_dict(), "state": state,
            })  # fmt: skip
            if recorder is not None:
                recorder.log(row, step=iteration)
            bar.set_postfix_str(", ".join(f"{k}={v:.4f}" for k, v in row.items() if isinstance(v, float))[:120])
            bar.update(1)
        bar.close()
    finally:
        runner.close()
        if recorder is not None:
            recorder.finish()
    summary = {"best": state["best"], "iterations": total, "seconds": state["seconds"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_progress(state["rows"], out / "progress.png")
    return summary


def plot_progress(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Training progress: the paired difference with the teacher per iteration (training episodes) and at every
    validation; ``None`` (no plot) without matplotlib (the ``bench`` extra)."""
    try:
        from activeuf_env.runner.plots import new_figure, save_figure

        figure = new_figure(7.0, 4.0)
    except ImportError:
        return None
    axes = figure.subplots()
    train = [(row["iteration"], row["paired_diff"]) for row in rows if "paired_diff" in row]
    validation = [(row["iteration"], row["val_paired_diff"]) for row in rows if "val_paired_diff" in row]
    if train:
        axes.plot(*zip(*train, strict=True), color="0.6", lw=1, label="train episodes (this iteration)")
    if validation:
        axes.plot(*zip(*validation, strict=True), "o-", color="C0", label="validation tasks")
    imitation = sum(1 for row in rows if row["phase"] == "imitation")
    axes.axvspan(-0.5, imitation - 0.5, color="C1", alpha=0.1, label="imitation")
    axes.axhline(0.0, color="k", lw=0.8)
    axes.set_xlabel("iteration")
    axes.set_ylabel("final score: policy − teacher")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def _iterate(
    args: Args, iteration: int, policy: SelectorPolicy, optimizer: Any, runner: Any, state: dict[str, Any]
) -> dict[str, Any]:
    """One imitation or policy-gradient update; returns its progress row."""
    weights = {name: tensor.detach().clone() for name, tensor in policy.state_dict().items()}
    env_kwargs = env_kwargs_for(args.teacher, args.imitate)
    if iteration < args.imitation_iterations:
        keys = _draw(args, iteration, args.imitation_episodes)
        rollouts = runner(
            [(play_policy, (weights, policy.config, "train", t, s, env_kwargs, args.imitate)) for t, s in keys]
        )
        stacked = _stack(rollouts, targets=True)
        for _ in range(args.imitation_steps - 1):  # the last step is taken below, with the others' bookkeeping
            taken, _, active = _log_probs(policy, stacked)
            _step(optimizer, policy, -(taken * active).sum() / active.sum())
        taken, entropy, active = _log_probs(policy, stacked)
        loss = -(taken * active).sum() / active.sum()
        row = {"iteration": iteration, "phase": "imitation", "loss": loss.item(), "policy_score": _mean(rollouts)}
    else:
        keys = _draw(args, iteration, args.episodes)
        jobs = [(play_policy, (weights, policy.config, "train", t, s, env_kwargs)) for t, s in keys]
        jobs += [(play_teacher, (args.teacher, "train", t, s, env_kwargs)) for t, s in keys]
        results = runner(jobs)
        rollouts, teachers = results[: len(keys)], results[len(keys) :]
        advantage = paired_advantages(rollouts, teachers, args.gamma)
        # A running scale, not per-batch standardisation: the paired baseline already centres the advantage.
        square = float(advantage.pow(2).mean())
        state["adv_scale"] = square if not state["adv_scale"] else 0.9 * state["adv_scale"] + 0.1 * square
        scale = max(state["adv_scale"], 1e-8) ** 0.5
        stacked = _stack(rollouts)
        taken, entropy, active = _log_probs(policy, stacked)
        weight = active.float()
        objective = ((advantage / scale)[:, None] * taken * weight).sum() + args.entropy * (entropy * weight).sum()
        loss = -objective / weight.sum()
        row = {
            "iteration": iteration,
            "phase": "policy gradient",
            "loss": loss.item(),
            "policy_score": _mean(rollouts),
            "teacher_score": _mean(teachers),
            "paired_diff": _mean(rollouts) - _mean(teachers),
            "skip_rate": _skip_rate(stacked),
        }
    row["entropy"] = ((entropy * active).sum() / active.sum()).item()
    _step(optimizer, policy, loss)
    return row


def _step(optimizer: Any, policy: SelectorPolicy, loss: torch.Tensor) -> None:
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    optimizer.step()


def _skip_rate(stacked: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> float:
    """Share of the active prompts the policy skipped (from :func:`_stack`'s tensors)."""
    _, valid, choices = stacked
    active = valid.any(dim=-1)
    skip = valid.shape[-1] ** 2
    return float(((choices == skip) & active).sum() / active.sum())


def _mean(rollouts: list[Rollout]) -> float:
    return float(np.mean([r.final["score"] for r in rollouts]))


def _validate(
    args: Args,
    policy: SelectorPolicy,
    runner: Any,
    teachers: list[Rollout],
    out: Path,
    state: dict[str, Any],
    iteration: int,
) -> dict[str, float]:
    """Paired difference of final score against the teacher on the validation tasks; keeps the best checkpoint."""
    weights = {name: tensor.detach().clone() for name, tensor in policy.state_dict().items()}
    env_kwargs = env_kwargs_for(args.teacher, args.imitate)
    jobs = [(play_policy, (weights, policy.config, "validation", t, s, env_kwargs)) for t, s in _validation_keys(args)]
    rollouts = runner(jobs)
    diffs = np.array([r.final["score"] - t.final["score"] for r, t in zip(rollouts, teachers, strict=True)])
    result = {"val_score": _mean(rollouts), "val_teacher_score": _mean(teachers)}
    result["val_paired_diff"] = float(diffs.mean())
    if state["best"] is None or result["val_paired_diff"] > state["best"]["val_paired_diff"]:
        state["best"] = {**result, "iteration": iteration}
        training = {
            "command": shlex.join([sys.executable.rsplit("/", 1)[-1], "-m", "agents.learned.train", *sys.argv[1:]]),
            "args": dataclasses.asdict(args),
            "iteration": iteration,
            "train_tasks": _describe_seeds("SyntheticTasks-v0 train split", split_tasks("train", args.train_tasks)),
            "validation_tasks": _describe_seeds("validation split", split_tasks("validation", args.validation_tasks)),
        }
        save_checkpoint(out / "best.safetensors", policy, training=training, metrics=state["best"])
    return result


def _describe_seeds(split: str, seeds: list[int]) -> str:
    return f"{split}, task seeds {seeds[0]}..{seeds[-1]}"


def _write_progress(out: Path, rows: list[dict[str, Any]]) -> None:
    columns = sorted({key for row in rows for key in row}, key=lambda k: (k != "iteration", k))
    with atomic_path(out / "progress.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _tracker(args: Args) -> Any:
    """A W&B run when ``--track`` (offline unless W&B is configured), else ``None``."""
    if not args.track:
        return None
    import wandb

    from activeuf_env.tracking.recorder import resolve_wandb_mode

    return wandb.init(
        project=args.wandb_project,
        group="learned-selector",
        job_type="meta-train",
        config=dataclasses.asdict(args),
        dir=args.out,
        mode=resolve_wandb_mode(None),
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m agents.learned.train``."""
    summary = train(parse_args(argv))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
