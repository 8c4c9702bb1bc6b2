"""One row of a dataset file, parsed and checked: the prompt, its responses, their models and scores.

A parser turns one record (a JSON object, a table row) into a :class:`Row` or raises :class:`RowError` with what is
wrong; the collector (:mod:`activeuf_env.data.collect`) adds the file, the line or row and the prompt id. The field
layouts are described in :mod:`activeuf_env.data.readers`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from activeuf_env._validation import check_choice, check_number

__all__ = [
    "DEFAULT_SCORE_CLIP",
    "ON_ERROR",
    "SCORE_TRANSFORMS",
    "SLOTS",
    "OnError",
    "Row",
    "RowError",
    "ScoreTransform",
    "Slots",
    "Unparseable",
    "check_row",
    "parse_auf_row",
    "parse_multimodel_row",
    "transform_scores",
]

OnError = Literal["raise", "skip"]
Slots = Literal["order", "model"]
ScoreTransform = Literal["logit", "probability"]

ON_ERROR: tuple[OnError, ...] = ("raise", "skip")
SLOTS: tuple[Slots, ...] = ("order", "model")
SCORE_TRANSFORMS: tuple[ScoreTransform, ...] = ("logit", "probability")

DEFAULT_SCORE_CLIP = 1e-6
"""Clip of win probabilities before log-odds: the six-decimal resolution of the shared scores."""

_FLOAT32_MAX = np.finfo(np.float32).max


class RowError(Exception):
    """A malformed row; the collector adds the location and prompt id."""


@dataclass(frozen=True)
class Unparseable:
    """A record that could not be read at all (e.g. a line that is not JSON), with the reason."""

    message: str


@dataclass
class Row:
    """One parsed row: a prompt and its responses (models, texts, judge scores, optional second-judge scores)."""

    prompt_id: str
    prompt: str
    models: list[str]
    texts: list[str]
    scores: list[float]
    true_scores: list[float] | None = None


def _require(record: Mapping[str, Any], key: str, what: str = "row") -> Any:
    if key not in record:
        raise RowError(f"{what} is missing field {key!r} (has {sorted(record)})")
    return record[key]


def _require_str(record: Mapping[str, Any], key: str, what: str) -> str:
    value = _require(record, key, what)
    if not isinstance(value, str):
        raise RowError(f"{what} field {key!r} must be a string, got {type(value).__name__} {value!r:.60}")
    return value


def _require_list(record: Mapping[str, Any], key: str) -> list[Any]:
    value = _require(record, key)
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise RowError(f"field {key!r} must be a list, got {type(value).__name__}")
    return list(value)


def _require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RowError(f"{what} must be an object, got {type(value).__name__} {value!r:.60}")
    return value


def _parse_prompt_id(record: Mapping[str, Any]) -> str:
    value = _require(record, "prompt_id")
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)) or value == "":
        raise RowError(f"prompt_id must be a non-empty string or an integer, got {value!r:.60}")
    return str(value)


def _prompt_text(value: Any) -> str:
    """A prompt given as a string or as chat messages, as one string (see :mod:`activeuf_env.data.readers`)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
        raise RowError(f"prompt must be a string or a non-empty list of chat messages, got {value!r:.60}")
    messages = []
    for i, message in enumerate(value):
        message = _require_mapping(message, f"prompt message {i}")
        what = f"prompt message {i}"
        messages.append((_require_str(message, "role", what), _require_str(message, "content", what)))
    if len(messages) == 1:
        return messages[0][1]
    return "\n\n".join(f"{role}: {content}" for role, content in messages)


def _parse_score(value: Any, what: str) -> float:
    """A float from a number or a numeric string, finite also once stored as float32."""
    if isinstance(value, (bool, np.bool_)):
        raise RowError(f"{what} must be a number or a numeric string, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        score = float(value)
    elif isinstance(value, str):
        try:
            score = float(value.strip())
        except ValueError:
            raise RowError(f"{what} must be a number or a numeric string, got {value!r:.60}") from None
    else:
        raise RowError(f"{what} must be a number or a numeric string, got {type(value).__name__} {value!r:.60}")
    if not math.isfinite(score):
        raise RowError(f"{what} must be finite, got {value!r}")
    with np.errstate(over="ignore"):  # the overflow is the error reported below
        stored = np.float32(score)
    if not np.isfinite(stored):
        # Caught here, at its row, rather than later by the pool's checks, which know neither file nor line.
        raise RowError(
            f"{what} must fit the float32 the pool stores scores in (|score| <= {float(_FLOAT32_MAX):.4g}), "
            f"got {value!r}"
        )
    return score


def parse_auf_row(record: Any, true_quality_field: str | None) -> Row:
    """An AUF ``PromptWithCompletions`` record as a :class:`Row` (``true_quality_field``: the second judge's field).

    Raises:
        RowError: a missing or mistyped field, or a non-numeric score or one not finite as float32.
    """
    record = _require_mapping(record, "row")
    row = Row(_parse_prompt_id(record), _prompt_text(_require(record, "prompt")), [], [], [])
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


def parse_multimodel_row(record: Any, score_transform: ScoreTransform) -> Row:
    """A shared multi-model record as a :class:`Row` (scores untransformed; in [0, 1] for ``"logit"``).

    Raises:
        RowError: a missing or mistyped field, a non-numeric score or one not finite as float32, or one outside
            [0, 1] for log-odds.
    """
    record = _require_mapping(record, "row")
    row = Row(_parse_prompt_id(record), _require_str(record, "instruction", "row"), [], [], [])
    for i, response in enumerate(_require_list(record, "responses")):
        what = f"response {i}"
        response = _require_mapping(response, what)
        row.models.append(_require_str(response, "model", what))
        row.texts.append(_require_str(response, "text", what))
        score = _parse_score(_require(response, "score", what), f"{what} score")
        if score_transform == "logit" and not 0.0 <= score <= 1.0:
            raise RowError(f"{what} score must be a probability in [0, 1] for log-odds, got {score!r}")
        row.scores.append(score)
    return row


def check_row(row: Row, seen: set[str], slots: Slots) -> None:
    """Checks that need more than one field: at least two responses, a new prompt id, one response per model.

    Raises:
        RowError: naming what is wrong (``seen`` holds the prompt ids of the rows kept so far).
    """
    if len(row.models) < 2:
        raise RowError(f"has {len(row.models)} response(s), expected at least 2")
    if row.prompt_id in seen:
        raise RowError("repeats a prompt_id of an earlier row")
    if slots == "model" and len(set(row.models)) != len(row.models):
        repeated = sorted({m for m in row.models if row.models.count(m) > 1})
        raise RowError(f"has several responses from model(s) {repeated}, but slots='model' allows one per model")


def transform_scores(
    scores: np.ndarray, transform: ScoreTransform = "logit", clip: float = DEFAULT_SCORE_CLIP
) -> np.ndarray:
    """Map win probabilities against a reference to judge scores (:mod:`activeuf_env.data.readers` says why).

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
    transform = check_choice("score_transform", transform, SCORE_TRANSFORMS)
    scores = np.asarray(scores, dtype=np.float64)
    if transform == "probability":
        return scores.astype(np.float32)
    clip = check_number("score_clip", clip, low=0.0, high=0.5, low_open=True, high_open=True)
    q = np.clip(scores, clip, 1.0 - clip)
    return (np.log(q) - np.log1p(-q)).astype(np.float32)
