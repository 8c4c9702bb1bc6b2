"""Tests of activeuf_env.data.embeddings: composition, content hash, precomputed embeddings, the on-disk cache."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import replay_records

from activeuf_env.core.pool import PoolTexts
from activeuf_env.data import embeddings
from activeuf_env.data.encoders import HashingEncoder, TextEncoder, resolve_encoder
from activeuf_env.data.readers import read_auf_dataset
from activeuf_env.data.writers import write_auf_dataset


@dataclass
class CountingEncoder:
    """Wraps a HashingEncoder and counts the texts it is asked to encode."""

    inner: HashingEncoder = field(default_factory=lambda: HashingEncoder(16))
    calls: list[int] = field(default_factory=list)

    @property
    def cache_key(self) -> str:
        return f"counting-{self.inner.cache_key}"

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.encode(texts)


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the default embedding cache (``cache=True``) out of the user's home directory."""
    monkeypatch.setenv("ACTIVEUF_CACHE_DIR", str(tmp_path_factory.mktemp("feature-cache")))


# --------------------------------------------------------------------------------------------------------------------
# composition


def test_compose_response_product_values() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(size=(5, 4)).astype(np.float32)
    p = rng.normal(size=(2, 4)).astype(np.float32)
    idx = np.array([0, 0, 1, 1, 1])
    out = embeddings.compose_features(r, p, idx)
    assert out.shape == (5, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :4], r)
    np.testing.assert_allclose(out[:, 4:], 2.0 * r * p[idx], rtol=1e-6)  # sqrt(4) = 2
    # The product half sums to sqrt(d) * <r, p>: the response-prompt relevance.
    np.testing.assert_allclose(out[:, 4:].sum(1), 2.0 * (r * p[idx]).sum(1), rtol=1e-5)


def test_compose_other_compositions_and_dtype() -> None:
    r = np.eye(3, dtype=np.float16)
    p = np.ones((3, 3), dtype=np.float16)
    concat = embeddings.compose_features(r, p, composition="concat", dtype=np.float16)
    assert concat.dtype == np.float16 and concat.shape == (3, 6)
    np.testing.assert_array_equal(concat[:, 3:], p)
    assert embeddings.compose_features(r, p, composition="response").shape == (3, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"composition": "sum"}, "composition must be 'response_product', 'concat' or 'response', got 'sum'"),
        ({"prompt_index": np.array([0, 1])}, r"prompt_index must have shape \(3,\), got \(2,\)"),
    ],
)
def test_compose_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        embeddings.compose_features(np.zeros((3, 2)), np.zeros((3, 2)), **kwargs)


def test_compose_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="prompt embeddings have dimension 3, response embeddings 2"):
        embeddings.compose_features(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"one row per response \(3\), got 2"):
        embeddings.compose_features(np.zeros((3, 2)), np.zeros((2, 2)))


# --------------------------------------------------------------------------------------------------------------------
# content hash, precomputed embeddings


def test_content_hash_separates_lists() -> None:
    assert embeddings.content_hash(["ab", "c"]) != embeddings.content_hash(["a", "bc"])
    assert embeddings.content_hash(["a", ""]) != embeddings.content_hash(["a"])
    assert embeddings.content_hash(["x"]) == embeddings.content_hash(["x"])


def test_precomputed_embeddings_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"prompts embeddings must be a 2-D array \[rows, d\], got an array of shape"):
        embeddings.PrecomputedEmbeddings(np.zeros(3), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same dimension, got 3 and 4"):
        embeddings.PrecomputedEmbeddings(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="must be floating point, got dtype int64"):
        embeddings.PrecomputedEmbeddings(np.zeros((2, 3), np.int64), np.zeros((2, 3)))
    with pytest.raises(FileNotFoundError, match=r"prompt_embeddings\.npy"):
        embeddings.PrecomputedEmbeddings.from_dir(tmp_path)
    np.save(tmp_path / "prompt_embeddings.npy", np.ones((2, 3), np.float16))
    np.save(tmp_path / "response_embeddings.npy", np.ones((5, 3), np.float16))
    emb = embeddings.PrecomputedEmbeddings.from_dir(tmp_path)
    assert isinstance(emb.responses, np.memmap) and emb.dim == 3


# --------------------------------------------------------------------------------------------------------------------
# cache


def test_cache_round_trip_is_memory_mapped_and_reused(tmp_path: Path) -> None:
    enc = CountingEncoder()
    texts = ["alpha beta", "gamma", ""]
    first = embeddings.embed_texts(texts, enc, cache=tmp_path)
    again = embeddings.embed_texts(texts, enc, cache=tmp_path)
    assert enc.calls == [3]  # the second call is a cache hit
    assert isinstance(again, np.memmap) and not again.flags.writeable
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(again, HashingEncoder(16).encode(texts))
    (path,) = tmp_path.glob("*.npy")
    assert path.name.startswith("counting-hashing-16-") and path.name.endswith("-float32.npy")
    # Other texts or another encoder use other files.
    embeddings.embed_texts(texts[:2], enc, cache=tmp_path)
    embeddings.embed_texts(texts, HashingEncoder(16), cache=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 3
    assert not list(tmp_path.glob("*.tmp*"))


def test_cache_recomputes_a_file_of_the_wrong_size_and_stores_float16(tmp_path: Path) -> None:
    enc = CountingEncoder()
    cache = embeddings.EmbeddingCache(tmp_path, dtype=np.float16)
    texts = ["a", "b"]
    np.save(cache.path_for(enc, texts), np.zeros((5, 16), np.float16))
    out = cache.get_or_encode(enc, texts)
    assert enc.calls == [2] and out.dtype == np.float16 and out.shape == (2, 16)
    with pytest.raises(ValueError, match="float16 or float32, got int8"):
        embeddings.EmbeddingCache(tmp_path, dtype=np.int8)
    with pytest.raises(ValueError, match=r"expected embeddings of shape \[2, d\], got shape \(3, 16\)"):
        cache.save(enc, texts, np.zeros((3, 16)))


def test_cache_off_and_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = CountingEncoder()
    embeddings.embed_texts(["a"], enc, cache=False)
    embeddings.embed_texts(["a"], enc, cache=False)
    assert enc.calls == [1, 1]
    monkeypatch.setenv("ACTIVEUF_CACHE_DIR", str(tmp_path / "c"))
    assert embeddings.default_cache_dir() == tmp_path / "c"
    resolved = embeddings.resolve_cache(True)
    assert resolved is not None and resolved.directory == tmp_path / "c"
    assert embeddings.resolve_cache(None) is None
    with pytest.raises(TypeError, match=r"cache must be .* got int"):
        embeddings.resolve_cache(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"encoder must be an Encoder .* got float"):
        resolve_encoder(1.5)  # type: ignore[arg-type]
    assert isinstance(resolve_encoder("/some/model"), TextEncoder)


def test_encode_pool_texts_fills_valid_slots_only(tmp_path: Path) -> None:
    texts = PoolTexts(["q one", "q two"], [["yes", "no", ""], ["maybe", "", "sure"]])
    valid = np.array([[True, True, False], [True, False, True]])
    features = embeddings.encode_pool_texts(texts, valid, HashingEncoder(8), cache=tmp_path)
    assert features.shape == (2, 3, 16)
    assert not features[~valid].any()
    expected = embeddings.compose_features(HashingEncoder(8).encode(["sure"]), HashingEncoder(8).encode(["q two"]))
    np.testing.assert_allclose(features[1, 2], expected[0])
    with pytest.raises(ValueError, match=r"texts must hold 2 prompts with 4 response slots"):
        embeddings.encode_pool_texts(texts, np.ones((2, 4), bool), HashingEncoder(8), cache=False)


def test_a_failed_cache_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = CountingEncoder()
    cache = embeddings.EmbeddingCache(tmp_path)
    texts = ["a", "b"]
    target = cache.path_for(enc, texts)
    np.save(target, np.ones((5, 16), np.float32))  # a stale file of the wrong size: the cache rewrites it
    before = target.read_bytes()

    def fail_half_way(file: Any, array: np.ndarray, **kwargs: Any) -> None:
        Path(file).write_bytes(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", fail_half_way)
    with pytest.raises(OSError, match="disk full"):
        cache.get_or_encode(enc, texts)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name, f"{target.name}.lock"]  # no temporary file
    np.testing.assert_array_equal(cache.get_or_encode(enc, texts), HashingEncoder(16).encode(texts))


@dataclass(frozen=True)
class SlowLoggingEncoder:
    """A HashingEncoder that appends one line per encode to ``log`` and takes ``seconds``: a long encode that two
    processes can overlap, counted across processes."""

    log: str
    seconds: float = 1.0

    @property
    def cache_key(self) -> str:
        return "slow-logging-hashing-16"

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        with open(self.log, "a") as handle:
            handle.write(f"{os.getpid()} {len(texts)}\n")
        time.sleep(self.seconds)
        return HashingEncoder(16).encode(texts)


def _read_after_barrier(data_path: str, cache_dir: str, log: str, barrier: Any, results: Any) -> None:
    """Worker: wait for the other, then read the same uncached dataset through the same cache."""
    barrier.wait(timeout=120)
    pool = read_auf_dataset(data_path, features=SlowLoggingEncoder(log), cache=cache_dir)
    results.put(hashlib.sha256(pool.features.tobytes()).hexdigest())


def test_two_processes_encode_an_uncached_dataset_once(tmp_path: Path) -> None:
    """Issue 11 #5: the second process waits for the first one's encode and reads its cache files."""
    data_path = write_auf_dataset(replay_records(6), tmp_path / "prefs.jsonl")
    log, cache_dir = tmp_path / "encodes.log", tmp_path / "cache"
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    args = (str(data_path), str(cache_dir), str(log), barrier, results)
    workers = [context.Process(target=_read_after_barrier, args=args) for _ in range(2)]
    for worker in workers:
        worker.start()
    digests = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    encodes = log.read_text().splitlines()
    assert sorted(int(line.split()[1]) for line in encodes) == [6, 36]  # prompts once, responses once
    assert digests[0] == digests[1]
    assert len(list(cache_dir.glob("*.npy"))) == 2
