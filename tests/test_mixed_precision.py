"""The opt-in bf16 matmul path of the ensemble (``RewardModelConfig(matmul_dtype="bfloat16")``, issue 13): it
trains, stays close to fp32, is deterministic, keeps fp32 master weights and optimizer state, and enters the env
fingerprint only when set (default states keep loading)."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import TINY_ENV_KWARGS, random_pairs

import activeuf_env  # noqa: F401  (registers the ids)
from activeuf_env.core.reward_model import EnsembleRewardModel, ReplayBuffer, RewardModelConfig

BF16 = RewardModelConfig(matmul_dtype="bfloat16")
D = 32


def _preference_buffer(seed: int = 0, n: int = 2000) -> ReplayBuffer:
    """Pairs ordered by a hidden linear utility, so there is something to learn."""
    rng = np.random.default_rng(seed)
    utility = rng.standard_normal(D).astype(np.float32)
    a, b = (rng.standard_normal((n, D)).astype(np.float32) for _ in range(2))
    swap = (a @ utility < b @ utility)[:, None]
    buffer = ReplayBuffer(n, D)
    buffer.add(np.where(swap, b, a), np.where(swap, a, b))
    return buffer


def _trained(config: RewardModelConfig, rounds: int = 4) -> tuple[EnsembleRewardModel, list[float]]:
    model, buffer = EnsembleRewardModel(D, config=config, seed=0), _preference_buffer()
    return model, [model.fit_round(buffer, np.random.default_rng(k)) for k in range(rounds)]


def test_bf16_stays_close_to_fp32() -> None:
    """After 4 rounds of 100 steps from the same initialisation, on the same pairs.

    bf16 keeps 8 significant bits (a relative rounding of at most 2^-9 ≈ 0.2% per operand); the matmuls accumulate
    in fp32 and AdamW normalises each update, so the two trajectories drift apart slowly: measured (torch 2.13, AMD
    EPYC with AVX512-BF16), the round losses agree to 1.7e-4 relative, the means to 0.6% of their spread and the
    stds to 1.7% of their mean. The bounds below leave a factor of about 9 for other CPUs' bf16 kernels.
    """
    (fp32, fp32_losses), (bf16, bf16_losses) = _trained(RewardModelConfig()), _trained(BF16)
    np.testing.assert_allclose(bf16_losses, fp32_losses, rtol=2e-3)
    probe = np.random.default_rng(9).standard_normal((400, D)).astype(np.float32)
    (mean32, lower32, _), (mean16, lower16, _) = fp32.predict(probe), bf16.predict(probe)
    assert np.abs(mean16 - mean32).max() < 0.05 * mean32.std()
    std32, std16 = mean32 - lower32, mean16 - lower16
    assert np.abs(std16 - std32).max() < 0.15 * std32.mean()
    assert fp32_losses[-1] < 0.8 * fp32_losses[0] and bf16_losses[-1] < 0.8 * bf16_losses[0]  # both learn


def test_bf16_is_deterministic_and_keeps_fp32_masters() -> None:
    (first, first_losses), (second, second_losses) = _trained(BF16, rounds=2), _trained(BF16, rounds=2)
    assert first_losses == second_losses
    for key in first.params:
        assert torch.equal(first.params[key], second.params[key]), key
        assert first.params[key].dtype == torch.float32
    assert first.optimizer.exp_avg.dtype == first.optimizer.exp_avg_sq.dtype == torch.float32
    assert not torch.equal(first.params["w1"], _trained(RewardModelConfig(), rounds=2)[0].params["w1"])


def test_bf16_state_dict_and_pickle_continue_alike() -> None:
    model, _ = _trained(BF16, rounds=1)
    restored = EnsembleRewardModel(D, config=BF16, seed=1)
    restored.load_state_dict(model.state_dict())
    copied = pickle.loads(pickle.dumps(model))
    buffer = _preference_buffer(1)
    losses = [m.fit_round(buffer, np.random.default_rng(5)) for m in (model, restored, copied)]
    assert losses[0] == losses[1] == losses[2]
    for key in model.params:
        assert torch.equal(model.params[key], restored.params[key]), key
        assert torch.equal(model.params[key], copied.params[key]), key


def test_train_step_and_predict_take_the_bf16_path() -> None:
    fp32, bf16 = EnsembleRewardModel(D, seed=0), EnsembleRewardModel(D, config=BF16, seed=0)
    x = np.random.default_rng(0).standard_normal((6, D)).astype(np.float32)
    assert not np.array_equal(fp32.predict(x)[0], bf16.predict(x)[0])  # same weights, bf16 matmuls
    np.testing.assert_allclose(bf16.predict(x)[0], fp32.predict(x)[0], rtol=0.05, atol=0.02)
    loss = bf16.train_step(x, -x)
    assert isinstance(loss, float) and np.isfinite(loss)


def test_an_invalid_matmul_dtype_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"^matmul_dtype must be 'float32' or 'bfloat16', got 'bf16'$"):
        RewardModelConfig(matmul_dtype="bf16")


def _env(model: RewardModelConfig) -> gym.Env:
    return gym.make("ActiveUF/Synthetic-v0", **{**TINY_ENV_KWARGS, "reward_model": model})


SMALL = RewardModelConfig(n_heads=4, hidden_dim=16, max_steps=10)
FIELDS_BEFORE_MATMUL_DTYPE = {f.name for f in dataclasses.fields(RewardModelConfig)} - {"matmul_dtype"}


def test_the_fingerprint_leaves_out_matmul_dtype_at_its_default(tmp_path: Path) -> None:
    """A default config's fingerprint has exactly the keys it had before the field existed, so states saved by
    earlier versions (at the default, necessarily) still load; a bf16 state is refused by an fp32 env."""
    env = _env(SMALL)
    obs, _ = env.reset(seed=0)
    env.step(random_pairs(obs, np.random.default_rng(0)))
    fingerprint = env.unwrapped.get_state()["fingerprint"]
    model_keys = {key.split(".", 1)[1] for key in fingerprint if key.startswith("reward_model.")}
    assert model_keys == FIELDS_BEFORE_MATMUL_DTYPE
    path = env.unwrapped.save(tmp_path / "fp32.npz")
    _env(SMALL).reset(options={"state": path})  # the default config resumes its own state

    bf16_env = _env(dataclasses.replace(SMALL, matmul_dtype="bfloat16"))
    obs, _ = bf16_env.reset(seed=0)
    bf16_env.step(random_pairs(obs, np.random.default_rng(0)))
    assert bf16_env.unwrapped.get_state()["fingerprint"]["reward_model.matmul_dtype"] == "bfloat16"
    bf16_path = bf16_env.unwrapped.save(tmp_path / "bf16.npz")
    with pytest.raises(ValueError, match=r"reward_model\.matmul_dtype='\(absent\)' \(this env\), got 'bfloat16'"):
        _env(SMALL).reset(options={"state": bf16_path})
    _env(dataclasses.replace(SMALL, matmul_dtype="bfloat16")).reset(options={"state": bf16_path})
