"""The ensemble and the evaluator on a CUDA GPU (``device="cuda"``): the ensemble trains there and agrees with the
CPU to float32 rounding, the evaluator's DPO proxy trains there and agrees with the CPU to float64 rounding, and an
env episode played on the GPU saves a state that resumes on the CPU. Skipped where no GPU is present (CI has none;
nothing else in the suite needs one)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import activeuf_env  # noqa: F401
import agents
from activeuf_env import EnsembleRewardModel, ReplayBuffer, SyntheticPoolConfig
from activeuf_env.core import proxy_training
from activeuf_env.core.downstream import DownstreamEvaluator
from activeuf_env.core.synthetic import make_synthetic_pool

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine"
)


def _rounds(model: EnsembleRewardModel, dim: int, rounds: int = 4) -> list[float]:
    data = np.random.default_rng(0)
    buffer = ReplayBuffer(64 * 10, dim)
    losses = []
    for r in range(rounds):
        buffer.add(*data.normal(size=(2, 64, dim)).astype(np.float32))
        model.anchor_weight = 0.9**r
        losses.append(model.fit_round(buffer, np.random.default_rng(r)))
    return losses


def test_the_ensemble_trains_on_the_gpu_and_agrees_with_the_cpu() -> None:
    cpu = EnsembleRewardModel(32, n_heads=4, hidden_dim=32, seed=0)
    gpu = EnsembleRewardModel(32, n_heads=4, hidden_dim=32, seed=0, device="cuda")
    buffers = [gpu._flat, gpu._anchor_flat, gpu._grad_flat, gpu.optimizer.exp_avg, gpu.optimizer.step_count]
    assert all(t.is_cuda for t in buffers) and all(p.is_cuda for p in gpu.params.values())
    np.testing.assert_allclose(_rounds(gpu, 32), _rounds(cpu, 32), rtol=1e-4)
    x = np.random.default_rng(1).normal(size=(6, 5, 32)).astype(np.float32)
    for on_gpu, on_cpu in zip(gpu.predict(x), cpu.predict(x), strict=True):
        assert isinstance(on_gpu, np.ndarray)
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-4)


def test_the_evaluator_trains_its_dpo_proxy_on_the_gpu_and_agrees_with_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    train, held_out = make_synthetic_pool(SyntheticPoolConfig(n_prompts=300, feature_dim=16)).split(
        100, np.random.default_rng(0)
    )
    cpu = DownstreamEvaluator(train, held_out, seed=0)
    devices = []
    steps = proxy_training._full_batch_steps

    def recording(delta: object, *args: object) -> object:
        devices.append(delta.device.type if isinstance(delta, torch.Tensor) else "numpy")
        return steps(delta, *args)

    monkeypatch.setattr(proxy_training, "_full_batch_steps", recording)
    gpu = DownstreamEvaluator(train, held_out, seed=0, device="cuda")
    pairs = np.random.default_rng(1).permutation(cpu.oracle_pairs())[:150]
    on_gpu, on_cpu = gpu.evaluate(pairs), cpu.evaluate(pairs)
    assert devices and set(devices) == {"cuda"}
    for key, value in on_cpu.to_dict().items():
        assert getattr(on_gpu, key) == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_an_episode_on_the_gpu_resumes_on_the_cpu(tmp_path: Path) -> None:
    kwargs = {"instances": SyntheticPoolConfig(n_prompts=200, feature_dim=16), "batch_size": 32, "eval_size": 40}
    env = gym.make("ActiveUF/Synthetic-v0", device="cuda", **kwargs)
    agent = agents.make("random")
    obs, info = env.reset(seed=0)
    agent.reset(seed=0, info=info)
    for _ in range(3):
        obs, _, _, _, info = env.step(agent.select(obs))
    assert env.unwrapped.episode.model._flat.is_cuda
    assert env.unwrapped._instance(env.unwrapped.episode.instance_id).evaluator.device.type == "cuda"
    assert np.isfinite(info["score"]) and np.isfinite(info["enn_loss"])
    resumed = gym.make("ActiveUF/Synthetic-v0", device="cpu", **kwargs)
    obs, _ = resumed.reset(options={"state": env.unwrapped.save(tmp_path / "state.npz")})
    assert not resumed.unwrapped.episode.model._flat.is_cuda
    _, _, _, _, info = resumed.step(agent.select(obs))
    assert np.isfinite(info["score"])
