"""The ActiveUFEnv contract of docs/design.md §7: budget, labelers, judge-call accounting, partial batches, optional
keys, rendering, pickling, resuming and multi-instance envs."""

from __future__ import annotations

import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from helpers import SMALL_POOL, random_pairs, run_episode

from activeuf_env import ActiveUFEnv, SyntheticPoolConfig
from activeuf_env.envs.episode import Counts, Episode


def test_budget_ends_the_episode_and_drops_extra_pairs(make_small_env) -> None:
    env = make_small_env(budget=40)
    trajectory = run_episode(env, seed=0)
    *_, terminated, _, info = trajectory[-1]
    assert terminated and len(trajectory) == 4  # 16 + 16 + 8 of the third round
    assert info["labels"] == 40 and info["skipped"] == 8
    assert trajectory[-1][0]["budget_remaining"][0] == 0.0
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros((16, 2), dtype=np.int64))


def test_judge_calls_and_labels(make_small_env) -> None:
    obs, _ = (env := make_small_env()).reset(seed=0)
    pairs = random_pairs(obs, np.random.default_rng(0))
    pairs[:4, 1] = pairs[:4, 0]  # skip four prompts
    *_, info = env.step(pairs)
    assert (info["labels"], info["judge_calls"], info["skipped"], info["round_labels"]) == (12, 24, 4, 12)

    for kwargs, calls in [
        ({"judge_calls_per_pair": 4}, 64),
        ({"judge_calls_per_pair": "all"}, 16 * 30),
        ({"labeler": "first"}, 0),
    ]:
        env = make_small_env(**kwargs)
        obs, _ = env.reset(seed=0)
        *_, info = env.step(random_pairs(obs, np.random.default_rng(0)))
        assert (info["labels"], info["judge_calls"]) == (16, calls)


def test_labeler_first_takes_the_first_index_as_chosen(make_small_env) -> None:
    env = make_small_env(labeler="first")
    obs, _ = env.reset(seed=0)
    pairs = random_pairs(obs, np.random.default_rng(0))
    env.step(pairs)
    collected = env.collected_pairs()
    np.testing.assert_array_equal(collected[:, 1:3], pairs)


def test_score_judge_orients_pairs_by_judge_score(make_small_env) -> None:
    env = make_small_env()
    obs, _ = env.reset(seed=0)
    env.step(random_pairs(obs, np.random.default_rng(0)))
    p, chosen, rejected, _ = env.collected_pairs().T
    scores = env.pool.judge_scores
    assert np.all(scores[p, chosen] >= scores[p, rejected])


def test_info_keys_are_plain_python_numbers(make_small_env) -> None:
    *_, info = run_episode(make_small_env(), seed=0)[-1]
    expected = {
        "labels",
        "judge_calls",
        "skipped",
        "abstained",
        "round",
        "instance_id",
        "round_labels",
        "pair_gap",
        "label_accuracy",
        "enn_loss",
        "rm_score",
        "dpo_score",
        "score",
        "rm_focus",
        "rm_precise",
        "rm_same_skill",
        "regret",
    }
    assert set(info) == expected
    assert all(type(v) in (int, float) for v in info.values())
    assert all(np.isfinite(v) for v in info.values())


def test_partial_last_batch_is_padded() -> None:
    env = ActiveUFEnv(SMALL_POOL, batch_size=48, eval_size=40)  # 160 train prompts: 3 full rounds and 16 left
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(random_pairs(obs, np.random.default_rng(0)))
    assert obs["prompt_valid"].sum() == 16 and obs["valid"][16:].sum() == 0
    obs, _, terminated, _, info = env.step(random_pairs(obs, np.random.default_rng(0)))
    assert terminated and info["labels"] == 160 and info["skipped"] == 0
    assert obs in env.observation_space and obs["prompt_valid"].sum() == 0


def test_optional_observation_keys(make_small_env) -> None:
    env = make_small_env(observe_features=True, expose_judge_scores=True)
    obs, _ = env.reset(seed=0)
    assert obs["features"].shape == (16, 30, 16) and obs["judge_scores"].shape == (16, 30)
    assert obs in env.observation_space
    rows = env.unwrapped.episode.order[0]
    np.testing.assert_array_equal(obs["judge_scores"], env.pool.judge_scores[rows])
    assert "judge_scores" not in make_small_env().reset(seed=0)[0]


def test_render_ansi_shows_the_pair_and_verdict(make_small_env) -> None:
    env = make_small_env(render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert "before any label" in env.render()
    env.step(random_pairs(obs, np.random.default_rng(0)))
    text = env.render()
    assert "chosen" in text and "rejected" in text and "verdict: response" in text and "fam" in text


def test_close_is_idempotent(make_small_env) -> None:
    env = make_small_env()
    env.reset(seed=0)
    env.close()
    env.close()
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros((16, 2), dtype=np.int64))


def test_env_pickles_mid_episode_without_its_pool_cache(make_small_env) -> None:
    env = make_small_env()
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(random_pairs(obs, np.random.default_rng(0)))
    clone = pickle.loads(pickle.dumps(env))
    assert clone._cache == {}
    action = random_pairs(obs, np.random.default_rng(1))
    assert data_equivalence(clone.step(action), env.step(action), exact=True)


def test_save_and_load_resume_bit_identically(make_small_env, tmp_path: Path) -> None:
    reference = run_episode(make_small_env(), seed=4, policy_seed=9)
    env = make_small_env()
    rng = np.random.default_rng(9)
    obs, _ = env.reset(seed=4)
    for _ in range(3):
        obs, *_ = env.step(random_pairs(obs, rng))
    path = env.save(tmp_path / "episode.npz")
    env.close()

    resumed = make_small_env()
    resumed.load(path)
    rest = []
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = resumed.step(random_pairs(obs, rng))
        rest.append((obs, reward, terminated, truncated, info))
    assert data_equivalence(rest, reference[4:], exact=True)


def test_set_state_rejects_unknown_versions(make_small_env) -> None:
    env = make_small_env()
    env.reset(seed=0)
    state = env.get_state()
    state["version"] = 99
    with pytest.raises(ValueError, match="version 4, got 99"):
        env.set_state(state)
    with pytest.raises(FileNotFoundError, match=r"missing\.pkl"):
        env.load("missing.pkl")
    state["version"] = 2  # the dict layout of the episode before it became a dataclass
    with pytest.raises(ValueError, match=r"version 4, got 2 .*older activeuf-env"):
        env.set_state(state)


def test_episode_state_is_a_typed_dataclass(make_small_env) -> None:
    env = make_small_env()
    env.reset(seed=0)
    ep = env.episode
    assert isinstance(ep, Episode) and ep.round == 0 and ep.counts == Counts() and ep.last is None
    env.step(random_pairs(env.episode.observation, np.random.default_rng(0)))
    assert ep.round == 1 and ep.counts.labels == 16 and ep.last is not None and ep.last.round_labels == 16


def test_instance_lists_pick_one_instance_per_reset() -> None:
    configs = [SyntheticPoolConfig(n_prompts=100, feature_dim=8, seed=s) for s in range(3)]
    env = ActiveUFEnv(configs, batch_size=16, eval_size=20)
    picked = {env.reset(seed=seed)[1]["instance_id"] for seed in range(12)}
    assert picked == {0, 1, 2}
    _, info = env.reset(seed=0, options={"instance": 2})
    assert info["instance_id"] == 2 and env.pool.prompt_ids == env._instance(2).train.prompt_ids
    with pytest.raises(ValueError, match=r"options\['instance'\] must be an index in \[0, 3\), got 5"):
        env.reset(options={"instance": 5})


def test_instances_must_share_shapes() -> None:
    configs = [SyntheticPoolConfig(n_prompts=100, feature_dim=8), SyntheticPoolConfig(n_prompts=100, feature_dim=9)]
    with pytest.raises(ValueError, match="instance 1 has K=30, D=9; expected K=30, D=8"):
        ActiveUFEnv(configs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        ({"budget": -3}, "budget must be an integer >= 1 or None, got -3"),
        ({"budget": 2.0}, "budget must be an integer >= 1 or None, got 2.0"),
        ({"labeler": "oracle"}, "labeler must be 'judge' or 'first', got 'oracle'"),
        ({"judge_calls_per_pair": 0}, "judge_calls_per_pair must be an integer >= 1 or 'all', got 0"),
        ({"expose_judge_scores": 1}, "expose_judge_scores must be a bool, got 1"),
        ({"reward_model": {}}, "reward_model must be a RewardModelConfig or None, got dict"),
        ({"render_mode": "human"}, "render_mode must be 'ansi' or None, got 'human'"),
        ({"instances": []}, "instances must name at least one instance"),
    ],
)
def test_bad_constructor_arguments_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ActiveUFEnv(**kwargs)


@pytest.mark.parametrize("reward, metric", [("score", "score"), ("dpo", "dpo_score"), ("rm", "rm_score")])
def test_episode_return_is_final_minus_initial_score(make_small_env, reward, metric) -> None:
    trajectory = run_episode(make_small_env(reward=reward), seed=0)
    initial, final = trajectory[0][-1][metric], trajectory[-1][-1][metric]
    episode_return = sum(float(step[1]) for step in trajectory[1:])
    assert episode_return == pytest.approx(final - initial, abs=1e-12)
    assert final != initial  # the pairs taught the proxies something
    assert trajectory[0][-1]["rm_score"] == 0.25 and trajectory[0][-1]["dpo_score"] == 0.0


def test_eval_every_carries_scores_between_evaluations(make_small_env) -> None:
    trajectory = run_episode(make_small_env(eval_every=3), seed=0)
    rewards = [float(step[1]) for step in trajectory[1:]]
    scores = [step[-1]["score"] for step in trajectory]
    for t in range(1, len(trajectory)):
        evaluated = t % 3 == 0 or t == len(trajectory) - 1
        if not evaluated:
            assert rewards[t - 1] == 0.0 and scores[t] == scores[t - 1]
    assert sum(rewards) == pytest.approx(scores[-1] - scores[0], abs=1e-12)


def test_regret_is_reference_score_minus_score(make_small_env) -> None:
    env = make_small_env()
    *_, info = run_episode(env, seed=0)[-1]
    assert info["regret"] == pytest.approx(env.reference_score() - info["score"], abs=1e-12)
    assert env.reference_score() > info["score"] > 0.125  # random pairs beat untrained, fall short of oracle


def test_reward_none_and_no_evaluation(make_small_env) -> None:
    trajectory = run_episode(make_small_env(reward="none"), seed=0)
    assert all(step[1] == 0.0 for step in trajectory) and "score" in trajectory[-1][-1]
    trajectory = run_episode(make_small_env(eval_every=None), seed=0)
    assert all(step[1] == 0.0 for step in trajectory)
    assert not {"score", "rm_score", "dpo_score", "regret"} & set(trajectory[-1][-1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reward": "loss"}, "reward must be 'score', 'dpo', 'rm' or 'none', got 'loss'"),
        ({"eval_every": 0}, "eval_every must be an integer >= 1 or None, got 0"),
    ],
)
def test_bad_reward_arguments_are_named(make_small_env, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_small_env(**kwargs)


def test_reset_without_seed_continues_the_generator(make_small_env) -> None:
    env = make_small_env()
    first, _ = env.reset(seed=3)
    second, _ = env.reset()
    assert not np.array_equal(first["mean"], second["mean"])
