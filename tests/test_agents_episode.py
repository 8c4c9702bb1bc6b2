"""Every agent and baseline runs whole ``ActiveUF/Synthetic-v0`` episodes, built from its own ``env_kwargs()``.

Three levels: a small instance of the same id (with a partial last batch), the default instance with a cheap
ensemble reward model (every round of the default pool, batch and K = 30, in seconds), and, marked ``slow``, the
unmodified env for every agent (exactly what users benchmark). Each checks
that every action is accepted and that the labels and judge calls the env counts match what the agent asked for.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
from helpers import RecordingAgent

import activeuf_env  # noqa: F401 - registers the ActiveUF ids
import agents
from activeuf_env.runner.episode import play_episode

ENV_ID = "ActiveUF/Synthetic-v0"

NAMES = agents.registered_names()


def expected_judge_calls(name: str, obs: dict[str, np.ndarray], pairs: np.ndarray, labelled: np.ndarray) -> int:
    """Judge calls the env should charge for this round's labelled prompts, from the agent's declaration."""
    per_pair = agents.make(name).env_kwargs()
    if per_pair.get("labeler") == "first":
        return 0
    calls = per_pair.get("judge_calls_per_pair", 2)
    if calls == "all":
        return int(obs["valid"][labelled].sum())
    return int(calls) * int(labelled.sum())


def run_episode(name: str, **env_kwargs: Any) -> dict[str, Any]:
    agent = agents.make(name)
    env = gymnasium.make(ENV_ID, **env_kwargs, **agent.env_kwargs())
    try:
        recorder = RecordingAgent(agent)
        steps = list(play_episode(env, recorder, seed=0))
        info, rounds = steps[-1].info, len(steps) - 1
        assert steps[-1].terminated and not steps[-1].truncated
        labels = judge_calls = 0
        saw_padded_prompt = False
        for obs, pairs in recorder.calls:
            live = obs["prompt_valid"] == 1
            saw_padded_prompt |= bool((~live).any())
            assert np.all(pairs[~live] == 0)
            labelled = live & (pairs[:, 0] != pairs[:, 1])
            labels += int(labelled.sum())
            judge_calls += expected_judge_calls(name, obs, pairs, labelled)
        assert info["labels"] == labels
        assert info["judge_calls"] == judge_calls
        return {"info": info, "rounds": rounds, "saw_padded_prompt": saw_padded_prompt}
    finally:
        env.close()


# A cheap ensemble reward model: the agents see the same kind of outputs, in a fraction of the time.
CHEAP_ENN = {"n_heads": 2, "hidden_dim": 8, "max_steps": 1}


@pytest.mark.parametrize("name", NAMES)
def test_small_episode_with_a_partial_last_batch(name):
    from activeuf_env import RewardModelConfig, SyntheticPoolConfig

    # 200 prompts, 40 held out: 160 train prompts in rounds of 24, the last one holding 16.
    result = run_episode(
        name,
        instances=SyntheticPoolConfig(n_prompts=200, feature_dim=16),
        batch_size=24,
        eval_size=40,
        reward_model=RewardModelConfig(**CHEAP_ENN),
    )
    assert result["rounds"] == 7
    assert result["saw_padded_prompt"]
    skipped = result["info"]["skipped"]
    if name != "learned":  # the learned selector may skip prompts by choice
        assert skipped == 0  # every synthetic prompt has a response of every model, delta_model's included


@pytest.mark.parametrize("name", NAMES)
def test_full_episode_of_the_default_instance(name):
    # Every round of the default pool (batch 64, K = 30), with the cheap ensemble.
    from activeuf_env import RewardModelConfig

    result = run_episode(name, reward_model=RewardModelConfig(**CHEAP_ENN))
    assert result["info"]["labels"] > 0
    assert result["info"]["skipped"] == 0 or name == "learned"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_full_episode_of_the_unmodified_env(name):
    # Exactly what users benchmark: gymnasium.make(ENV_ID, **agent.env_kwargs()), nothing else.
    result = run_episode(name)
    assert result["info"]["labels"] > 0
