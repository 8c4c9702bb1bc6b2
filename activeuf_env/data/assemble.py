"""From collected rows to a pool: embeddings, features, slots and scores.

:func:`build_pool` embeds the prompts and responses of :class:`~activeuf_env.data.collect.Records` (with an encoder
through the cache, or by picking the rows of precomputed embeddings), lays the responses out in ``K`` slots per
prompt (by file order or by model), composes the features chunk by chunk straight into the ``[N, K, D]`` array, and
returns a validated :class:`~activeuf_env.core.pool.ResponsePool`. The choices are described in
:mod:`activeuf_env.data.readers`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activeuf_env._validation import check_type
from activeuf_env.core.pool import PoolTexts, ResponsePool
from activeuf_env.data.collect import Records
from activeuf_env.data.embeddings import (
    EMBEDDING_FILES,
    CacheSpec,
    Composition,
    PrecomputedEmbeddings,
    compose_features,
    embed_texts,
)
from activeuf_env.data.encoders import MODEL_CONFIG_FILE, Encoder, is_model_dir, resolve_encoder
from activeuf_env.data.rows import Slots

__all__ = ["AssemblyOptions", "FeatureSpec", "build_pool", "resolve_features"]

FeatureSpec = Encoder | PrecomputedEmbeddings | str | os.PathLike[str] | None
"""What ``features=`` accepts (see :mod:`activeuf_env.data.readers`)."""

_FEATURE_CHOICES = "an Encoder, PrecomputedEmbeddings, a model path, an embeddings directory or None"
_FEATURE_DIRS = (
    f"a directory of precomputed embeddings ({' and '.join(EMBEDDING_FILES)}) or of a transformers model "
    f"({MODEL_CONFIG_FILE} and its tokenizer files)"
)
_COMPOSE_CHUNK = 8192


@dataclass(frozen=True)
class AssemblyOptions:
    """How records become a pool: the readers' ``slots``, ``cache``, ``composition``, ``dtype``, ``with_texts`` and
    ``progress`` arguments, as they document them."""

    slots: Slots
    cache: CacheSpec
    composition: Composition
    dtype: np.dtype | type
    with_texts: bool
    progress: bool | None


def resolve_features(features: FeatureSpec) -> Encoder | PrecomputedEmbeddings:
    """Precomputed embeddings (given, or a directory holding the two ``.npy`` files) or an encoder.

    A local directory is recognised by what it holds: ``prompt_embeddings.npy`` and ``response_embeddings.npy``
    (precomputed embeddings) or ``config.json`` (a transformers model, with its tokenizer files). A string that
    names no local path is taken for the id of a model in the local Hugging Face cache.

    Raises:
        TypeError: ``features`` is none of what ``features=`` accepts (the message names its type).
        FileNotFoundError: a local path that does not exist, or a directory holding one of the two embeddings files
            but not the other (the message names both).
        ValueError: a file, or a directory holding neither (the message lists what it holds).
    """
    check_type("features", features, (PrecomputedEmbeddings, str, os.PathLike, Encoder, type(None)), _FEATURE_CHOICES)
    if isinstance(features, PrecomputedEmbeddings):
        return features
    if isinstance(features, (str, os.PathLike)):
        path = Path(features).expanduser()
        if path.exists() or path.is_absolute() or isinstance(features, os.PathLike):
            return _features_at(path)
    return resolve_encoder(features)


def _features_at(path: Path) -> Encoder | PrecomputedEmbeddings:
    """The features a local path holds, told by its files rather than by what it is not."""
    if not path.exists():
        raise FileNotFoundError(f"features: nothing at {str(path)!r}; expected {_FEATURE_DIRS}")
    if not path.is_dir():
        raise ValueError(f"features: {str(path)!r} is a file; expected {_FEATURE_DIRS}")
    found = PrecomputedEmbeddings.found_in(path)
    if len(found) == len(EMBEDDING_FILES):
        return PrecomputedEmbeddings.from_dir(path)
    if found:
        (missing,) = set(EMBEDDING_FILES) - set(found)
        raise FileNotFoundError(
            f"features: {str(path)!r} holds {found[0]} but not {missing}; precomputed embeddings need both"
        )
    if is_model_dir(path):
        return resolve_encoder(path)
    raise ValueError(f"features: {str(path)!r} holds {_listing(path)}; expected {_FEATURE_DIRS}")


def _listing(directory: Path, shown: int = 8) -> str:
    names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in directory.iterdir())
    if not names:
        return "nothing"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _precomputed_rows(records: Records, embeddings: PrecomputedEmbeddings) -> tuple[np.ndarray, np.ndarray]:
    n_prompts, n_responses = embeddings.prompts.shape[0], embeddings.responses.shape[0]
    if n_prompts != records.n_file_rows:
        raise ValueError(
            f"prompt embeddings have {n_prompts} rows but {records.source} has {records.n_file_rows} rows "
            "(expected one prompt embedding per row, in file order)"
        )
    if n_responses != records.n_file_responses:
        raise ValueError(
            f"response embeddings have {n_responses} rows but {records.source} lists {records.n_file_responses} "
            "responses (expected one response embedding per response, in file order)"
        )
    prompt_rows = np.asarray(records.prompt_rows, dtype=np.int64)
    response_rows = np.concatenate(records.response_rows)
    prompts = embeddings.prompts if len(prompt_rows) == n_prompts else embeddings.prompts[prompt_rows]
    responses = embeddings.responses if len(response_rows) == n_responses else embeddings.responses[response_rows]
    return np.asarray(prompts), np.asarray(responses)


def _embed(
    records: Records, features: Encoder | PrecomputedEmbeddings, cache: CacheSpec, progress: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(features, PrecomputedEmbeddings):
        return _precomputed_rows(records, features)
    prompts = embed_texts(records.prompts, features, cache=cache, progress=progress)
    responses = embed_texts(records.texts, features, cache=cache, progress=progress)
    return prompts, responses


def _layout(records: Records, slots: Slots) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(model_names, model_ids [N, K], prompt_of [M], slot_of [M])`` for the flat responses."""
    counts = np.asarray(records.counts, dtype=np.int64)
    n = len(counts)
    model_names = sorted(set(records.models))
    name_to_id = {name: i for i, name in enumerate(model_names)}
    model_of = np.fromiter((name_to_id[m] for m in records.models), dtype=np.int64, count=len(records.models))
    prompt_of = np.repeat(np.arange(n), counts)
    if slots == "model":
        slot_of, k = model_of, len(model_names)
        model_ids = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k)).copy()
    else:
        slot_of = np.arange(len(model_of)) - np.repeat(np.cumsum(counts) - counts, counts)
        k = int(counts.max())
        model_ids = np.zeros((n, k), dtype=np.int64)
        model_ids[prompt_of, slot_of] = model_of
    return model_names, model_ids, prompt_of, slot_of


def _fill_features(
    prompt_emb: np.ndarray,
    response_emb: np.ndarray,
    prompt_of: np.ndarray,
    slot_of: np.ndarray,
    shape: tuple[int, int],
    composition: Composition,
    dtype: np.dtype | type,
) -> np.ndarray:
    """Compose features chunk by chunk straight into the ``[N, K, D]`` array (no flat ``[M, D]`` copy)."""
    features = np.zeros((0, 0, 0), dtype=dtype)
    for start in range(0, len(prompt_of), _COMPOSE_CHUNK):
        rows = slice(start, start + _COMPOSE_CHUNK)
        flat = compose_features(response_emb[rows], prompt_emb, prompt_of[rows], composition=composition, dtype=dtype)
        if start == 0:
            features = np.zeros((*shape, flat.shape[1]), dtype=dtype)
        features[prompt_of[rows], slot_of[rows]] = flat
    return features


def build_pool(
    records: Records, judge_scores: np.ndarray, features: FeatureSpec, options: AssemblyOptions
) -> ResponsePool:
    """The pool of the collected rows.

    Args:
        records: the kept rows.
        judge_scores: float32 ``[M]``, one per kept response (after any score transform).
        features: what ``features=`` of the readers accepts.
        options: the readers' other arguments.

    Raises:
        ValueError: precomputed embeddings whose row counts do not match the file (names both counts).
    """
    prompt_emb, response_emb = _embed(records, resolve_features(features), options.cache, options.progress)
    model_names, model_ids, prompt_of, slot_of = _layout(records, options.slots)
    n, k = model_ids.shape
    scores = np.zeros((n, k), dtype=np.float32)
    scores[prompt_of, slot_of] = judge_scores
    true_quality = scores.copy()
    if records.true_scores is not None:
        true_quality[prompt_of, slot_of] = np.asarray(records.true_scores, dtype=np.float32)
    valid = np.zeros((n, k), dtype=bool)
    valid[prompt_of, slot_of] = True
    texts = None
    if options.with_texts:
        responses = [[""] * k for _ in range(n)]
        for p, s, text in zip(prompt_of.tolist(), slot_of.tolist(), records.texts, strict=True):
            responses[p][s] = text
        texts = PoolTexts(list(records.prompts), responses)
    return ResponsePool(
        features=_fill_features(
            prompt_emb, response_emb, prompt_of, slot_of, (n, k), options.composition, options.dtype
        ),
        judge_scores=scores,
        true_quality=true_quality,
        model_ids=model_ids,
        valid=valid,
        model_names=model_names,
        prompt_ids=list(records.prompt_ids),
        texts=texts,
    )
