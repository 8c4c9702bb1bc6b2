"""The task distribution: fixed disjoint splits, deterministic draws, shuffled slots and fresh model ids, and the
``ActiveUF/SyntheticTasks-v0`` env over a split."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import activeuf_env  # noqa: F401 - registers the ids
from activeuf_env.core.synthetic import make_synthetic_pool
from activeuf_env.envs.task_env import SyntheticTasksEnv
from activeuf_env.envs.tasks import (
    MAX_RESPONSES,
    TASK_SPLITS,
    TaskDistribution,
    draw_task,
    make_task_pool,
    split_tasks,
)


def test_splits_are_disjoint_and_fixed() -> None:
    sets = {name: set(seeds) for name, seeds in TASK_SPLITS.items()}
    assert not sets["train"] & sets["test"] and not sets["train"] & sets["validation"]
    assert not sets["test"] & sets["validation"]
    assert split_tasks("test", 3) == [0, 1, 2] and len(split_tasks("validation")) == 100
    with pytest.raises(ValueError, match="split must be"):
        split_tasks("dev")
    with pytest.raises(ValueError, match="count must be between 1 and 100 for split 'test', got 101"):
        split_tasks("test", 101)


def test_tasks_span_the_ranges_and_are_deterministic() -> None:
    tasks = [draw_task(seed) for seed in split_tasks("train", 200)]
    ks = [task.n_responses for task in tasks]
    assert min(ks) >= 8 and max(ks) <= MAX_RESPONSES and len(set(ks)) >= 10
    assert {task.judge for task in tasks} == {"score", "bradley_terry"}
    assert {task.pool.feature_dim for task in tasks} == {16, 32, 64}
    assert any("tie_abstain" in task.judge_noise for task in tasks)
    fractions = [task.budget / (task.pool.n_prompts - task.eval_prompts) for task in tasks]
    assert min(fractions) < 0.35 and max(fractions) > 0.95
    assert draw_task(1005) == draw_task(1005) and draw_task(1005) != draw_task(1006)
    with pytest.raises(ValueError, match="at most 40 responses per prompt"):
        TaskDistribution(n_families=(2, 9))


def test_task_pools_shuffle_slots_and_draw_model_ids_afresh() -> None:
    task = draw_task(1003)
    base = make_synthetic_pool(task.pool)
    pool = make_task_pool(task)
    k = task.n_responses
    assert pool.n_responses == MAX_RESPONSES and pool.valid[:, :k].all() and not pool.valid[:, k:].any()
    # The same responses per prompt, in another order: each slot's model varies across prompts.
    np.testing.assert_array_equal(np.sort(pool.judge_scores[:, :k], axis=1), np.sort(base.judge_scores, axis=1))
    assert all(len(set(pool.model_ids[:, slot])) > 1 for slot in range(k))
    # Model names follow their responses; ids are a fresh permutation.
    names = np.array(pool.model_names)[pool.model_ids[:, :k]]
    base_names = np.array(base.model_names)[base.model_ids]
    for prompt in range(5):
        order = np.argsort(pool.judge_scores[prompt, :k], kind="stable")
        base_order = np.argsort(base.judge_scores[prompt], kind="stable")
        assert list(names[prompt, order]) == list(base_names[prompt, base_order])
    assert pool.model_names != base.model_names
    np.testing.assert_array_equal(make_task_pool(task).features, pool.features)  # deterministic


def test_the_env_plays_task_seed_mod_n_and_names_it() -> None:
    env = gym.make("ActiveUF/SyntheticTasks-v0", split="test", tasks=3)
    assert env.observation_space["mean"].shape == (32, MAX_RESPONSES)
    seen = []
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        assert obs in env.observation_space
        seen.append(info["task"])
    assert seen == [0, 1, 2, 0, 1, 2]
    _, info = env.reset(options={"task": 2})
    assert info["task"] == 2
    env.close()


def test_a_pair_on_a_padded_slot_skips_its_prompt() -> None:
    env = SyntheticTasksEnv(split="test", tasks=[0])
    obs, _ = env.reset(seed=0)
    k = int(obs["valid"][0].sum())
    assert k < MAX_RESPONSES
    action = np.tile([0, 1], (32, 1))
    action[0] = [0, MAX_RESPONSES - 1]
    _, _, _, _, info = env.step(action)
    assert info["skipped"] == 1 and info["labels"] == 31 and info["task"] == 0
    with pytest.raises(ValueError, match="expected an action of shape"):
        env.step(np.zeros((3, 2), dtype=np.int64))
    env.close()


def test_the_env_refuses_per_task_settings_and_foreign_task_seeds() -> None:
    with pytest.raises(ValueError, match=r"\['batch_size'\] are set per task"):
        SyntheticTasksEnv(split="test", tasks=2, batch_size=16)
    with pytest.raises(ValueError, match=r"tasks must be seeds of split 'test' .*got \[1000\]"):
        SyntheticTasksEnv(split="test", tasks=[0, 1000])
    env = SyntheticTasksEnv(split="test", tasks=2)
    with pytest.raises(ValueError, match="options\\['task'\\] must be one of this env's 2 task seeds, got 5"):
        env.reset(options={"task": 5})
    env.close()
