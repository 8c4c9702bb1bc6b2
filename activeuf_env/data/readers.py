"""Readers of real preference data into a validated :class:`~activeuf_env.core.pool.ResponsePool`.

Two layouts are read:

**AUF ``PromptWithCompletions``** (:func:`read_auf_dataset`), as JSONL (optionally gzipped), Parquet, or a Hugging
Face ``datasets`` directory written by ``save_to_disk``. One row per prompt: ``prompt_id`` (str or int), ``prompt``
(a string, or a list of chat messages ``{role, content}``), ``completions``: a list of ``{model, response_text,
overall_score, ...}``; other fields (``source``, ``annotations``, ``critique``...) are ignored. ``overall_score`` is a
number or a numeric string (AUF stores it as a string). A chat-message prompt becomes text as follows: a single
message is its ``content``; several become ``"role: content"`` blocks joined by blank lines.

**Shared multi-model JSONL** (:func:`read_multimodel_jsonl`, :func:`read_alpaca_eval`; see
``../shared/data/README.md``): one row per prompt with ``prompt_id``, ``instruction`` and ``responses``: a list of
``{model, text, score}``, ``score`` being the judge's probability of preferring the response over a fixed strong
reference. Those probabilities bunch near 0 (78% of AlpacaEval's are below 0.01), so by default they are mapped
to clipped log-odds ``logit(clip(score, 1e-6, 1 - 1e-6))`` (range ±13.8). Why log-odds: if the judge follows a
Bradley-Terry model with the reference, ``logit P(i beats ref) = r_i - r_ref``, so differences of transformed
scores are Bradley-Terry reward differences between responses, ``sigmoid(s_i - s_j)`` being the modelled chance
that ``i`` beats ``j``; it is monotone, so within-prompt rankings are unchanged. Why 1e-6: the scores are rounded
to six decimals, so 1e-6 is their resolution; a coarser clip would tie most weak responses (the median score is
6.5e-5), while only the ~8% of scores printed as exactly 0 (and the 21 at exactly 1) tie at the bounds.
``score_transform="probability"`` keeps the raw probabilities.

**Scores.** ``judge_scores`` is the dataset's score (after the transform above). These datasets have a judge score
only, so ``true_quality`` equals the judge score: the judge is then noise-free relative to "truth", and downstream
scores measure agreement with that judge. Where a dataset carries a second, stronger judge, name its completion
field with ``true_quality_field=`` and it becomes ``true_quality``.

**Slots.** ``slots="order"`` (the AUF default): ``K`` = the most completions any prompt has; a prompt's completions
fill slots ``0..n-1`` in file order, the rest are padding (``valid=False``, zero features and scores, model id 0).
``slots="model"`` (the shared-layout default): one slot per model, ``K`` = number of models, slot ``k`` holds the
response of ``model_names[k]`` (so ``model_ids[:, k] == k`` everywhere) and missing models are padding; a prompt with
two responses from one model is then malformed. ``model_names`` is the sorted union of the models in the kept rows.

**Features** (``features=``): ``None`` encodes texts with the default :class:`~activeuf_env.data.features.TextEncoder`
(the shared-layout readers first use ``prompt_embeddings.npy``/``response_embeddings.npy`` beside the data file
when both exist); an :class:`~activeuf_env.data.features.Encoder` or a local model path encodes with it through the
on-disk cache (``cache=``); a :class:`~activeuf_env.data.features.PrecomputedEmbeddings`, or a directory holding the two
``.npy`` files, uses precomputed embeddings (aligned with the file: one prompt row per file row, one response row
per listed response, skipped rows included; counts are checked). Embeddings are composed into features by
:func:`~activeuf_env.data.features.compose_features` (default ``[r, sqrt(d)·(r⊙p)]``, ``D = 2d``).

**Malformed rows** (unparseable JSON, a missing or mistyped field, a non-numeric or non-finite score, a score
outside [0, 1] for log-odds, fewer than two responses, a repeated prompt id, a repeated model under
``slots="model"``) raise ``ValueError`` naming the file, the line (JSONL, 1-based) or row (tables, 0-based) and the
prompt id. With ``on_error="skip"`` they are left out and one :class:`MalformedRowWarning` gives their count and the
first error; nothing is dropped silently.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from activeuf_env.core.pool import PoolTexts, ResponsePool, load_pool
from activeuf_env.data.features import (
    CacheSpec,
    Composition,
    Encoder,
    PrecomputedEmbeddings,
    compose_features,
    embed_texts,
    resolve_cache,
    resolve_encoder,
)

__all__ = [
    "ALPACA_EVAL_DIRNAME",
    "ALPACA_EVAL_FILENAME",
    "DEFAULT_SCORE_CLIP",
    "SHARED_DATA_ENV",
    "DatasetPool",
    "FeatureSpec",
    "MalformedRowWarning",
    "cache_dataset_embeddings",
    "default_shared_data_dir",
    "load_pool_from_path",
    "locate_alpaca_eval",
    "pool_to_auf_records",
    "read_alpaca_eval",
    "read_auf_dataset",
    "read_multimodel_jsonl",
    "transform_scores",
    "write_auf_dataset",
]

SHARED_DATA_ENV = "ACTIVEUF_SHARED_DATA"
"""Environment variable naming the shared data directory (the one holding ``alpaca_eval_multimodel/``)."""

ALPACA_EVAL_DIRNAME = "alpaca_eval_multimodel"
ALPACA_EVAL_FILENAME = "alpaca_eval_multimodel.jsonl.gz"

DEFAULT_SCORE_CLIP = 1e-6
"""Clip of win probabilities before log-odds: the six-decimal resolution of the shared scores."""

_PROMPT_EMB = "prompt_embeddings.npy"
_RESPONSE_EMB = "response_embeddings.npy"

OnError = Literal["raise", "skip"]
Slots = Literal["order", "model"]
ScoreTransform = Literal["logit", "probability"]
FeatureSpec = Encoder | PrecomputedEmbeddings | str | os.PathLike[str] | None
"""What ``features=`` accepts (see the module docstring)."""


class MalformedRowWarning(UserWarning):
    """Rows of a dataset were skipped (``on_error="skip"``); the message gives their count and the first error."""


# --------------------------------------------------------------------------------------------------------------------
# locating the shared data


def default_shared_data_dir() -> Path:
    """The shared data directory: ``$ACTIVEUF_SHARED_DATA``, else ``../shared/data`` beside the project checkout.

    The checkout is found from this package's location (an editable install) and, failing that, from the working
    directory (``../shared/data`` or ``./shared/data``). When none exists the first candidate is returned, so errors
    name where the data was expected.
    """
    if os.environ.get(SHARED_DATA_ENV):
        return Path(os.environ[SHARED_DATA_ENV]).expanduser()
    candidates = [
        Path(__file__).resolve().parents[2] / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
        Path.cwd() / "shared" / "data",
    ]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def locate_alpaca_eval(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``alpaca_eval_multimodel.jsonl.gz``.

    Args:
        data_dir: the shared data directory or its ``alpaca_eval_multimodel/`` subdirectory; ``None`` is
            :func:`default_shared_data_dir`.

    Raises:
        FileNotFoundError: the file is absent; the message names the expected path and how to point at the data.
    """
    base = default_shared_data_dir() if data_dir is None else Path(data_dir).expanduser()
    for candidate in (base / ALPACA_EVAL_FILENAME, base / ALPACA_EVAL_DIRNAME / ALPACA_EVAL_FILENAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"AlpacaEval multi-model data not found: expected {str(base / ALPACA_EVAL_DIRNAME / ALPACA_EVAL_FILENAME)!r}. "
        f"Put the shared data beside the checkout (../shared/data), set ${SHARED_DATA_ENV}, or pass data_dir="
    )


# --------------------------------------------------------------------------------------------------------------------
# row parsing


class _RowError(Exception):
    """A malformed row; the collector adds the location and prompt id."""


@dataclass(frozen=True)
class _Unparseable:
    message: str


@dataclass
class _Row:
    prompt_id: str
    prompt: str
    models: list[str]
    texts: list[str]
    scores: list[float]
    true_scores: list[float] | None = None


def _require(record: Mapping[str, Any], key: str, what: str = "row") -> Any:
    if key not in record:
        raise _RowError(f"{what} is missing field {key!r} (has {sorted(record)})")
    return record[key]


def _require_str(record: Mapping[str, Any], key: str, what: str) -> str:
    value = _require(record, key, what)
    if not isinstance(value, str):
        raise _RowError(f"{what} field {key!r} must be a string, got {type(value).__name__} {value!r:.60}")
    return value


def _require_list(record: Mapping[str, Any], key: str) -> list[Any]:
    value = _require(record, key)
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise _RowError(f"field {key!r} must be a list, got {type(value).__name__}")
    return list(value)


def _require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _RowError(f"{what} must be an object, got {type(value).__name__} {value!r:.60}")
    return value


def _parse_prompt_id(record: Mapping[str, Any]) -> str:
    value = _require(record, "prompt_id")
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)) or value == "":
        raise _RowError(f"prompt_id must be a non-empty string or an integer, got {value!r:.60}")
    return str(value)


def _prompt_text(value: Any) -> str:
    """A prompt given as a string or as chat messages, as one string (see the module docstring)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
        raise _RowError(f"prompt must be a string or a non-empty list of chat messages, got {value!r:.60}")
    messages = []
    for i, message in enumerate(value):
        message = _require_mapping(message, f"prompt message {i}")
        what = f"prompt message {i}"
        messages.append((_require_str(message, "role", what), _require_str(message, "content", what)))
    if len(messages) == 1:
        return messages[0][1]
    return "\n\n".join(f"{role}: {content}" for role, content in messages)


def _parse_score(value: Any, what: str) -> float:
    """A finite float from a number or a numeric string."""
    if isinstance(value, (bool, np.bool_)):
        raise _RowError(f"{what} must be a number or a numeric string, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        score = float(value)
    elif isinstance(value, str):
        try:
            score = float(value.strip())
        except ValueError:
            raise _RowError(f"{what} must be a number or a numeric string, got {value!r:.60}") from None
    else:
        raise _RowError(f"{what} must be a number or a numeric string, got {type(value).__name__} {value!r:.60}")
    if not math.isfinite(score):
        raise _RowError(f"{what} must be finite, got {value!r}")
    return score


def _parse_auf_row(record: Any, true_quality_field: str | None) -> _Row:
    record = _require_mapping(record, "row")
    row = _Row(_parse_prompt_id(record), _prompt_text(_require(record, "prompt")), [], [], [])
    row.true_scores = [] if true_quality_field else None
    for i, completion in enumerate(_require_list(record, "completions")):
        what = f"completion {i}"
        completion = _require_mapping(completion, what)
        row.models.append(_require_str(completion, "model", what))
        row.texts.append(_require_str(completion, "response_text", what))
        row.scores.append(_parse_score(_require(completion, "overall_score", what), f"{what} overall_score"))
        if row.true_scores is not None and true_quality_field is not None:
            value = _require(completion, true_quality_field, what)
            row.true_scores.append(_parse_score(value, f"{what} {true_quality_field}"))
    return row


def _parse_multimodel_row(record: Any, score_transform: ScoreTransform) -> _Row:
    record = _require_mapping(record, "row")
    row = _Row(_parse_prompt_id(record), _require_str(record, "instruction", "row"), [], [], [])
    for i, response in enumerate(_require_list(record, "responses")):
        what = f"response {i}"
        response = _require_mapping(response, what)
        row.models.append(_require_str(response, "model", what))
        row.texts.append(_require_str(response, "text", what))
        score = _parse_score(_require(response, "score", what), f"{what} score")
        if score_transform == "logit" and not 0.0 <= score <= 1.0:
            raise _RowError(f"{what} score must be a probability in [0, 1] for log-odds, got {score!r}")
        row.scores.append(score)
    return row


def transform_scores(
    scores: np.ndarray, transform: ScoreTransform = "logit", clip: float = DEFAULT_SCORE_CLIP
) -> np.ndarray:
    """Map win probabilities against a reference to judge scores (see the module docstring for the choice).

    Args:
        scores: probabilities in [0, 1].
        transform: ``"logit"`` -> ``log(q / (1 - q))`` with ``q = clip(score, clip, 1 - clip)``;
            ``"probability"`` -> unchanged.
        clip: the clip for ``"logit"``, in (0, 0.5).

    Returns:
        float32 array of the same shape.

    Example:
        >>> transform_scores(np.array([0.0, 0.5, 1.0])).astype(float).round(2).tolist()
        [-13.82, 0.0, 13.82]
    """
    if transform not in ("logit", "probability"):
        raise ValueError(f"score_transform must be 'logit' or 'probability', got {transform!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if transform == "probability":
        return scores.astype(np.float32)
    if not 0.0 < clip < 0.5:
        raise ValueError(f"score clip must lie in (0, 0.5), got {clip!r}")
    q = np.clip(scores, clip, 1.0 - clip)
    return (np.log(q) - np.log1p(-q)).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------------
# row sources


def _open_text(path: Path) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _iter_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    """``(location, record)`` per non-blank line; a line that is not JSON yields an :class:`_Unparseable`."""
    with _open_text(path) as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield f"line {lineno}", json.loads(line)
            except json.JSONDecodeError as err:
                yield f"line {lineno}", _Unparseable(f"invalid JSON: {err}")


def _is_json_array(path: Path) -> bool:
    """A ``.json`` file whose first non-blank character is ``[`` holds one JSON array of rows, not JSON lines."""
    if not path.name.lower().endswith((".json", ".json.gz")):
        return False
    with _open_text(path) as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped.startswith("[")
    return False


def _json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """Rows of a JSON-lines file, or of a ``.json`` file holding one array of rows."""
    return _iter_table(_load_json_array(path)) if _is_json_array(path) else _iter_jsonl(path)


def _load_json_array(path: Path) -> list[Any]:
    with _open_text(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{str(path)!r} is not valid JSON: {err}") from None


def _iter_table(records: Sequence[Any]) -> Iterator[tuple[str, Any]]:
    for i, record in enumerate(records):
        yield f"row {i} (0-based)", record


def _is_hf_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    )


def _load_hf_records(path: Path, split: str | None) -> list[Any]:
    try:
        import datasets
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "reading a Hugging Face datasets directory needs 'datasets' (pip install 'activeuf-env[data]')"
        ) from err
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        if split is None:
            if len(names) != 1 and "train" not in names:
                raise ValueError(f"{str(path)!r} holds splits {names}; pass split= to choose one")
            split = names[0] if len(names) == 1 else "train"
        if split not in loaded:
            raise ValueError(f"split {split!r} is not in {str(path)!r}; it holds {names}")
        loaded = loaded[split]
    elif split is not None:
        raise ValueError(f"{str(path)!r} is a single Dataset, not a DatasetDict; got split={split!r}")
    return loaded.to_list()


def _load_parquet_records(path: Path) -> list[Any]:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("reading Parquet needs 'pyarrow' (pip install 'activeuf-env[data]')") from err
    return pq.read_table(path).to_pylist()


def _is_jsonl(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz"))


def _auf_rows(path: Path, split: str | None) -> Iterator[tuple[str, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"no dataset at {str(path)!r}")
    if path.is_dir():
        if not _is_hf_dir(path):
            raise ValueError(
                f"{str(path)!r} is a directory but not a Hugging Face datasets directory (no dataset_info.json, "
                "state.json or dataset_dict.json); expected a .jsonl[.gz], .parquet or save_to_disk directory"
            )
        return _iter_table(_load_hf_records(path, split))
    if path.suffix.lower() == ".parquet":
        return _iter_table(_load_parquet_records(path))
    if _is_jsonl(path):
        return _json_rows(path)
    raise ValueError(
        f"cannot tell the format of {str(path)!r}: expected a .jsonl[.gz], .parquet or a datasets directory"
    )


# --------------------------------------------------------------------------------------------------------------------
# collecting rows


@dataclass
class _Records:
    """Parsed rows, flattened, with their alignment to the file for precomputed embeddings."""

    source: str
    prompt_ids: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    true_scores: list[float] | None = None
    counts: list[int] = field(default_factory=list)
    prompt_rows: list[int] = field(default_factory=list)
    response_rows: list[np.ndarray] = field(default_factory=list)
    n_file_rows: int = 0
    n_file_responses: int = 0
    skipped: list[str] = field(default_factory=list)

    def add(self, row: _Row, response_offset: int) -> None:
        self.prompt_ids.append(row.prompt_id)
        self.prompts.append(row.prompt)
        self.models.extend(row.models)
        self.texts.extend(row.texts)
        self.scores.extend(row.scores)
        if row.true_scores is not None:
            if self.true_scores is None:
                self.true_scores = []
            self.true_scores.extend(row.true_scores)
        self.counts.append(len(row.models))
        self.prompt_rows.append(self.n_file_rows)
        self.response_rows.append(np.arange(response_offset, response_offset + len(row.models)))


def _listed_count(record: Any, key: str) -> int:
    """How many responses a (possibly malformed) row lists, for aligning precomputed embeddings."""
    if isinstance(record, Mapping) and isinstance(record.get(key), (list, tuple, np.ndarray)):
        return len(record[key])
    return 0


def _check_row(row: _Row, seen: set[str], slots: Slots) -> None:
    if len(row.models) < 2:
        raise _RowError(f"has {len(row.models)} response(s), expected at least 2")
    if row.prompt_id in seen:
        raise _RowError("repeats a prompt_id of an earlier row")
    if slots == "model" and len(set(row.models)) != len(row.models):
        repeated = sorted({m for m in row.models if row.models.count(m) > 1})
        raise _RowError(f"has several responses from model(s) {repeated}, but slots='model' allows one per model")


def _collect(
    rows: Iterable[tuple[str, Any]],
    parse: Callable[[Any], _Row],
    *,
    source: str,
    list_key: str,
    slots: Slots,
    on_error: OnError,
) -> _Records:
    records = _Records(source=source)
    seen: set[str] = set()
    for where, record in rows:
        try:
            if isinstance(record, _Unparseable):
                raise _RowError(record.message)
            row = parse(record)
            _check_row(row, seen, slots)
        except _RowError as err:
            pid = record.get("prompt_id") if isinstance(record, Mapping) else None
            message = f"{source}: {where}, prompt_id {pid!r}: {err}"
            if on_error == "raise":
                raise ValueError(message) from None
            records.skipped.append(message)
        else:
            seen.add(row.prompt_id)
            records.add(row, records.n_file_responses)
        records.n_file_rows += 1
        records.n_file_responses += _listed_count(record, list_key)
    if records.skipped:
        first = records.skipped[0]
        warnings.warn(
            MalformedRowWarning(f"skipped {len(records.skipped)} malformed row(s) of {source}; first: {first}"),
            stacklevel=4,
        )
    if not records.prompt_ids:
        raise ValueError(f"{source}: no usable rows (read {records.n_file_rows})")
    return records


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def _check_slots(slots: str) -> None:
    if slots not in ("order", "model"):
        raise ValueError(f"slots must be 'order' or 'model', got {slots!r}")


# --------------------------------------------------------------------------------------------------------------------
# features and assembly


def _resolve_features(features: FeatureSpec) -> Encoder | PrecomputedEmbeddings:
    if isinstance(features, PrecomputedEmbeddings):
        return features
    if isinstance(features, (str, os.PathLike)):
        path = Path(features)
        if path.is_dir() and (path / _PROMPT_EMB).is_file() and (path / _RESPONSE_EMB).is_file():
            return PrecomputedEmbeddings.from_dir(path)
    if features is not None and not isinstance(features, (str, os.PathLike, Encoder)):
        raise TypeError(
            "features must be an Encoder, PrecomputedEmbeddings, a model path, an embeddings directory or None, "
            f"got {type(features).__name__}"
        )
    return resolve_encoder(features)


def _precomputed_rows(records: _Records, embeddings: PrecomputedEmbeddings) -> tuple[np.ndarray, np.ndarray]:
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
    records: _Records, features: Encoder | PrecomputedEmbeddings, cache: CacheSpec, progress: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(features, PrecomputedEmbeddings):
        return _precomputed_rows(records, features)
    prompts = embed_texts(records.prompts, features, cache=cache, progress=progress)
    responses = embed_texts(records.texts, features, cache=cache, progress=progress)
    return prompts, responses


_COMPOSE_CHUNK = 8192


def _layout(records: _Records, slots: Slots) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(model_names, model_ids [N, K], prompt_of [M], slot_of [M], model_of [M])`` for the flat responses."""
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
    return model_names, model_ids, prompt_of, slot_of, model_of


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


def _build_pool(
    records: _Records,
    judge_scores: np.ndarray,
    features: FeatureSpec,
    *,
    slots: Slots,
    cache: CacheSpec,
    composition: Composition,
    dtype: np.dtype | type,
    with_texts: bool,
    progress: bool | None,
) -> ResponsePool:
    prompt_emb, response_emb = _embed(records, _resolve_features(features), cache, progress)
    model_names, model_ids, prompt_of, slot_of, _ = _layout(records, slots)
    n, k = model_ids.shape
    scores = np.zeros((n, k), dtype=np.float32)
    scores[prompt_of, slot_of] = judge_scores
    true_quality = scores.copy()
    if records.true_scores is not None:
        true_quality[prompt_of, slot_of] = np.asarray(records.true_scores, dtype=np.float32)
    valid = np.zeros((n, k), dtype=bool)
    valid[prompt_of, slot_of] = True
    texts = None
    if with_texts:
        responses = [[""] * k for _ in range(n)]
        for p, s, text in zip(prompt_of.tolist(), slot_of.tolist(), records.texts, strict=True):
            responses[p][s] = text
        texts = PoolTexts(list(records.prompts), responses)
    return ResponsePool(
        features=_fill_features(prompt_emb, response_emb, prompt_of, slot_of, (n, k), composition, dtype),
        judge_scores=scores,
        true_quality=true_quality,
        model_ids=model_ids,
        valid=valid,
        model_names=model_names,
        prompt_ids=list(records.prompt_ids),
        texts=texts,
    )


# --------------------------------------------------------------------------------------------------------------------
# public readers


def _read_auf_records(
    path: Path, *, on_error: OnError, slots: Slots, true_quality_field: str | None, split: str | None
) -> _Records:
    _check_on_error(on_error)
    _check_slots(slots)
    return _collect(
        _auf_rows(path, split),
        lambda record: _parse_auf_row(record, true_quality_field),
        source=str(path),
        list_key="completions",
        slots=slots,
        on_error=on_error,
    )


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
            :class:`MalformedRowWarning` giving the count.
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
        >>> from activeuf_env.data.features import HashingEncoder
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
    records = _read_auf_records(
        path, on_error=on_error, slots=slots, true_quality_field=true_quality_field, split=split
    )
    return _build_pool(
        records,
        np.asarray(records.scores, dtype=np.float32),
        features,
        slots=slots,
        cache=cache,
        composition=composition,
        dtype=dtype,
        with_texts=with_texts,
        progress=progress,
    )


def _read_multimodel_records(
    path: Path, *, on_error: OnError, slots: Slots, score_transform: ScoreTransform
) -> _Records:
    _check_on_error(on_error)
    _check_slots(slots)
    if score_transform not in ("logit", "probability"):
        raise ValueError(f"score_transform must be 'logit' or 'probability', got {score_transform!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no dataset at {str(path)!r}")
    return _collect(
        _json_rows(path),
        lambda record: _parse_multimodel_row(record, score_transform),
        source=str(path),
        list_key="responses",
        slots=slots,
        on_error=on_error,
    )


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
            ``response_embeddings.npy`` beside ``path`` when both exist, else the default text encoder.
        on_error: ``"raise"`` or ``"skip"`` (as in :func:`read_auf_dataset`).
        slots: ``"model"`` (default: one slot per model, missing models padded) or ``"order"``.
        score_transform: ``"logit"`` (clipped log-odds, default) or ``"probability"`` (raw); see
            :func:`transform_scores`.
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
    records = _read_multimodel_records(path, on_error=on_error, slots=slots, score_transform=score_transform)
    if features is None and (path.parent / _PROMPT_EMB).is_file() and (path.parent / _RESPONSE_EMB).is_file():
        features = PrecomputedEmbeddings.from_dir(path.parent)
    return _build_pool(
        records,
        transform_scores(np.asarray(records.scores), score_transform, score_clip),
        features,
        slots=slots,
        cache=cache,
        composition=composition,
        dtype=dtype,
        with_texts=with_texts,
        progress=progress,
    )


def read_alpaca_eval(data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> ResponsePool:
    """Read the shared AlpacaEval multi-model data: 805 prompts, ``K = 57`` slots (one per model).

    Features default to the shipped all-MiniLM-L6-v2 embeddings (no encoder needed); scores are the judge's
    probability of beating the ``gpt4_1106_preview`` reference, as clipped log-odds (module docstring).

    Args:
        data_dir: the shared data directory (or its ``alpaca_eval_multimodel/`` subdirectory); ``None`` is
            :func:`default_shared_data_dir` (``$ACTIVEUF_SHARED_DATA`` or ``../shared/data``).
        **kwargs: passed to :func:`read_multimodel_jsonl` (``features``, ``score_transform``, ``dtype``...).

    Raises:
        FileNotFoundError: the data is absent (the message names the expected path).
    """
    return read_multimodel_jsonl(locate_alpaca_eval(data_dir), **kwargs)


def _sniff_jsonl(path: Path) -> str:
    first = next(iter(_json_rows(path)), None)
    if first is None:
        raise ValueError(f"{str(path)!r} holds no rows")
    where, record = first
    if isinstance(record, _Unparseable):
        raise ValueError(f"{str(path)!r}: {where} (the first row): {record.message}")
    keys = set(record) if isinstance(record, Mapping) else set()
    if "completions" in keys:
        return "auf"
    if "responses" in keys and "instruction" in keys:
        return "multimodel"
    raise ValueError(
        f"{str(path)!r}: cannot tell the layout from the first row's fields {sorted(keys)}; expected "
        "'completions' (AUF PromptWithCompletions) or 'instruction' and 'responses' (shared multi-model)"
    )


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
        if (path / ALPACA_EVAL_FILENAME).is_file() or (path / ALPACA_EVAL_DIRNAME / ALPACA_EVAL_FILENAME).is_file():
            return read_alpaca_eval(path, **kwargs)
        return read_auf_dataset(path, **kwargs)
    if path.suffix.lower() == ".npz":
        return load_pool(path, **kwargs)
    if path.suffix.lower() == ".parquet":
        return read_auf_dataset(path, **kwargs)
    if _is_jsonl(path):
        reader = read_auf_dataset if _sniff_jsonl(path) == "auf" else read_multimodel_jsonl
        return reader(path, **kwargs)
    raise ValueError(
        f"cannot tell the format of {str(path)!r}: expected .npz, .jsonl[.gz], .parquet, a datasets directory or "
        "the shared AlpacaEval directory"
    )


@dataclass(frozen=True)
class DatasetPool:
    """A picklable pool factory for the environment: reads a dataset on first call, once per process.

    ``ActiveUFEnv(instances=DatasetPool(path))`` stores only this small, hashable description, so the env pickles
    cheaply and each process (an ``AsyncVectorEnv`` worker, a benchmark job) reads the data itself; calls with equal
    arguments share one read-only pool per process (``functools.lru_cache``, keyed also by the files' modification
    times and sizes, so a rewritten file is read again).

    Args:
        path: anything :func:`load_pool_from_path` reads: a saved pool (``.npz``), an AUF dataset (JSONL, Parquet,
            ``datasets`` directory), a shared multi-model JSONL file or the shared AlpacaEval directory.
        features_path: where features come from, passed to the reader as ``features=``: a directory holding
            ``prompt_embeddings.npy`` and ``response_embeddings.npy`` aligned with the file, or a local encoder
            model path. ``None``: the reader's default (the shipped embeddings beside a shared multi-model file,
            else the default text encoder through the on-disk cache). Not allowed for a saved ``.npz`` pool.
        reader_kwargs: further keyword arguments of the reader (``slots``, ``score_transform``, ``dtype``,
            ``with_texts``...), as a mapping; stored as sorted ``(key, value)`` pairs.

    Example:
        >>> import tempfile, pathlib
        >>> from activeuf_env.core.pool import ResponsePool
        >>> tmp = tempfile.TemporaryDirectory(); path = pathlib.Path(tmp.name) / "pool.npz"
        >>> _ = ResponsePool(np.zeros((3, 2, 4), np.float32), np.ones((3, 2), np.float32),
        ...     np.ones((3, 2), np.float32), np.zeros((3, 2), int), np.ones((3, 2), bool), ["m"],
        ...     ["a", "b", "c"]).save(path)
        >>> factory = DatasetPool(path)
        >>> factory().features.shape, factory() is factory()
        ((3, 2, 4), True)
        >>> tmp.cleanup()
    """

    path: str
    features_path: str | None = None
    reader_kwargs: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(self.path).__name__} {self.path!r:.60}")
        object.__setattr__(self, "path", str(Path(self.path).expanduser().absolute()))
        if self.features_path is not None:
            if not isinstance(self.features_path, (str, os.PathLike)):
                raise TypeError(
                    f"features_path must be a str, os.PathLike or None, got {type(self.features_path).__name__}"
                )
            object.__setattr__(self, "features_path", str(Path(self.features_path).expanduser().absolute()))
            if Path(self.path).suffix.lower() == ".npz":
                raise ValueError(
                    f"features_path is not used with a saved pool ({self.path!r} holds its features); "
                    f"got features_path={self.features_path!r}"
                )
        items = self.reader_kwargs.items() if isinstance(self.reader_kwargs, Mapping) else self.reader_kwargs
        pairs = tuple(sorted((str(key), value) for key, value in items))
        if "features" in dict(pairs):
            raise ValueError("pass features through features_path=, not reader_kwargs={'features': ...}")
        object.__setattr__(self, "reader_kwargs", pairs)

    def __call__(self) -> ResponsePool:
        """The pool (read on the first call in this process, then shared)."""
        try:
            hash(self)
        except TypeError:  # an unhashable reader argument (an encoder object, say): read without the cache
            return self.load()
        stamp = (_file_stamp(self.path), None if self.features_path is None else _file_stamp(self.features_path))
        return _cached_dataset_pool(self, stamp)

    def load(self) -> ResponsePool:
        """Read the dataset now, bypassing the per-process cache.

        Raises:
            FileNotFoundError: ``path`` does not exist (the message names it).
            ValueError: the reader rejects the data (see :func:`load_pool_from_path`).
        """
        kwargs = dict(self.reader_kwargs)
        if self.features_path is not None:
            kwargs["features"] = self.features_path
        return load_pool_from_path(self.path, **kwargs)


def _file_stamp(path: str) -> tuple[tuple[str, int, int], ...]:
    """``(name, mtime_ns, size)`` of a file, or of every file under a directory: a changed file is read again."""
    root = Path(path)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(f for f in root.rglob("*") if f.is_file())
    else:
        return ()
    return tuple((str(f.relative_to(root)), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


@functools.lru_cache(maxsize=2)
def _cached_dataset_pool(factory: DatasetPool, stamp: object) -> ResponsePool:
    """Real pools are read once per process, factory and file version (they are read-only), so envs share them."""
    return factory.load()


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
        encoder: the encoder (default: the offline all-MiniLM-L6-v2 :class:`~activeuf_env.data.features.TextEncoder`)
            or a local model path.
        cache: the cache (``True``: :func:`~activeuf_env.data.features.default_cache_dir`; a directory; or an
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
    if path.is_file() and _is_jsonl(path) and _sniff_jsonl(path) == "multimodel":
        records = _read_multimodel_records(path, on_error=on_error, slots=slots, score_transform="probability")
    else:
        records = _read_auf_records(path, on_error=on_error, slots=slots, true_quality_field=None, split=split)
    resolved = resolve_encoder(encoder)
    for texts in (records.prompts, records.texts):
        store.get_or_encode(resolved, texts, progress=progress)
    return store.path_for(resolved, records.prompts), store.path_for(resolved, records.texts)


# --------------------------------------------------------------------------------------------------------------------
# writing


def pool_to_auf_records(
    pool: ResponsePool, *, true_quality_field: str | None = None, source: str = ""
) -> list[dict[str, Any]]:
    """A pool as AUF ``PromptWithCompletions`` records (valid slots in slot order; scores as strings, like AUF).

    Args:
        pool: a pool with ``texts``.
        true_quality_field: also write ``true_quality`` under this completion field.
        source: the ``source`` field of every row.

    Raises:
        ValueError: the pool has no texts.
    """
    if pool.texts is None:
        raise ValueError("the pool has no texts; the AUF layout needs prompt and response strings (texts=None)")
    rows = []
    for p, prompt_id in enumerate(pool.prompt_ids):
        completions = []
        for k in np.flatnonzero(pool.valid[p]).tolist():
            completion = {
                "model": pool.model_names[int(pool.model_ids[p, k])],
                "response_text": pool.texts.responses[p][k],
                "overall_score": repr(float(pool.judge_scores[p, k])),
            }
            if true_quality_field:
                completion[true_quality_field] = repr(float(pool.true_quality[p, k]))
            completions.append(completion)
        rows.append(
            {"prompt_id": prompt_id, "source": source, "prompt": pool.texts.prompts[p], "completions": completions}
        )
    return rows


def write_auf_dataset(
    data: ResponsePool | Iterable[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    format: Literal["jsonl", "parquet", "hf"] | None = None,
    true_quality_field: str | None = None,
) -> Path:
    """Write a pool (with texts) or AUF records as JSONL, Parquet or a ``datasets`` directory.

    Args:
        data: a :class:`~activeuf_env.core.pool.ResponsePool` (converted by :func:`pool_to_auf_records`) or records.
        path: the destination; ``.jsonl``/``.jsonl.gz`` and ``.parquet`` pick their format, anything else a
            ``save_to_disk`` directory, unless ``format`` says otherwise.
        format: ``"jsonl"``, ``"parquet"`` or ``"hf"`` to override the suffix.
        true_quality_field: for a pool, also write ``true_quality`` under this completion field.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown ``format``.
    """
    path = Path(path)
    if isinstance(data, ResponsePool):
        records: list[Any] = pool_to_auf_records(data, true_quality_field=true_quality_field)
    else:
        records = [dict(r) for r in data]
    if format is None:
        format = "jsonl" if _is_jsonl(path) else "parquet" if path.suffix.lower() == ".parquet" else "hf"
    if format not in ("jsonl", "parquet", "hf"):
        raise ValueError(f"format must be 'jsonl', 'parquet' or 'hf', got {format!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "jsonl":
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "wt", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    else:
        import datasets

        datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path
