"""Embeddings and features: precomputed embeddings, the on-disk embedding cache, and the composition of response
features from response and prompt embeddings.

A response's feature is built from two sentence embeddings, the response's ``r`` and its prompt's ``p`` (both
``d``-dimensional, L2-normalised by default), by :func:`compose_features`. The default composition,
``"response_product"``, is

    ``φ = [r, sqrt(d) · (r ⊙ p)]``  (``D = 2d``; 768 for all-MiniLM-L6-v2)

Why not the plain concatenation ``[r, p]``: within one prompt ``p`` is constant, so for every scorer that is linear
in the features (the DPO proxy's log-ratio, the difference ``f(c) - f(r)`` of a Bradley-Terry pair) the prompt half
cancels and carries no information at all. The elementwise product keeps that information where pairwise models can
use it: ``Σ_i (r ⊙ p)_i = cos(r, p)`` is the response's relevance to its prompt, and each coordinate lets a linear
scorer weight a response direction differently per prompt. ``sqrt(d)`` brings the product half to the same scale
as the response half (on the shared AlpacaEval embeddings the per-coordinate RMS is 0.051 for ``r`` and 0.072 for
the scaled product). ``"concat"`` (``[r, p]``) and ``"response"`` (``r`` only) are available too.

Embeddings come from an encoder (:mod:`activeuf_env.data.encoders`) through the cache, or precomputed
(:class:`PrecomputedEmbeddings`, no encoder needed).

Cache: :class:`EmbeddingCache` stores one ``.npy`` per (encoder, list of texts), named by the encoder's
``cache_key`` and a SHA-256 content hash of the texts, written atomically (:func:`activeuf_env._io.atomic_path`)
and returned memory-mapped read-only (``np.load(mmap_mode="r")``). A missing file is encoded once, whatever the
number of processes asking for it (vector-env workers, benchmark jobs): under a file lock beside it, which the
others wait for before reading the file. The directory is ``$ACTIVEUF_CACHE_DIR``, else
``$XDG_CACHE_HOME/activeuf_env/features``, else ``~/.cache/activeuf_env/features``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import filelock
import numpy as np

from activeuf_env._io import atomic_path
from activeuf_env._validation import check_choice, check_type
from activeuf_env.core.pool import PoolTexts
from activeuf_env.data.encoders import Encoder, check_texts, resolve_encoder, safe_name

__all__ = [
    "CACHE_DIR_ENV",
    "COMPOSITIONS",
    "EMBEDDING_FILES",
    "PROMPT_EMBEDDINGS_FILE",
    "RESPONSE_EMBEDDINGS_FILE",
    "CacheSpec",
    "Composition",
    "EmbeddingCache",
    "PrecomputedEmbeddings",
    "compose_features",
    "content_hash",
    "default_cache_dir",
    "embed_texts",
    "encode_pool_texts",
    "resolve_cache",
]

CACHE_DIR_ENV = "ACTIVEUF_CACHE_DIR"
"""Environment variable that overrides the default embedding-cache directory."""

Composition = Literal["response_product", "concat", "response"]
COMPOSITIONS: tuple[Composition, ...] = ("response_product", "concat", "response")
"""Ways :func:`compose_features` builds a response's feature from its embedding and its prompt's."""

PROMPT_EMBEDDINGS_FILE = "prompt_embeddings.npy"
RESPONSE_EMBEDDINGS_FILE = "response_embeddings.npy"
EMBEDDING_FILES = (PROMPT_EMBEDDINGS_FILE, RESPONSE_EMBEDDINGS_FILE)
"""The file names of precomputed embeddings in a directory (those of the shared data)."""


@dataclass(frozen=True, eq=False)
class PrecomputedEmbeddings:
    """Sentence embeddings computed elsewhere, aligned with a dataset file; no encoder is needed to use them.

    Alignment: ``prompts`` has one row per row of the dataset file (one per non-blank line of a JSONL file),
    ``responses`` one row per element of every row's response list, both in file order, malformed or skipped rows
    included. The readers check both counts and name them when they differ.

    Args:
        prompts: float ``[n_rows, d]`` (float16 is fine; may be a memmap).
        responses: float ``[n_responses, d]``.

    Example:
        >>> emb = PrecomputedEmbeddings(np.zeros((2, 4), np.float16), np.zeros((5, 4), np.float16))
        >>> emb.dim
        4
    """

    prompts: np.ndarray
    responses: np.ndarray

    def __post_init__(self) -> None:
        for name in ("prompts", "responses"):
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.ndim != 2:
                raise ValueError(f"{name} embeddings must be a 2-D array [rows, d], got {_describe(array)}")
            if not np.issubdtype(array.dtype, np.floating):
                raise ValueError(f"{name} embeddings must be floating point, got dtype {array.dtype}")
        if self.prompts.shape[1] != self.responses.shape[1]:
            raise ValueError(
                f"prompt and response embeddings must have the same dimension, got {self.prompts.shape[1]} "
                f"and {self.responses.shape[1]}"
            )

    @property
    def dim(self) -> int:
        """Embedding dimension ``d``."""
        return int(self.prompts.shape[1])

    @classmethod
    def from_files(
        cls, prompts: str | os.PathLike[str], responses: str | os.PathLike[str], *, mmap: bool = True
    ) -> PrecomputedEmbeddings:
        """Load two ``.npy`` files (memory-mapped read-only by default).

        Raises:
            FileNotFoundError: a file is missing (the message names it).
            ValueError: a file is truncated or corrupt, or holds no 2-D float array (the message names it).
        """
        arrays = []
        for path in (Path(prompts), Path(responses)):
            if not path.is_file():
                raise FileNotFoundError(f"no embeddings file at {str(path)!r}")
            try:
                arrays.append(np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False))
            except (OSError, EOFError, ValueError) as err:  # numpy's messages do not name the file
                raise ValueError(f"cannot read embeddings file {str(path)!r}: {type(err).__name__}: {err}") from None
        try:
            return cls(arrays[0], arrays[1])
        except ValueError as err:
            raise ValueError(f"embeddings files {str(prompts)!r} and {str(responses)!r}: {err}") from None

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str], *, mmap: bool = True) -> PrecomputedEmbeddings:
        """Load ``prompt_embeddings.npy`` and ``response_embeddings.npy`` from ``directory`` (the shared-data names)."""
        directory = Path(directory)
        prompts, responses = directory / PROMPT_EMBEDDINGS_FILE, directory / RESPONSE_EMBEDDINGS_FILE
        return cls.from_files(prompts, responses, mmap=mmap)

    @staticmethod
    def found_in(directory: str | os.PathLike[str]) -> list[str]:
        """Which of ``prompt_embeddings.npy`` and ``response_embeddings.npy`` ``directory`` holds (both, one, none)."""
        return [name for name in EMBEDDING_FILES if (Path(directory) / name).is_file()]


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"{type(value).__name__}"


def content_hash(texts: Sequence[str]) -> str:
    """SHA-256 hex digest of a list of strings (length-prefixed, so ``["ab", "c"]`` and ``["a", "bc"]`` differ).

    Example:
        >>> content_hash(["ab", "c"]) != content_hash(["a", "bc"])
        True
    """
    digest = hashlib.sha256()
    digest.update(len(texts).to_bytes(8, "little"))
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """The embedding-cache directory.

    Returns:
        ``$ACTIVEUF_CACHE_DIR``, else ``$XDG_CACHE_HOME/activeuf_env/features``, else
        ``~/.cache/activeuf_env/features``.
    """
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "activeuf_env" / "features"


class EmbeddingCache:
    """Embeddings on disk, one ``.npy`` per (encoder, texts), returned memory-mapped read-only.

    A file is named ``<encoder.cache_key>-<content_hash(texts)[:32]>-<dtype>.npy`` and written atomically (a
    temporary file renamed into place), so concurrent writers never leave a torn file, and a missing file is encoded
    by one process while the others wait for it (:meth:`get_or_encode`). A file whose row count does not match is
    recomputed.

    Args:
        directory: the cache directory (created on first write); ``None`` is :func:`default_cache_dir`.
        dtype: storage dtype, ``float32`` (default, exact) or ``float16`` (half the disk).

    Example:
        >>> import tempfile
        >>> from activeuf_env.data.encoders import HashingEncoder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> cache = EmbeddingCache(tmp.name)
        >>> first = cache.get_or_encode(HashingEncoder(8), ["a", "b"])
        >>> cache.get_or_encode(HashingEncoder(8), ["a", "b"]).filename == first.filename
        True
        >>> del first; tmp.cleanup()
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, dtype: np.dtype | type = np.float32) -> None:
        self.directory = default_cache_dir() if directory is None else Path(directory)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float16, np.float32):
            raise ValueError(f"cache dtype must be float16 or float32, got {self.dtype}")

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.directory)!r}, dtype={self.dtype.name})"

    def path_for(self, encoder: Encoder, texts: Sequence[str]) -> Path:
        """The file that holds (or would hold) ``encoder``'s embeddings of ``texts``."""
        key = f"{safe_name(encoder.cache_key)}-{content_hash(texts)[:32]}-{self.dtype.name}"
        return self.directory / f"{key}.npy"

    def load(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray | None:
        """The cached embeddings (read-only memmap), or ``None`` when absent or of the wrong row count."""
        path = self.path_for(encoder, texts)
        if not path.is_file():
            return None
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        return array if array.ndim == 2 and array.shape[0] == len(texts) else None

    def save(self, encoder: Encoder, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Store ``embeddings`` of ``texts`` and return them memory-mapped from the cache file."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(texts):
            raise ValueError(f"expected embeddings of shape [{len(texts)}, d], got shape {embeddings.shape}")
        path = self.path_for(encoder, texts)
        with atomic_path(path) as tmp:
            np.save(tmp, embeddings.astype(self.dtype, copy=False))
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def get_or_encode(self, encoder: Encoder, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Cached embeddings of ``texts``, encoding and storing them on a miss (memory-mapped either way).

        A miss is encoded once whatever the number of processes: the encoder runs under an exclusive lock on
        ``<cache file>.lock``, and a process that finds the lock taken waits for it, then reads the file the other
        one wrote. A hit takes no lock (a read-only cache directory serves hits).
        """
        texts = check_texts(texts)
        if not texts:
            return np.asarray(encoder.encode(texts, progress=progress), dtype=self.dtype)
        cached = self.load(encoder, texts)
        if cached is not None:
            return cached
        path = self.path_for(encoder, texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        # An OS lock (flock): released when its holder dies, so a killed encode never leaves the others waiting.
        with filelock.FileLock(path.with_name(path.name + ".lock")):
            cached = self.load(encoder, texts)  # written by the process we waited for
            if cached is not None:
                return cached
            return self.save(encoder, texts, encoder.encode(texts, progress=progress))


CacheSpec = EmbeddingCache | str | os.PathLike[str] | bool | None
"""What ``cache=`` accepts: ``True`` (the default directory), ``False``/``None`` (no cache), a directory, a cache."""

_CACHE_CHOICES = "an EmbeddingCache, a directory, True or False"


def resolve_cache(cache: CacheSpec) -> EmbeddingCache | None:
    """An :class:`EmbeddingCache` from ``True`` (default directory), a directory or a cache; ``None`` when off.

    Raises:
        TypeError: ``cache`` is none of these (the message names its type).
    """
    check_type("cache", cache, (EmbeddingCache, str, os.PathLike, bool, type(None)), _CACHE_CHOICES)
    if cache is None or cache is False:
        return None
    if cache is True:
        return EmbeddingCache()
    if isinstance(cache, EmbeddingCache):
        return cache
    return EmbeddingCache(cache)


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder | str | os.PathLike[str] | None = None,
    *,
    cache: CacheSpec = True,
    progress: bool | None = None,
) -> np.ndarray:
    """Embed ``texts``, through the on-disk cache.

    Args:
        texts: the strings.
        encoder: an :class:`Encoder`, a local model path, or ``None`` for the default :class:`TextEncoder`.
        cache: ``True`` (the default cache directory), ``False``/``None`` (no cache), a directory, or an
            :class:`EmbeddingCache`.
        progress: progress bar for the encode (``None``: the encoder's own default).

    Returns:
        ``[len(texts), d]`` embeddings; a read-only memmap when cached.

    Example:
        >>> from activeuf_env.data.encoders import HashingEncoder
        >>> embed_texts(["hello", "world"], HashingEncoder(8), cache=False).shape
        (2, 8)
    """
    encoder = resolve_encoder(encoder)
    store = resolve_cache(cache)
    if store is None:
        return np.asarray(encoder.encode(check_texts(texts), progress=progress), dtype=np.float32)
    return store.get_or_encode(encoder, texts, progress=progress)


def compose_features(
    response_embeddings: np.ndarray,
    prompt_embeddings: np.ndarray,
    prompt_index: np.ndarray | None = None,
    *,
    composition: Composition = "response_product",
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Build response features from response and prompt embeddings (see the module docstring for the choice).

    Args:
        response_embeddings: ``[M, d]``.
        prompt_embeddings: ``[P, d]``.
        prompt_index: ``[M]`` row of ``prompt_embeddings`` for each response; ``None`` means ``P == M``, aligned.
        composition: ``"response_product"`` -> ``[r, sqrt(d)·(r⊙p)]`` (``D = 2d``, the default);
            ``"concat"`` -> ``[r, p]`` (``D = 2d``); ``"response"`` -> ``r`` (``D = d``).
        dtype: output dtype (float32 or float16); arithmetic is done in float32.

    Returns:
        ``[M, D]`` features.

    Raises:
        ValueError: unknown composition, or shapes that do not line up (the message gives both).

    Example:
        >>> r = np.array([[1.0, 0.0], [0.0, 1.0]]); p = np.array([[1.0, 0.0]])
        >>> compose_features(r, p, np.array([0, 0]), dtype=np.float64).round(3).tolist()
        [[1.0, 0.0, 1.414, 0.0], [0.0, 1.0, 0.0, 0.0]]
    """
    check_choice("composition", composition, COMPOSITIONS)
    response_embeddings, prompt_embeddings = np.asarray(response_embeddings), np.asarray(prompt_embeddings)
    if response_embeddings.ndim != 2 or prompt_embeddings.ndim != 2:
        raise ValueError(
            f"embeddings must be 2-D, got response shape {response_embeddings.shape} and prompt shape "
            f"{prompt_embeddings.shape}"
        )
    n, d = response_embeddings.shape
    if prompt_embeddings.shape[1] != d:
        raise ValueError(f"prompt embeddings have dimension {prompt_embeddings.shape[1]}, response embeddings {d}")
    if prompt_index is None:
        if prompt_embeddings.shape[0] != n:
            raise ValueError(
                f"without prompt_index, prompt embeddings need one row per response ({n}), got "
                f"{prompt_embeddings.shape[0]}"
            )
        prompt_index = np.arange(n)
    prompt_index = np.asarray(prompt_index, dtype=np.int64)
    if prompt_index.shape != (n,):
        raise ValueError(f"prompt_index must have shape ({n},), got {prompt_index.shape}")
    out = np.empty((n, d if composition == "response" else 2 * d), dtype=dtype)
    r = np.asarray(response_embeddings, dtype=np.float32)
    out[:, :d] = r
    if composition == "response":
        return out
    p = np.asarray(prompt_embeddings[prompt_index], dtype=np.float32)  # index first: a memmap stays on disk
    if composition == "concat":
        out[:, d:] = p
    else:
        p *= np.float32(np.sqrt(d))
        out[:, d:] = r * p
    return out


def encode_pool_texts(
    texts: PoolTexts,
    valid: np.ndarray,
    encoder: Encoder | str | os.PathLike[str] | None = None,
    *,
    cache: CacheSpec = True,
    composition: Composition = "response_product",
    dtype: np.dtype | type = np.float32,
    progress: bool | None = None,
) -> np.ndarray:
    """Features ``[N, K, D]`` of a pool's texts (e.g. to re-featurise a pool with another encoder).

    Prompts and the valid responses (in row-major slot order) are embedded through the cache and composed with
    :func:`compose_features`; padded slots get zero features.

    Args:
        texts: the pool's :class:`~activeuf_env.core.pool.PoolTexts`.
        valid: bool ``[N, K]``; only valid slots are encoded.
        encoder: as in :func:`embed_texts`.
        cache: as in :func:`embed_texts`.
        composition: as in :func:`compose_features`.
        dtype: feature dtype.
        progress: progress bar for long encodes.

    Example:
        >>> from activeuf_env.data.encoders import HashingEncoder
        >>> t = PoolTexts(["q"], [["yes", "no", ""]])
        >>> encode_pool_texts(t, np.array([[True, True, False]]), HashingEncoder(4), cache=False).shape
        (1, 3, 8)
    """
    valid = np.asarray(valid, dtype=bool)
    n, k = valid.shape
    if len(texts.prompts) != n or len(texts.responses) != n or any(len(r) != k for r in texts.responses):
        raise ValueError(f"texts must hold {n} prompts with {k} response slots each to match valid {valid.shape}")
    p_idx, slot = np.nonzero(valid)
    responses = [texts.responses[p][s] for p, s in zip(p_idx.tolist(), slot.tolist(), strict=True)]
    encoder = resolve_encoder(encoder)
    prompt_emb = embed_texts(texts.prompts, encoder, cache=cache, progress=progress)
    response_emb = embed_texts(responses, encoder, cache=cache, progress=progress)
    flat = compose_features(response_emb, prompt_emb, p_idx, composition=composition, dtype=dtype)
    features = np.zeros((n, k, flat.shape[1]), dtype=dtype)
    features[p_idx, slot] = flat
    return features
