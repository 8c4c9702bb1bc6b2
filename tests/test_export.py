"""``env.collected_dataset()`` and :mod:`activeuf_env.data.export`: the collected pairs in the AUF binarized layout."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import random_pairs, write_replay_dataset

from activeuf_env import ActiveUFEnv, DatasetPool, ResponsePool
from activeuf_env.data import formats
from activeuf_env.data.export import BINARIZED_COLUMNS, pairs_to_columns, pairs_to_records


def play(env: Any, rounds: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(rounds):
        obs = env.step(random_pairs(obs, rng))[0]


@pytest.fixture
def real_env(tmp_path: Path) -> ActiveUFEnv:
    """A real-format pool with texts (every fourth prompt lacks a model), 32 train prompts in 4 rounds of 8."""
    kwargs = write_replay_dataset(tmp_path / "data", padded=True)
    env = ActiveUFEnv(DatasetPool(kwargs["data_path"], kwargs["features_path"]), batch_size=8, eval_size=8)
    play(env, rounds=3)
    return env


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def assert_rows_match_pairs(rows: list[dict[str, Any]], env: ActiveUFEnv) -> None:
    pool, pairs = env.pool, env.collected_pairs()
    assert len(rows) == len(pairs) > 0
    for row, (p, c, r, rnd) in zip(rows, pairs.tolist(), strict=True):
        assert list(row) == list(BINARIZED_COLUMNS)
        assert row["prompt_id"] == pool.prompt_ids[p] and row["round"] == rnd
        assert (row["chosen_index"], row["rejected_index"]) == (c, r)
        # The shortest decimal that is the stored score (a dataset's 3.89, not float32 noise 3.890000104904175).
        assert np.float32(row["score_chosen"]) == pool.judge_scores[p, c]
        assert np.float32(row["score_rejected"]) == pool.judge_scores[p, r]
        assert len(repr(row["score_chosen"])) <= len(repr(float(pool.judge_scores[p, c])))
        assert row["score_chosen"] >= row["score_rejected"]  # the default judge picks the higher judge score
        assert row["chosen_model"] == pool.model_names[pool.model_ids[p, c]]
        assert row["rejected_model"] == pool.model_names[pool.model_ids[p, r]]
        for key, k in (("chosen", c), ("rejected", r)):
            user, assistant = row[key]
            assert user == {"role": "user", "content": row["prompt"]}
            assert assistant["role"] == "assistant"
            if pool.texts is not None:
                assert row["prompt"] == pool.texts.prompts[p] and assistant["content"] == pool.texts.responses[p][k]


@pytest.mark.parametrize("name", ["prefs.jsonl", "prefs.jsonl.gz"])
def test_jsonl_round_trip_of_a_real_pool(real_env: ActiveUFEnv, tmp_path: Path, name: str) -> None:
    path = real_env.collected_dataset("jsonl", path=tmp_path / "out" / name)
    assert path == tmp_path / "out" / name
    rows = read_jsonl(path)
    assert_rows_match_pairs(rows, real_env)
    assert rows == real_env.collected_dataset("records")
    assert {row["round"] for row in rows} == {0, 1, 2}
    assert sorted(p.name for p in path.parent.iterdir()) == [name]  # no temporary file left behind


def test_synthetic_pool_gets_placeholder_texts(make_small_env: Any, tmp_path: Path) -> None:
    env = make_small_env()
    play(env, rounds=2)
    rows = read_jsonl(env.collected_dataset("jsonl", path=tmp_path / "syn.jsonl"))
    assert_rows_match_pairs(rows, env)
    row = rows[0]
    assert row["prompt"] == row["prompt_id"]
    assert row["chosen"][1]["content"] == (
        f"<response {row['chosen_index']} to {row['prompt_id']} by {row['chosen_model']}>"
    )


def test_dataset_has_the_binarized_columns(real_env: ActiveUFEnv) -> None:
    dataset = real_env.collected_dataset()
    assert dataset.column_names == list(BINARIZED_COLUMNS)
    assert len(dataset) == len(real_env.collected_pairs())
    assert dataset.features["score_chosen"].dtype == "float64" and dataset.features["round"].dtype == "int64"
    first = dataset[0]
    assert [m["role"] for m in first["chosen"]] == ["user", "assistant"]
    records = real_env.collected_dataset("records")
    assert dataset.to_list() == records


def test_empty_collection(make_small_env: Any, tmp_path: Path) -> None:
    env = make_small_env()
    env.reset(seed=0)
    assert env.collected_dataset("records") == []
    dataset = env.collected_dataset("dataset")
    assert len(dataset) == 0 and dataset.column_names == list(BINARIZED_COLUMNS)
    path = env.collected_dataset("jsonl", path=tmp_path / "empty.jsonl")
    assert path.read_text() == ""


def test_a_failed_write_loses_nothing(real_env: ActiveUFEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = real_env.collected_pairs().copy()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        real_env.collected_dataset("jsonl", path=blocker / "out.jsonl")
    # a write that fails half-way leaves the previous file untouched and no temporary file behind
    target = tmp_path / "prefs.jsonl"
    target.write_text("previous export\n")

    lines: list[str] = []

    def fail_half_way(record: Any) -> str:
        if lines:
            raise OSError("disk full")
        lines.append(json.dumps(record))
        return '{"partial": '

    monkeypatch.setattr(formats, "json_line", fail_half_way)
    with pytest.raises(OSError, match="disk full"):
        real_env.collected_dataset("jsonl", path=target)
    assert target.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "data", "prefs.jsonl"]
    monkeypatch.undo()
    np.testing.assert_array_equal(real_env.collected_pairs(), before)
    assert_rows_match_pairs(read_jsonl(real_env.collected_dataset("jsonl", path=target)), real_env)
    # and the episode goes on
    obs = real_env.episode.observation
    real_env.step(random_pairs(obs, np.random.default_rng(1)))
    assert len(real_env.collected_pairs()) > len(before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "csv"}, "format must be 'dataset', 'jsonl' or 'records', got 'csv'"),
        ({"format": "jsonl"}, r"format='jsonl' needs path= .*got path=None"),
        ({"format": "records", "path": "x.jsonl"}, r"path is only used with format='jsonl', got path='x.jsonl'"),
    ],
)
def test_bad_arguments_name_the_value(make_small_env: Any, kwargs: dict[str, Any], match: str) -> None:
    env = make_small_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.collected_dataset(**kwargs)


def test_needs_an_episode(make_small_env: Any) -> None:
    with pytest.raises(gym.error.ResetNeeded):
        make_small_env().collected_dataset("records")


def test_bad_pairs_name_the_row(real_env: ActiveUFEnv) -> None:
    pool = real_env.pool
    with pytest.raises(ValueError, match=r"pairs must be an integer array \[n, 4\]"):
        pairs_to_columns(pool, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"pair 1 = \[0, 0, 99, 0\] is out of range"):
        pairs_to_records(pool, np.array([[0, 0, 1, 0], [0, 0, 99, 0]]))
    padded = int(np.argmax(~pool.valid.all(axis=1)))
    slot = int(np.argmax(~pool.valid[padded]))
    with pytest.raises(ValueError, match=f"names a padded response of prompt '{pool.prompt_ids[padded]}'"):
        pairs_to_records(pool, np.array([[padded, slot, 0, 0]]))


def test_dataset_format_without_datasets_says_how_to_install(
    real_env: ActiveUFEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ModuleNotFoundError, match=r"activeuf-env\[data\]"):
        real_env.collected_dataset("dataset")
    assert len(real_env.collected_dataset("records")) == len(real_env.collected_pairs())


def test_exported_scores_equal_the_datasets_decimals() -> None:
    scores = np.array([[3.22, 1.1, 4.7]], np.float32)
    pool = ResponsePool(
        np.zeros((1, 3, 1), np.float32),
        scores,
        scores,
        np.array([[0, 1, 2]]),
        np.ones((1, 3), bool),
        ["a", "b", "c"],
        ["p0"],
    )
    row = pairs_to_records(pool, np.array([[0, 0, 1, 0], [0, 2, 1, 1]]))
    assert [(r["score_chosen"], r["score_rejected"]) for r in row] == [(3.22, 1.1), (4.7, 1.1)]
    assert float(np.float32(3.22)) != 3.22  # what a plain float64 cast would have written
