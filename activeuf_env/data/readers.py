"""Readers of real preference data into a validated :class:`~activeuf_env.core.pool.ResponsePool`.

Two layouts are read:

**AUF ``PromptWithCompletions``** (:func:`read_auf_dataset`), as JSONL (optionally gzipped), Parquet, or a Hugging
Face ``datasets`` directory written by ``save_to_disk``. One row per prompt: ``prompt_id`` (str or int), ``prompt``
(a string, or a list of chat messages ``{role, content}``), ``completions``: a list of ``{model, response_text,
overall_score, ...}``; other fields (``source``, ``annotations``, ``critique``...) are ignored. ``overall_score`` is a
number or a numeric string (AUF stores it as a string). A chat-message prompt becomes text as follows: a single
message is its ``content``; several become ``"role: content"`` blocks joined by blank lines.

**Shared multi-model JSONL** (:func:`read_multimodel_jsonl`, :func:`read_alpaca_eval`; the layout of the shared data
directory, :mod:`activeuf_env.data.locate`): one row per prompt with ``prompt_id``, ``instruction`` and
``responses``: a list of ``{model, text, score}``, ``score`` being the judge's probability of preferring the
response over a fixed strong reference. Those probabilities bunch near 0 (78% of AlpacaEval's are below 0.01), so
by default they are mapped to clipped log-odds ``logit(clip(score, 1e-6, 1 - 1e-6))`` (range ±13.8). Why log-odds:
if the judge follows a Bradley-Terry model with the reference, ``logit P(i beats ref) = r_i - r_ref``, so
differences of transformed scores are Bradley-Terry reward differences between responses, ``sigmoid(s_i - s_j)``
being the modelled chance that ``i`` beats ``j``; it is monotone, so within-prompt rankings are unchanged. Why 1e-6:
the scores are rounded to six decimals, so 1e-6 is their resolution; a coarser clip would tie most weak responses
(the median score is 6.5e-5), while only the ~8% of scores printed as exactly 0 (and the 21 at exactly 1) tie at
the bounds. ``score_transform="probability"`` keeps the raw probabilities.

**Scores.** ``judge_scores`` is the dataset's score (after the transform above). These datasets have a judge score
only, so ``true_quality`` equals the judge score: the judge is then noise-free relative to "truth", and downstream
scores measure agreement with that judge. Where a dataset carries a second, stronger judge, name its completion
field with ``true_quality_field=`` and it becomes ``true_quality``.

**Slots.** ``slots="order"`` (the AUF default): ``K`` = the most completions any prompt has; a prompt's completions
fill slots ``0..n-1`` in file order, the rest are padding (``valid=False``, zero features and scores, model id 0).
``slots="model"`` (the shared-layout default): one slot per model, ``K`` = number of models, slot ``k`` holds the
response of ``model_names[k]`` (so ``model_ids[:, k] == k`` everywhere) and missing models are padding; a prompt with
two responses from one model is then malformed. ``model_names`` is the sorted union of the models in the kept rows.

**Features** (``features=``): ``None`` encodes texts with the default :class:`~activeuf_env.data.encoders.TextEncoder`
(the shared-layout readers first use ``prompt_embeddings.npy``/``response_embeddings.npy`` beside the data file;
one without the other is an error naming both); an :class:`~activeuf_env.data.encoders.Encoder` or a local model
directory (one holding ``config.json``) encodes with it through the on-disk cache (``cache=``); a
:class:`~activeuf_env.data.embeddings.PrecomputedEmbeddings`, or a directory holding the two ``.npy`` files, uses
precomputed embeddings (aligned with the file: one prompt row per file row, one response row per listed response,
skipped rows included; counts are checked). A directory holding neither is an error listing what it holds.
Embeddings are composed into features by :func:`~activeuf_env.data.embeddings.compose_features` (default
``[r, sqrt(d)·(r⊙p)]``, ``D = 2d``).

**Malformed rows** (unparseable JSON, a missing or mistyped field, a non-numeric score or one that is not finite
once stored as float32 (``nan``, ``1e39``), a score outside [0, 1] for log-odds, fewer than two responses, a
repeated prompt id, a repeated model under ``slots="model"``) raise ``ValueError`` naming the file, the line (JSONL,
1-based) or row (tables, 0-based) and the prompt id. With ``on_error="skip"`` they are left out and one
:class:`~activeuf_env.data.collect.MalformedRowWarning` gives their count and the first error; nothing is dropped
silently.

The steps live in their own modules: :mod:`~activeuf_env.data.formats` (record sources),
:mod:`~activeuf_env.data.rows` (parsing one row), :mod:`~activeuf_env.data.collect` (collecting the rows),
:mod:`~activeuf_env.data.assemble` (features and pool); :mod:`~activeuf_env.data.writers` writes the AUF layout.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from activeuf_env._validation import check_choice
from activeuf_env.core.pool import ResponsePool, load_pool
from activeuf_env.data.assemble import AssemblyOptions, FeatureSpec, build_pool
from activeuf_env.data.collect import Records, collect
from activeuf_env.data.embeddings import CacheSpec, Composition, PrecomputedEmbeddings, resolve_cache
from activeuf_env.data.encoders import Encoder, resolve_encoder
from activeuf_env.data.formats import DatasetLayout, auf_rows, is_jsonl, json_rows, sniff_layout
from activeuf_env.data.locate import holds_alpaca_eval, locate_alpaca_eval
from activeuf_env.data.rows import (
    DEFAULT_SCORE_CLIP,
    ON_ERROR,
    SCORE_TRANSFORMS,
    SLOTS,
    OnError,
    ScoreTransform,
    Slots,
    parse_auf_row,
    parse_multimodel_row,
    transform_scores,
)

__all__ = [
    "cache_dataset_embeddings",
    "load_pool_from_path",
    "read_alpaca_eval",
    "read_auf_dataset",
    "read_multimodel_jsonl",
]


def _records(
    path: Path,
    layout: DatasetLayout,
    *,
    on_error: OnError,
    slots: Slots,
    true_quality_field: str | None = None,
    split: str | None = None,
    score_transform: ScoreTransform = "probability",
) -> Records:
    """The checked rows of a dataset file in either layout (the path every reader takes)."""
    on_error = check_choice("on_error", on_error, ON_ERROR)
    slots = check_choice("slots", slots, SLOTS)
    if layout == "auf":
        rows = auf_rows(path, split)
        parse = functools.partial(parse_auf_row, true_quality_field=true_quality_field)
        list_key = "completions"
    else:
        score_transform = check_choice("score_transform", score_transform, SCORE_TRANSFORMS)
        if not path.is_file():
            raise FileNotFoundError(f"no dataset at {str(path)!r}")
        rows = json_rows(path)
        parse = functools.partial(parse_multimodel_row, score_transform=score_transform)
        list_key = "responses"
    # stacklevel 3: a skipped-rows warning points at the caller of the public reader
    return collect(rows, parse, source=str(path), list_key=list_key, slots=slots, on_error=on_error, stacklevel=3)


def read_auf_dataset(
    path: str | os.PathLike[str],
    *,
    features: FeatureSpec = None,
    on_error: OnError = "raise",
    slots: Slots = "order",
    true_quality_field: str | None = None,
    split: str | None = None,
    cache: CacheSpec = True,
    composition: Composition = "response_product",
    dtype: np.dtype | type = np.float32,
    with_texts: bool = True,
    progress: bool | None = None,
) -> ResponsePool:
    """Read an AUF ``PromptWithCompletions`` dataset into a pool.

    Args:
        path: a ``.jsonl``/``.jsonl.gz`` file, a ``.parquet`` file or a ``datasets`` ``save_to_disk`` directory.
        features: where features come from (module docstring): ``None`` = the default text encoder; an
            ``Encoder`` or model path; ``PrecomputedEmbeddings`` or a directory of ``prompt_embeddings.npy`` and
            ``response_embeddings.npy``.
        on_error: ``"raise"`` a ``ValueError`` on the first malformed row, or ``"skip"`` malformed rows with one
            :class:`~activeuf_env.data.collect.MalformedRowWarning` giving the count.
        slots: ``"order"`` (``K`` = most completions per prompt, file order) or ``"model"`` (one slot per model).
        true_quality_field: a completion field holding a second, stronger judge's score, used as
            ``true_quality``; ``None`` (default) sets ``true_quality`` to the judge score ``overall_score``.
        split: the split of a ``DatasetDict`` directory (default: its only split, else ``"train"``).
        cache: embedding cache for encoded texts (``True``: default directory; ``False``: none; or a directory).
        composition: how response and prompt embeddings become features (``compose_features``).
        dtype: feature dtype (float32 or float16).
        with_texts: keep prompt and response strings in ``pool.texts``.
        progress: progress bar for long encodes (``None``: automatic).

    Returns:
        A validated :class:`~activeuf_env.core.pool.ResponsePool` with prompts in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a malformed row (``on_error="raise"``; names the line or row and the prompt id), embeddings
            whose row counts do not match the file (names both counts), or no usable row.

    Example:
        >>> import tempfile, pathlib
        >>> from activeuf_env.data.encoders import HashingEncoder
        >>> tmp = tempfile.TemporaryDirectory(); path = pathlib.Path(tmp.name) / "d.jsonl"
        >>> _ = path.write_text('{"prompt_id": "p0", "prompt": "Hi?", "completions": ['
        ...     '{"model": "a", "response_text": "Hello.", "overall_score": "4.5"},'
        ...     '{"model": "b", "response_text": "Go away.", "overall_score": 1}]}\\n')
        >>> pool = read_auf_dataset(path, features=HashingEncoder(8), cache=False)
        >>> pool.judge_scores.tolist(), pool.model_names, pool.features.shape
        ([[4.5, 1.0]], ['a', 'b'], (1, 2, 16))
        >>> tmp.cleanup()
    """
    path = Path(path)
    records = _records(path, "auf", on_error=on_error, slots=slots, true_quality_field=true_quality_field, split=split)
    scores = np.asarray(records.scores, dtype=np.float32)
    options = AssemblyOptions(slots, cache, composition, dtype, with_texts, progress)
    return build_pool(records, scores, features, options)


def read_multimodel_jsonl(
    path: str | os.PathLike[str],
    *,
    features: FeatureSpec = None,
    on_error: OnError = "raise",
    slots: Slots = "model",
    score_transform: ScoreTransform = "logit",
    score_clip: float = DEFAULT_SCORE_CLIP,
    cache: CacheSpec = True,
    composition: Composition = "response_product",
    dtype: np.dtype | type = np.float32,
    with_texts: bool = True,
    progress: bool | None = None,
) -> ResponsePool:
    """Read the shared multi-model JSONL layout (``prompt_id``, ``instruction``, ``responses: [{model, text, score}]``).

    Args:
        path: the ``.jsonl`` or ``.jsonl.gz`` file.
        features: as in :func:`read_auf_dataset`; ``None`` uses ``prompt_embeddings.npy`` and
            ``response_embeddings.npy`` beside ``path`` when they are there, else the default text encoder.
        on_error: ``"raise"`` or ``"skip"`` (as in :func:`read_auf_dataset`).
        slots: ``"model"`` (default: one slot per model, missing models padded) or ``"order"``.
        score_transform: ``"logit"`` (clipped log-odds, default) or ``"probability"`` (raw); see
            :func:`~activeuf_env.data.rows.transform_scores`.
        score_clip: the clip of the log-odds transform.
        cache: as in :func:`read_auf_dataset`.
        composition: as in :func:`read_auf_dataset`.
        dtype: feature dtype.
        with_texts: keep prompt and response strings in ``pool.texts``.
        progress: progress bar for long encodes.

    Returns:
        A validated pool; ``judge_scores`` = ``true_quality`` = transformed scores.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: as in :func:`read_auf_dataset`.
    """
    path = Path(path)
    records = _records(path, "multimodel", on_error=on_error, slots=slots, score_transform=score_transform)
    if features is None and PrecomputedEmbeddings.found_in(path.parent):
        features = path.parent  # resolve_features loads both files, or names the one that is missing
    scores = transform_scores(np.asarray(records.scores), score_transform, score_clip)
    options = AssemblyOptions(slots, cache, composition, dtype, with_texts, progress)
    return build_pool(records, scores, features, options)


def read_alpaca_eval(data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> ResponsePool:
    """Read the shared AlpacaEval multi-model data: 805 prompts, ``K = 57`` slots (one per model).

    Features default to the shipped all-MiniLM-L6-v2 embeddings (no encoder needed); scores are the judge's
    probability of beating the ``gpt4_1106_preview`` reference, as clipped log-odds (module docstring).

    Args:
        data_dir: the shared data directory (or its ``alpaca_eval_multimodel/`` subdirectory); ``None`` is
            :func:`~activeuf_env.data.locate.default_shared_data_dir` (``$ACTIVEUF_SHARED_DATA`` or
            ``../shared/data``).
        **kwargs: passed to :func:`read_multimodel_jsonl` (``features``, ``score_transform``, ``dtype``...).

    Raises:
        FileNotFoundError: the data is absent (the message names the expected path).
    """
    return read_multimodel_jsonl(locate_alpaca_eval(data_dir), **kwargs)


def load_pool_from_path(path: str | os.PathLike[str], **kwargs: Any) -> ResponsePool:
    """Load a pool from any supported file, dispatching on its layout.

    - ``.npz``: a pool saved by :meth:`ResponsePool.save` (``kwargs``: ``mmap_features``);
    - a directory holding ``alpaca_eval_multimodel.jsonl.gz`` (or its parent): :func:`read_alpaca_eval`;
    - a ``datasets`` directory or a ``.parquet`` file: :func:`read_auf_dataset`;
    - a ``.jsonl[.gz]`` file: :func:`read_auf_dataset` when its first row has ``completions``,
      :func:`read_multimodel_jsonl` when it has ``instruction`` and ``responses``.

    Args:
        path: the file or directory.
        **kwargs: passed to the chosen reader.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the layout cannot be recognised (the message says what was expected).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no dataset or pool at {str(path)!r}")
    if path.is_dir():
        return read_alpaca_eval(path, **kwargs) if holds_alpaca_eval(path) else read_auf_dataset(path, **kwargs)
    if path.suffix.lower() == ".npz":
        return load_pool(path, **kwargs)
    if path.suffix.lower() == ".parquet":
        return read_auf_dataset(path, **kwargs)
    if is_jsonl(path):
        reader = read_auf_dataset if sniff_layout(path) == "auf" else read_multimodel_jsonl
        return reader(path, **kwargs)
    raise ValueError(
        f"cannot tell the format of {str(path)!r}: expected .npz, .jsonl[.gz], .parquet, a datasets directory or "
        "the shared AlpacaEval directory"
    )


def cache_dataset_embeddings(
    path: str | os.PathLike[str],
    *,
    encoder: Encoder | str | os.PathLike[str] | None = None,
    cache: CacheSpec = True,
    on_error: OnError = "raise",
    slots: Slots = "order",
    split: str | None = None,
    progress: bool | None = True,
) -> tuple[Path, Path]:
    """Encode a dataset's prompts and responses into the embedding cache, so later reads skip the encoder.

    Reading the same file later with the same ``encoder``, ``cache`` and ``on_error`` hits the cache.

    Args:
        path: an AUF dataset (JSONL, Parquet, datasets directory) or a shared multi-model JSONL file.
        encoder: the encoder (default: the offline all-MiniLM-L6-v2
            :class:`~activeuf_env.data.encoders.TextEncoder`) or a local model path.
        cache: the cache (``True``: :func:`~activeuf_env.data.embeddings.default_cache_dir`; a directory; or an
            ``EmbeddingCache``).
        on_error: as in :func:`read_auf_dataset` (decides which rows are encoded).
        slots: as in :func:`read_auf_dataset` (``"model"`` marks rows with a repeated model as malformed).
        split: the split of a ``DatasetDict`` directory.
        progress: progress bar (default on).

    Returns:
        ``(prompt_cache_file, response_cache_file)``, both memory-mappable ``.npy`` files.

    Raises:
        ValueError: ``cache`` is off (``False``/``None``): there would be nowhere to put the embeddings.
    """
    store = resolve_cache(cache)
    if store is None:
        raise ValueError(
            f"cache_dataset_embeddings needs a cache (True, a directory or an EmbeddingCache), got {cache!r}"
        )
    path = Path(path).expanduser()
    multimodel = path.is_file() and is_jsonl(path) and sniff_layout(path) == "multimodel"
    records = _records(path, "multimodel" if multimodel else "auf", on_error=on_error, slots=slots, split=split)
    resolved = resolve_encoder(encoder)
    for texts in (records.prompts, records.texts):
        store.get_or_encode(resolved, texts, progress=progress)
    return store.path_for(resolved, records.prompts), store.path_for(resolved, records.texts)
