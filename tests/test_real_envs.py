"""The real-data ids: ``ActiveUF/Replay-v0`` on small datasets written here, ``ActiveUF/AlpacaEval-v0`` on the
shared data (skipped, naming the expected path, when it is absent), and the :class:`DatasetPool` factory.

The small dataset comes from :func:`helpers.write_replay_dataset`.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import RecordingAgent, random_pairs, run_episode, write_replay_dataset

import activeuf_env  # noqa: F401  (registers the ids)
import agents
from activeuf_env import ActiveUFEnv, DatasetPool
from activeuf_env.core.pool import ResponsePool
from activeuf_env.data.locate import locate_alpaca_eval
from activeuf_env.data.readers import read_auf_dataset
from activeuf_env.runner.episode import play_episode
from baselines.delta_model import pick_delta_pair


def run_random_episode(env: gym.Env, seed: int = 0) -> dict[str, Any]:
    """The last ``info`` of an episode of the seeded random test policy."""
    return run_episode(env, seed=seed, policy_seed=seed)[-1][-1]


# --------------------------------------------------------------------------------------------------------------------
# ActiveUF/Replay-v0


def test_replay_env_reads_an_auf_dataset(tmp_path: Path) -> None:
    kwargs = write_replay_dataset(tmp_path, padded=True)
    env = gym.make("ActiveUF/Replay-v0", **kwargs)
    inner = env.unwrapped
    assert (inner.n_responses, inner.feature_dim, inner.n_models) == (6, 16, 6)
    obs, _ = env.reset(seed=0)
    pool = inner.pool
    assert pool.n_prompts == 32 and inner.eval_pool.n_prompts == 8 and pool.texts is not None
    expected = read_auf_dataset(kwargs["data_path"], features=kwargs["features_path"])
    index = {pid: i for i, pid in enumerate(expected.prompt_ids)}
    rows = [index[pid] for pid in pool.prompt_ids]
    np.testing.assert_array_equal(pool.judge_scores, expected.judge_scores[rows])
    np.testing.assert_array_equal(pool.true_quality, pool.judge_scores)  # real data: true quality = judge score
    np.testing.assert_array_equal(pool.valid.sum(1), [5 if int(pid[1:]) % 4 == 0 else 6 for pid in pool.prompt_ids])
    live = obs["prompt_valid"] == 1
    np.testing.assert_array_equal(obs["valid"][live], pool.valid[inner.episode.order[0]])
    info = run_random_episode(env)
    assert info["labels"] == 32 and info["round"] == 4
    assert all(math.isfinite(info[k]) for k in ("rm_score", "dpo_score", "score", "regret"))
    env.close()


def test_replay_env_reads_a_saved_pool(tmp_path: Path) -> None:
    kwargs = write_replay_dataset(tmp_path)
    pool = read_auf_dataset(kwargs["data_path"], features=kwargs["features_path"])
    saved = pool.save(tmp_path / "pool.npz")
    env = gym.make("ActiveUF/Replay-v0", data_path=saved, batch_size=8, eval_size=8)
    assert (env.unwrapped.n_responses, env.unwrapped.feature_dim) == (pool.n_responses, pool.feature_dim)
    assert run_random_episode(env)["labels"] == 32
    with pytest.raises(ValueError, match="features_path is not used with a saved pool"):
        gym.make("ActiveUF/Replay-v0", data_path=saved, features_path=kwargs["features_path"])


def test_replay_env_passes_reader_kwargs(tmp_path: Path) -> None:
    kwargs = write_replay_dataset(tmp_path, padded=True)
    env = gym.make("ActiveUF/Replay-v0", **kwargs, reader_kwargs={"slots": "model", "with_texts": False})
    env.reset(seed=0)
    pool = env.unwrapped.pool
    assert pool.texts is None
    np.testing.assert_array_equal(pool.model_ids, np.broadcast_to(np.arange(6), pool.model_ids.shape))


def test_replay_env_needs_an_existing_data_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ActiveUF/Replay-v0 needs data_path=.*got None"):
        gym.make("ActiveUF/Replay-v0")
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.jsonl"):
        gym.make("ActiveUF/Replay-v0", data_path=missing)
    with pytest.raises(ValueError, match="do not pass instances="):
        gym.make("ActiveUF/Replay-v0", data_path=missing, instances=[])


def test_replay_env_pickles_without_its_data(tmp_path: Path) -> None:
    kwargs = write_replay_dataset(tmp_path, dim=256, padded=True)
    env = gym.make("ActiveUF/Replay-v0", **kwargs).unwrapped
    env.reset(seed=0)
    features_bytes = env.pool.features.nbytes
    env.close()
    assert len(pickle.dumps(env)) < 50_000 < features_bytes  # the description of the data travels, not the pool
    obs, _ = env.reset(seed=3)
    clone = pickle.loads(pickle.dumps(env))
    obs_clone, _ = clone.reset(seed=3)
    for key in obs:
        np.testing.assert_array_equal(obs[key], obs_clone[key])
    pairs = random_pairs(obs, np.random.default_rng(0))
    info, info_clone = env.step(pairs)[4], clone.step(pairs)[4]
    assert info == info_clone


def test_dataset_pool_is_read_once_per_process(tmp_path: Path) -> None:
    kwargs = write_replay_dataset(tmp_path)
    factory = DatasetPool(kwargs["data_path"], kwargs["features_path"])
    same = DatasetPool(Path(kwargs["data_path"]), kwargs["features_path"])
    assert factory == same and hash(factory) == hash(same)
    assert isinstance(factory(), ResponsePool) and factory() is same()
    assert factory.load() is not factory()  # load() bypasses the cache
    other = DatasetPool(kwargs["data_path"], kwargs["features_path"], {"with_texts": False})
    assert other().texts is None and factory().texts is not None
    assert pickle.loads(pickle.dumps(factory)) == factory
    with pytest.raises(ValueError, match="features_path="):
        DatasetPool(kwargs["data_path"], reader_kwargs={"features": kwargs["features_path"]})
    # a rewritten file is read again
    first = factory()
    write_replay_dataset(tmp_path, n_prompts=24)
    assert factory() is not first and factory().n_prompts == 24


def test_env_takes_a_dataset_pool_directly(tmp_path: Path) -> None:
    kwargs = write_replay_dataset(tmp_path)
    env = ActiveUFEnv(DatasetPool(kwargs["data_path"], kwargs["features_path"]), batch_size=8, eval_size=8)
    assert run_random_episode(env)["labels"] == 32


# --------------------------------------------------------------------------------------------------------------------
# ActiveUF/AlpacaEval-v0


def test_alpaca_eval_missing_data_names_the_expected_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = str(tmp_path / "alpaca_eval_multimodel" / "alpaca_eval_multimodel.jsonl.gz")
    with pytest.raises(FileNotFoundError) as caught:
        gym.make("ActiveUF/AlpacaEval-v0", data_dir=tmp_path)
    message = str(caught.value)
    assert expected in message and "ACTIVEUF_SHARED_DATA" in message and "data_dir=" in message
    monkeypatch.setenv("ACTIVEUF_SHARED_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        gym.make("ActiveUF/AlpacaEval-v0")


def alpaca_data_or_skip() -> Path:
    try:
        return locate_alpaca_eval()
    except FileNotFoundError as err:
        pytest.skip(f"shared AlpacaEval data absent: {err}")


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a busy 2-core machine (pytest -n 2) torch's spinning threads slow the small ENN
    matmuls several-fold; results are identical."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_alpaca_eval_env_shapes() -> None:
    alpaca_data_or_skip()
    env = gym.make("ActiveUF/AlpacaEval-v0")
    inner = env.unwrapped
    assert (inner.n_responses, inner.feature_dim, inner.n_models) == (57, 768, 57)
    assert (inner.batch_size, inner.eval_size) == (64, 165)
    obs, info = env.reset(seed=0)
    assert inner.pool.n_prompts == 640 and inner.eval_pool.n_prompts == 165 and inner.episode.n_rounds == 10
    assert obs["valid"].shape == (64, 57) and obs["prompt_valid"].all()
    assert info["score"] == pytest.approx((0.25 + 0.0) / 2) and math.isfinite(info["regret"])
    pool = inner.pool
    np.testing.assert_array_equal(pool.true_quality, pool.judge_scores)
    assert (~pool.valid).sum() + (~inner.eval_pool.valid).sum() == 805 * 57 - 45_875  # missing responses, padded
    np.testing.assert_array_equal(obs["model_ids"], np.where(obs["valid"] == 1, np.arange(57), 0))
    # The oracle-target rule carries the synthetic pool's scale over: the oracle pair set moves both proxies.
    oracle = inner.reference_scores()
    assert oracle["dpo_score"] >= 0.05 and oracle["rm_score"] >= 0.30
    names = info["model_names"]
    chosen, rejected = pick_delta_pair(names)  # the README's default pick on AlpacaEval-v0
    assert len(names) == 57 and (names[chosen], names[rejected]) == ("falcon-40b-instruct", "falcon-7b-instruct")


@pytest.mark.slow
def test_alpaca_eval_full_episodes(one_torch_thread: None) -> None:
    """deltaucb, drts and random each run a whole episode (10 rounds of 64, the registered defaults)."""
    alpaca_data_or_skip()
    results: dict[str, dict[str, Any]] = {}
    for name in ("deltaucb", "drts", "random"):
        agent = agents.make(name)
        env = gym.make("ActiveUF/AlpacaEval-v0", **agent.env_kwargs())
        recorder = RecordingAgent(agent)
        steps = list(play_episode(env, recorder, seed=0))
        first, info = steps[0].info, steps[-1].info
        assert steps[-1].terminated and not any(step.truncated for step in steps)
        labels, gaps, rounds = sum(recorder.asked_labels()), [s.info["pair_gap"] for s in steps[1:]], len(steps) - 1
        assert rounds == 10 and info["labels"] == labels > 0, name
        for key in ("rm_score", "dpo_score", "score", "regret", "pair_gap", "label_accuracy"):
            assert math.isfinite(info[key]), (name, key)
        assert 0.0 <= info["rm_score"] <= 1.0 and info["label_accuracy"] == 1.0  # the judge is the truth here
        assert info["regret"] == pytest.approx(env.unwrapped.reference_score() - info["score"])
        rows = env.unwrapped.collected_dataset("records")
        assert len(rows) == info["labels"] and all(r["score_chosen"] >= r["score_rejected"] for r in rows)
        results[name] = {"first": first, "info": info, "gaps": gaps}
        env.close()
    # Random pairs of real responses, labelled by the judge, teach the downstream proxies something.
    assert results["random"]["info"]["score"] > results["random"]["first"]["score"]
    # DRTS picks pairs with large predicted gaps: once the ensemble has seen a few rounds, larger true gaps.
    assert np.mean(results["drts"]["gaps"][5:]) > np.mean(results["random"]["gaps"][5:])


def test_bench_runs_on_alpaca_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``activeuf bench`` on the real data: two agents, two rounds of the label budget, every table written."""
    alpaca_data_or_skip()
    pd = pytest.importorskip("pandas")
    from activeuf_env import cli

    out = tmp_path / "alpaca"
    argv = ["bench", "--env", "ActiveUF/AlpacaEval-v0", "--agents", "drts,random", "--seeds", "1", "--workers", "1"]
    status = cli.main([*argv, "--out", str(out), "--env-kwargs", '{"budget": 128}', "--no-wandb", "--no-progress"])
    assert status == 0, capsys.readouterr().out
    table = pd.read_csv(out / "results.csv")
    assert set(table["agent"]) == {"drts", "random"} and table.groupby("agent")["labels"].max().tolist() == [128, 128]
    assert "ActiveUF/AlpacaEval-v0" in (out / "summary.md").read_text()


def test_unknown_keywords_are_named_and_reader_options_pass_through(tmp_path: Path) -> None:
    kwargs = write_replay_dataset(tmp_path)
    data_path = kwargs.pop("data_path")
    with pytest.raises(ValueError, match=r"unknown keyword 'datapath'; did you mean 'data_path'\?"):
        gym.make("ActiveUF/Replay-v0", datapath=data_path, **kwargs)
    with pytest.raises(ValueError, match=r"unknown keyword 'batchsize'; did you mean 'batch_size'\?"):
        gym.make("ActiveUF/Replay-v0", data_path=data_path, batchsize=8)
    # A reader option given where a user would give it goes to the reader (it used to be a TypeError).
    env = gym.make("ActiveUF/Replay-v0", data_path=data_path, on_error="skip", **kwargs)
    assert env.unwrapped.n_responses > 0
    env.close()
