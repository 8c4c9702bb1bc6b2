"""Helpers shared by the test modules: small instances, a seeded random test policy, an episode recorder and a
small real-format dataset. Test modules import them from here (``from helpers import ...``); ``conftest.py`` holds
only fixtures."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import signal
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from activeuf_env import SyntheticPoolConfig
from activeuf_env.data.writers import write_auf_dataset
from activeuf_env.runner.episode import play_episode
from baselines.random_pair import RandomPair

SMALL_POOL = SyntheticPoolConfig(n_prompts=200, feature_dim=16)
TINY_ENV_KWARGS: dict[str, Any] = {
    "instances": SyntheticPoolConfig(n_prompts=100, feature_dim=8),
    "batch_size": 20,
    "eval_size": 40,
}
"""Overrides of ``ActiveUF/Synthetic-v0`` for benchmark tests: 60 train prompts in 3 rounds of 20, D = 8."""


def random_pairs(obs: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Two distinct valid responses per prompt, uniformly (a seeded test policy with no dependency on agents/)."""
    scores = np.where(obs["valid"] == 1, rng.random(obs["valid"].shape), -1.0)
    top2 = np.argsort(-scores, axis=1)[:, :2]
    return np.where(obs["prompt_valid"][:, None] == 1, top2, 0).astype(np.int64)


def run_episode(env: Any, seed: int, policy_seed: int = 0) -> list[tuple[Any, ...]]:
    """Run one episode with :func:`random_pairs`; return every (obs, reward, terminated, truncated, info)."""
    rng = np.random.default_rng(policy_seed)
    return [step.as_tuple() for step in play_episode(env, lambda obs: random_pairs(obs, rng), seed)]


MODELS = ["alpha-7b", "beta-13b", "gamma-2b", "delta-70b", "epsilon-1b", "zeta-8b"]
"""Six models; ``write_replay_dataset`` gives prompt ``p`` the first 5 or all 6 of them."""


def replay_records(n_prompts: int = 40, padded: bool = False) -> list[dict[str, Any]]:
    """AUF ``PromptWithCompletions`` rows with texts of varied length (some long, multi-line, one empty)."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(n_prompts):
        n = 5 if padded and p % 4 == 0 else len(MODELS)
        completions = []
        for m in range(n):
            text = f"Answer of {MODELS[m]} to question {p}:\n\n" + "a detailed explanation " * (3 * m)
            completions.append(
                {
                    "model": MODELS[m],
                    "response_text": "" if (p, m) == (1, 2) else text,
                    "overall_score": f"{rng.uniform(1, 5):.2f}",
                }
            )
        prompt = f"Question {p}: how does one " + "really " * (p % 30) + "cook rice?\nPlease explain."
        rows.append({"prompt_id": f"q{p:03d}", "source": "test", "prompt": prompt, "completions": completions})
    return rows


def write_replay_dataset(directory: Path, n_prompts: int = 40, dim: int = 8, padded: bool = False) -> dict[str, Any]:
    """Write :func:`replay_records` and aligned precomputed embeddings; return the ``gym.make`` kwargs reading them.

    With ``padded`` every fourth prompt lacks the last model's response. The kwargs hold out 8 prompts and offer
    the rest in rounds of 8 (32 train prompts in 4 rounds at the default 40). ``check_env`` steps with unmasked
    samples of the action space, which the env rejects when one picks a padded response, so the env checker uses
    the unpadded variant.
    """
    rows = replay_records(n_prompts, padded)
    directory.mkdir(parents=True, exist_ok=True)
    data_path = write_auf_dataset(rows, directory / "prefs.jsonl")
    embeddings = directory / "embeddings"
    embeddings.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    n_responses = sum(len(r["completions"]) for r in rows)
    np.save(embeddings / "prompt_embeddings.npy", rng.normal(size=(n_prompts, dim)).astype(np.float16))
    np.save(embeddings / "response_embeddings.npy", rng.normal(size=(n_responses, dim)).astype(np.float16))
    return {"data_path": str(data_path), "features_path": str(embeddings), "batch_size": 8, "eval_size": 8}


class RecordingAgent:
    """Wraps an agent for :func:`~activeuf_env.runner.episode.play_episode`, keeping every (observation, pairs)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.calls: list[tuple[dict[str, np.ndarray], np.ndarray]] = []

    def reset(self, seed: int | None = None, info: dict[str, Any] | None = None) -> None:
        self.agent.reset(seed=seed, info=info)

    def select(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        pairs = self.agent.select(obs)
        self.calls.append((obs, pairs))
        return pairs

    def asked_labels(self) -> list[int]:
        """Per call, the live prompts for which the agent asked a label (a pair with ``i != j``)."""
        return [int(((obs["prompt_valid"] == 1) & (pairs[:, 0] != pairs[:, 1])).sum()) for obs, pairs in self.calls]


AGENT_TEST_KWARGS: dict[str, dict[str, Any]] = {"delta_model": {"chosen_model": 8, "rejected_model": 7}}
"""Hyperparameters for agents fed hand-made observations: ``delta_model`` by model id, as they carry no model names."""


def make_test_agent(name: str) -> Any:
    """``agents.make(name)`` with :data:`AGENT_TEST_KWARGS`."""
    import agents

    return agents.make(name, **AGENT_TEST_KWARGS.get(name, {}))


@dataclasses.dataclass
class DiesOnceAgent(RandomPair):
    """Random pairs, but the first process to select while ``flag`` is absent creates it and kills itself (SIGKILL),
    as a worker killed for memory would die; every later episode (and a rerun of that one) plays normally."""

    name: ClassVar[str] = "dies-once"
    flag: str = ""

    def _select_pairs(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.flag and not os.path.exists(self.flag):
            Path(self.flag).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._select_pairs(batch)


def load_benchmark_module(name: str) -> ModuleType:
    """A module of ``benchmarks/`` (not a package: its frozen ``legacy_*`` copies are loaded by path)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
