"""The ensemble reward model: stacked heads, the three-term loss, honoured init gain, and that it learns."""

from __future__ import annotations

import dataclasses
import pickle
import re
from typing import Any

import numpy as np
import pytest
import torch
from helpers import load_benchmark_module

from activeuf_env import (
    EnsembleRewardModel,
    ReplayBuffer,
    ResponsePool,
    RewardModelConfig,
    SyntheticPoolConfig,
    make_synthetic_pool,
)
from activeuf_env.core.reward_model import anchor_weight_at


def _per_head_forward(model: EnsembleRewardModel, x: np.ndarray) -> np.ndarray:
    """Independent reference: each head as its own MLP, one at a time."""
    p = {k: v.detach().numpy().astype(np.float64) for k, v in model.params.items()}
    outputs = []
    for h in range(model.n_heads):
        hidden = np.maximum(x @ p["w1"][:, h, :] + p["b1"][h], 0.0)
        hidden = np.maximum(hidden @ p["w2"][h] + p["b2"][h], 0.0)
        outputs.append(hidden @ p["w3"][h])
    return np.stack(outputs)


def test_batched_heads_match_a_per_head_reference() -> None:
    model = EnsembleRewardModel(feature_dim=6, n_heads=5, hidden_dim=7, seed=3)
    x = np.random.default_rng(0).normal(size=(4, 3, 6)).astype(np.float32)
    rewards = _per_head_forward(model, x.reshape(-1, 6))
    mean, lower, upper = model.predict(x)
    np.testing.assert_allclose(mean.reshape(-1), rewards.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose((upper - mean).reshape(-1), rewards.std(axis=0, ddof=1), rtol=1e-3, atol=1e-5)
    assert mean.shape == lower.shape == upper.shape == (4, 3)


def test_beta_scales_the_bounds() -> None:
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    mean, lower, _ = EnsembleRewardModel(4, n_heads=3, hidden_dim=5, seed=0).predict(x)
    wide = EnsembleRewardModel(4, n_heads=3, hidden_dim=5, seed=0, config=RewardModelConfig(beta=2.5))
    _mean2, lower2, _ = wide.predict(x)
    np.testing.assert_allclose(mean - lower2, 2.5 * (mean - lower), rtol=1e-5)


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_xavier_gain_is_honoured(gain: float) -> None:
    d, h = 300, 128
    model = EnsembleRewardModel(d, n_heads=4, hidden_dim=h, seed=0, config=RewardModelConfig(init_gain=gain))
    bound = gain * np.sqrt(6.0 / (d + h))
    w1 = model.params["w1"].detach().numpy()
    assert abs(np.abs(w1).max() - bound) < 0.01 * bound
    assert abs(w1.std() - bound / np.sqrt(3.0)) < 0.02 * bound
    assert np.all(model.params["b1"].detach().numpy() == 0.0)


def test_same_seed_same_model_and_training() -> None:
    rng = np.random.default_rng(0)
    c, r = rng.normal(size=(2, 32, 8)).astype(np.float32)
    losses = []
    for _ in range(2):
        model = EnsembleRewardModel(8, n_heads=4, hidden_dim=16, seed=11)
        losses.append([model.train_step(c, r) for _ in range(3)])
    assert losses[0] == losses[1]
    other = EnsembleRewardModel(8, n_heads=4, hidden_dim=16, seed=12)
    assert other.train_step(c, r) != losses[0][0]


def test_loss_has_the_three_terms() -> None:
    model = EnsembleRewardModel(3, n_heads=2, hidden_dim=4, seed=0, config=RewardModelConfig(center_weight=0.01))
    c = np.ones((2, 3), np.float32)
    r = np.zeros((2, 3), np.float32)
    with torch.no_grad():
        for p in model.params.values():
            p.add_(0.1)  # move away from the anchors
    f = _per_head_forward(model, np.concatenate([c, r]).astype(np.float64))
    preference = np.log1p(np.exp(-(f[:, :2] - f[:, 2:]))).mean()
    centring = 0.01 * ((f[:, :2] + f[:, 2:]) ** 2).mean()
    anchor = np.mean(np.concatenate([np.full(p.numel(), 0.01) for p in model.params.values()]))
    model.anchor_weight = 3.0
    assert model.train_step(c, r, lr=0.0) == pytest.approx(preference + centring + 3.0 * anchor, rel=1e-4)


def test_anchor_schedule_decays_per_round_by_default() -> None:
    assert anchor_weight_at(2.0, 0.5, decay_steps=10, n_done=3, n_total=10) == pytest.approx(2.0 * 0.5**3)
    assert anchor_weight_at(1.0, 0.9, decay_steps=4308, n_done=0, n_total=100) == 1.0


def test_replay_buffer_is_a_ring_and_samples_without_replacement() -> None:
    buffer = ReplayBuffer(capacity=5, feature_dim=1)
    for start in range(0, 8, 2):
        values = np.arange(start, start + 2, dtype=np.float32)[:, None]
        buffer.add(values, -values)
    assert len(buffer) == 5
    assert sorted(buffer.chosen[:, 0].tolist()) == [3, 4, 5, 6, 7]
    chosen, rejected = buffer.sample(10, np.random.default_rng(0))
    assert sorted(chosen[:, 0].tolist()) == [3, 4, 5, 6, 7]
    np.testing.assert_array_equal(rejected, -chosen)
    with pytest.raises(ValueError, match=r"shape \[n, 1\]"):
        buffer.add(np.zeros((2, 3)), np.zeros((2, 3)))


def test_predict_rejects_wrong_feature_dim() -> None:
    with pytest.raises(ValueError, match=r"expected features of shape \[\.\.\., 4\], got \(2, 5\)"):
        EnsembleRewardModel(4, n_heads=2, hidden_dim=3, seed=0).predict(np.zeros((2, 5)))


def _train_on_random_pairs(
    train: ResponsePool, models: int, seed: int, rounds: int = 10
) -> tuple[EnsembleRewardModel, np.random.Generator]:
    """Ten rounds of 64 random judge-labelled pairs among the first ``models`` models, as the env would run them."""
    rng = np.random.default_rng(seed)
    model = EnsembleRewardModel(train.feature_dim, seed=seed)
    buffer = ReplayBuffer(64 * 100, train.feature_dim)
    for _ in range(rounds):
        p = rng.integers(0, train.n_prompts, 64)
        i = rng.integers(0, models, 64)
        j = (i + rng.integers(1, models, 64)) % models
        i_wins = train.judge_scores[p, i] >= train.judge_scores[p, j]
        buffer.add(train.features[p, np.where(i_wins, i, j)], train.features[p, np.where(i_wins, j, i)])
        model.fit_round(buffer, rng)
    return model, rng


@pytest.fixture(scope="module")
def split_pool() -> tuple[ResponsePool, ResponsePool]:
    # Families must look distinct for the held-out models (families 3-5) to be out of distribution; the default
    # style weight (0.3) is calibrated for the downstream ranking, so this pool keeps the original 1.0.
    pool = make_synthetic_pool(SyntheticPoolConfig(n_prompts=900, feature_dim=32, seed=5, style_weight=1.0))
    return pool.split(300, np.random.default_rng(0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_ensemble_learns_judge_preferences(split_pool, seed: int) -> None:
    train, held_out = split_pool
    model, rng = _train_on_random_pairs(train, models=30, seed=seed)
    p, i = rng.integers(0, held_out.n_prompts, 3000), rng.integers(0, 30, 3000)
    j = (i + rng.integers(1, 30, 3000)) % 30
    i_above = model.predict(held_out.features[p, i])[0] >= model.predict(held_out.features[p, j])[0]
    judge_prefers_i = held_out.judge_scores[p, i] >= held_out.judge_scores[p, j]
    accuracy = np.mean(i_above == judge_prefers_i)
    assert accuracy > 0.72, accuracy  # chance is 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_ensemble_grows_confident_where_it_trained(split_pool, seed: int) -> None:
    """Trained on pairs among models 0-14 only: on held-out responses of those models its std shrinks relative to
    the untrained models' responses, and becomes small relative to the spread of its predictions."""
    train, held_out = split_pool
    probe = np.random.default_rng(100 + seed)
    p, i = probe.integers(0, held_out.n_prompts, 3000), probe.integers(0, 15, 3000)

    def std_and_spread(model: EnsembleRewardModel, models: np.ndarray) -> tuple[float, float]:
        mean, lower, _ = model.predict(held_out.features[p, models])
        return float((mean - lower).mean()), float(mean.std())

    untrained = EnsembleRewardModel(train.feature_dim, seed=seed)
    (seen_before, spread_before), (unseen_before, _) = std_and_spread(untrained, i), std_and_spread(untrained, i + 15)
    model, _ = _train_on_random_pairs(train, models=15, seed=seed)
    (seen_after, spread_after), (unseen_after, _) = std_and_spread(model, i), std_and_spread(model, i + 15)

    assert seen_after / unseen_after < 0.92 * seen_before / unseen_before
    assert seen_after / spread_after < 0.25 * seen_before / spread_before


RM_BAD_VALUES = {
    "n_heads": 1,
    "hidden_dim": 0,
    "init_gain": 0.0,
    "beta": -1.0,
    "lr": float("nan"),
    "weight_decay": "0.01",
    "train_batch": 64.0,
    "max_steps": True,
    "grad_clip": -1.0,
    "anchor_weight": float("inf"),
    "anchor_decay": 1.5,
    "anchor_decay_steps": 0,
    "center_weight": None,
    "replay_factor": 0,
    "matmul_dtype": "float16",
}


def test_every_reward_model_field_has_a_bad_value_case() -> None:
    assert set(RM_BAD_VALUES) == {f.name for f in dataclasses.fields(RewardModelConfig)}


@pytest.mark.parametrize(("name", "value"), RM_BAD_VALUES.items())
def test_reward_model_config_names_the_field_and_value(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must .*got {re.escape(repr(value))}"):
        RewardModelConfig(**{name: value})


def _legacy_ensemble_class() -> type:
    """The frozen pre-rewrite implementation the benchmarks compare with (``benchmarks/legacy_ensemble.py``)."""
    return load_benchmark_module("legacy_ensemble").LegacyEnsembleRewardModel


def _train_both(first: Any, second: Any, dim: int, rounds: int) -> tuple[list[float], list[float]]:
    """The same rounds (``fit_round`` with a decaying anchor, then one ``train_step``) on two models."""
    losses: tuple[list[float], list[float]] = ([], [])
    for model, out in zip((first, second), losses, strict=True):
        data = np.random.default_rng(1)
        buffer = ReplayBuffer(64 * 10, dim)
        for r in range(rounds):
            c, rej = data.normal(size=(2, 64, dim)).astype(np.float32)
            buffer.add(c, rej)
            model.anchor_weight = 0.9**r
            out.append(model.fit_round(buffer, np.random.default_rng(r)))
            out.append(model.train_step(c[:10], rej[:10], lr=1e-3))
    return losses


@pytest.mark.parametrize(("dim", "heads", "hidden", "clip"), [(24, 4, 32, 1.0), (40, 3, 16, 0.05)])
def test_flat_buffers_give_the_per_tensor_floats(dim: int, heads: int, hidden: int, clip: float) -> None:
    """Bit for bit (``H·h`` a multiple of 16), with and without clipping: weights, optimizer state, losses, bounds."""
    config = RewardModelConfig(n_heads=heads, hidden_dim=hidden, grad_clip=clip)
    legacy = _legacy_ensemble_class()(dim, config=config, seed=3)
    model = EnsembleRewardModel(dim, config=config, seed=3)
    old_losses, new_losses = _train_both(legacy, model, dim, rounds=6)
    assert old_losses == new_losses
    for key in model.params:
        assert torch.equal(legacy.params[key].detach(), model.params[key]), key
    old_state, new_state = legacy.optimizer.state_dict()["state"], model.optimizer.state_dict()["state"]
    for index, values in old_state.items():
        for key, tensor in values.items():
            assert torch.equal(tensor, new_state[index][key]), (index, key)
    x = np.random.default_rng(2).normal(size=(7, 5, dim)).astype(np.float32)
    for old, new in zip(legacy.predict(x), model.predict(x), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_state_of_the_per_tensor_implementation_loads_and_continues_alike() -> None:
    """Saved env states hold the per-tensor layout (torch.optim.AdamW's state dict); they still load."""
    legacy = _legacy_ensemble_class()(16, n_heads=4, hidden_dim=8, seed=0)
    _train_both(legacy, legacy, 16, rounds=2)
    model = EnsembleRewardModel(16, n_heads=4, hidden_dim=8, seed=1)
    model.load_state_dict(legacy.state_dict())
    assert model.optimizer.lr == legacy.optimizer.param_groups[0]["lr"]
    c, r = np.random.default_rng(4).normal(size=(2, 20, 16)).astype(np.float32)
    assert [legacy.train_step(c, r) for _ in range(3)] == [model.train_step(c, r) for _ in range(3)]
    for key in model.params:
        assert torch.equal(legacy.params[key].detach(), model.params[key]), key


def test_a_pickled_model_keeps_its_views_on_the_flat_buffers() -> None:
    model = EnsembleRewardModel(8, n_heads=3, hidden_dim=16, seed=0)
    c, r = np.random.default_rng(0).normal(size=(2, 12, 8)).astype(np.float32)
    model.train_step(c, r)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.params["w2"].data_ptr() == clone._flat.data_ptr() + 4 * (8 * 3 * 16 + 3 * 16)
    assert [clone.train_step(c, r) for _ in range(3)] == [model.train_step(c, r) for _ in range(3)]
    assert all(torch.equal(clone.params[k], model.params[k]) for k in model.params)
