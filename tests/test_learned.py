"""The learned selector: equivariance, any K and B, seeded choices, checkpoints and their errors, and the training
script (a few iterations, and ``--resume`` continuing exactly)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.learned import LearnedSelector, PolicyConfig, SelectorPolicy, load_checkpoint, save_checkpoint
from agents.learned.checkpoint import config_path


def observation(b: int, k: int, seed: int = 0, padded: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(b, k)).astype(np.float32)
    spread = rng.uniform(0.05, 1.0, size=(b, k)).astype(np.float32)
    valid = np.ones((b, k), np.int8)
    if padded:
        valid[:, k - padded :] = 0
    prompt_valid = np.ones(b, np.int8)
    prompt_valid[-1] = 0
    return {
        "mean": mean * valid,
        "lower": (mean - spread) * valid,
        "upper": (mean + spread) * valid,
        "valid": valid,
        "prompt_valid": prompt_valid,
        "budget_remaining": np.array([0.6], np.float32),
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of an untrained policy whose skip is unlikely (so choices are pairs)."""
    policy = SelectorPolicy(PolicyConfig(hidden=16, pair_rank=4), seed=3)
    with torch.no_grad():
        policy.skip[-1].bias.fill_(-5.0)
    path = tmp_path_factory.mktemp("ckpt") / "selector.safetensors"
    return save_checkpoint(path, policy, training={"command": "test"}, metrics={})


def test_permuting_responses_or_prompts_permutes_the_choices(checkpoint: Path) -> None:
    agent = LearnedSelector(path=str(checkpoint), greedy=True)
    obs = observation(16, 12, padded=3)
    agent.reset(seed=0)
    pairs = agent.select(obs)
    assert (pairs[:-1, 0] != pairs[:-1, 1]).all() and pairs[-1].tolist() == [0, 0]  # the inactive row is skipped
    assert (pairs[:-1] < 9).all()  # never a padded slot

    perm = np.r_[np.random.default_rng(1).permutation(9), 9, 10, 11]  # real slots shuffled, padding kept last
    shuffled = {key: value[:, perm] if value.ndim == 2 else value for key, value in obs.items()}
    agent.reset(seed=0)
    np.testing.assert_array_equal(perm[agent.select(shuffled)[:-1]], pairs[:-1])  # slot m of shuffled is perm[m]

    rows = np.r_[np.random.default_rng(2).permutation(15), 15]
    reordered = {key: value[rows] if key != "budget_remaining" else value for key, value in obs.items()}
    agent.reset(seed=0)
    np.testing.assert_array_equal(agent.select(reordered), pairs[rows])


def test_the_sampled_policy_is_equivariant_in_distribution(checkpoint: Path) -> None:
    from agents.learned import observation_features

    policy, _ = load_checkpoint(checkpoint)
    obs = observation(8, 10)
    perm = np.random.default_rng(4).permutation(10)
    shuffled = {key: value[:, perm] if value.ndim == 2 else value for key, value in obs.items()}
    with torch.no_grad():
        logits = policy(*observation_features(obs, 2)[1:])
        again = policy(*observation_features(shuffled, 2)[1:])
    pair, pair_again = logits[:, :100].reshape(8, 10, 10), again[:, :100].reshape(8, 10, 10)
    torch.testing.assert_close(pair[:, perm][:, :, perm], pair_again)
    torch.testing.assert_close(logits[:, 100], again[:, 100])


@pytest.mark.parametrize(("b", "k"), [(16, 8), (64, 30), (16, 57), (64, 57)])
def test_one_checkpoint_runs_at_any_k_and_b(checkpoint: Path, b: int, k: int) -> None:
    agent = LearnedSelector(path=str(checkpoint))
    agent.reset(seed=5)
    pairs = agent.select(observation(b, k, seed=k))
    assert pairs.shape == (b, 2) and pairs.dtype == np.int64 and ((pairs >= 0) & (pairs < k)).all()


def test_same_seed_same_choices(checkpoint: Path) -> None:
    agent, other = LearnedSelector(path=str(checkpoint)), LearnedSelector(path=str(checkpoint))
    obs = observation(32, 20)
    agent.reset(seed=9), other.reset(seed=9)
    first = [agent.select(obs) for _ in range(3)]
    assert all(np.array_equal(a, other.select(obs)) for a in first)
    agent.reset(seed=10)
    assert not np.array_equal(agent.select(obs), first[0])


def test_checkpoint_round_trip(checkpoint: Path, tmp_path: Path) -> None:
    policy, meta = load_checkpoint(checkpoint)
    assert meta["policy"] == {"hidden": 16, "pair_rank": 4} and meta["training"] == {"command": "test"}
    copy = save_checkpoint(tmp_path / "copy.safetensors", policy, training={}, metrics={"val": 1.0})
    again, _ = load_checkpoint(copy)
    for (name, tensor), (_, other) in zip(policy.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(tensor, other), name


def _copy(checkpoint: Path, directory: Path) -> Path:
    target = directory / "c.safetensors"
    target.write_bytes(checkpoint.read_bytes())
    config_path(target).write_text(config_path(checkpoint).read_text())
    return target


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        ("no weights", FileNotFoundError, r"no learned-selector checkpoint file at '.*c\.safetensors'"),
        ("no json", FileNotFoundError, r"no learned-selector checkpoint file at '.*c\.json'"),
        ("truncated weights", ValueError, r"'.*c\.safetensors' is not a safetensors file"),
        ("json not json", ValueError, r"'.*c\.json' is not a checkpoint's JSON"),
        ("other format", ValueError, r"expected format 'activeuf-learned-selector/1', got 'other/2'"),
        ("other features", ValueError, r"was trained on the features \['mean'\], this version computes"),
        ("other architecture", ValueError, r"'.*c\.safetensors' does not fit the architecture of '.*c\.json'"),
    ],
)
def test_a_bad_checkpoint_names_the_file_and_the_problem(
    checkpoint: Path, tmp_path: Path, damage: str, error: type[Exception], message: str
) -> None:
    path = _copy(checkpoint, tmp_path)
    meta: dict[str, Any] = json.loads(config_path(path).read_text())
    if damage == "no weights":
        path.unlink()
    elif damage == "no json":
        config_path(path).unlink()
    elif damage == "truncated weights":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "json not json":
        config_path(path).write_text("{")
    else:
        changes = {
            "other format": {"format": "other/2"},
            "other features": {"features": ["mean"]},
            "other architecture": {"policy": {"hidden": 8, "pair_rank": 4}},
        }
        config_path(path).write_text(json.dumps({**meta, **changes[damage]}))
    with pytest.raises(error, match=message):
        LearnedSelector(path=str(path))


def _tiny_args(out: Path, **overrides: Any) -> Any:
    from agents.learned.train import Args

    settings = {
        "out": str(out), "iterations": 2, "imitation_iterations": 1, "episodes": 1, "imitation_episodes": 1,
        "train_tasks": 5, "validation_tasks": 1, "validation_seeds": 1, "validate_every": 1, "workers": 1,
        "hidden": 8, "pair_rank": 2, "progress": False, **overrides,
    }  # fmt: skip
    return Args(**settings)


def _progress(out: Path) -> list[dict[str, str]]:
    import csv

    with open(out / "progress.csv") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def test_training_runs_and_resume_continues_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.learned import train as training

    whole = training.train(_tiny_args(tmp_path / "whole"))
    assert whole["iterations"] == 3 and whole["best"] is not None
    rows = _progress(tmp_path / "whole")
    assert [row["phase"] for row in rows] == ["imitation", "policy gradient", "policy gradient"]
    assert all(row["val_paired_diff"] for row in rows)
    agent = LearnedSelector(path=str(tmp_path / "whole" / "best.safetensors"))
    agent.reset(seed=0)
    assert agent.select(observation(8, 12)).shape == (8, 2)

    save = training._save_state
    calls = []

    def interrupted(path: Path, state: dict[str, Any]) -> None:
        save(path, state)
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_save_state", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.train(_tiny_args(tmp_path / "cut"))
    monkeypatch.setattr(training, "_save_state", save)
    assert len(_progress(tmp_path / "cut")) == 2
    with pytest.raises(ValueError, match="it was trained with other arguments"):
        training.train(_tiny_args(tmp_path / "cut", resume=True, lr=0.5))
    training.train(_tiny_args(tmp_path / "cut", resume=True))
    assert _progress(tmp_path / "cut") == rows
    finished = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["policy"]
    expected = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["policy"]
    assert all(torch.equal(finished[name], expected[name]) for name in expected)


def test_the_training_script_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from agents.learned.train import Args, parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(Args):
        assert "--" + field.name.replace("_", "-") in text and field.metadata["help"] in text
    assert "deltaquantile" in text  # the defaults are shown
    assert parse_args(["--iterations", "3", "--no-progress"]).iterations == 3


def test_the_agent_pickles_with_its_sampling_state(checkpoint: Path) -> None:
    import pickle

    agent = LearnedSelector(path=str(checkpoint))
    agent.reset(seed=4)
    agent.select(observation(8, 6))
    clone = pickle.loads(pickle.dumps(agent))
    obs = observation(8, 6, seed=1)
    np.testing.assert_array_equal(agent.select(obs), clone.select(obs))


def test_forbidding_the_skip_leaves_only_pairs(checkpoint: Path, tmp_path: Path) -> None:
    policy, _ = load_checkpoint(checkpoint)
    with torch.no_grad():
        policy.skip[-1].bias.fill_(50.0)  # a policy that always skips
    skipper = save_checkpoint(tmp_path / "skip.safetensors", policy, training={}, metrics={})
    obs = observation(8, 6)
    always, never = LearnedSelector(path=str(skipper)), LearnedSelector(path=str(skipper), allow_skip=False)
    always.reset(seed=0), never.reset(seed=0)
    assert (always.select(obs) == 0).all()
    pairs = never.select(obs)
    assert (pairs[:-1, 0] != pairs[:-1, 1]).all() and pairs[-1].tolist() == [0, 0]
