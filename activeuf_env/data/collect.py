"""Collecting the rows of a dataset file into flat lists, keeping their alignment with the file.

:func:`collect` parses every record of a source, checks it, and either raises on the first malformed row or skips
the malformed ones with one :class:`MalformedRowWarning`. The kept rows are flattened into :class:`Records`, which
also remembers, for each kept prompt and response, its position in the file, so that precomputed embeddings (one
per file row and per listed response, skipped rows included) stay aligned.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from activeuf_env.data.rows import OnError, Row, RowError, Slots, Unparseable, check_row

__all__ = ["MalformedRowWarning", "Records", "collect"]


class MalformedRowWarning(UserWarning):
    """Rows of a dataset were skipped (``on_error="skip"``); the message gives their count and the first error."""


@dataclass
class Records:
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

    def add(self, row: Row, response_offset: int) -> None:
        """Append a kept row whose first response is the file's response number ``response_offset``."""
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


def collect(
    rows: Iterable[tuple[str, Any]],
    parse: Callable[[Any], Row],
    *,
    source: str,
    list_key: str,
    slots: Slots,
    on_error: OnError,
    stacklevel: int = 2,
) -> Records:
    """Parse and check every row of a source.

    Args:
        rows: ``(location, record)`` pairs (:mod:`activeuf_env.data.formats`).
        parse: record -> :class:`~activeuf_env.data.rows.Row`, raising ``RowError`` on a malformed record.
        source: the file, named in messages.
        list_key: the record field listing the responses (counted for the alignment, also in skipped rows).
        slots: as the readers' ``slots`` (``"model"`` allows one response per model).
        on_error: ``"raise"`` on the first malformed row, or ``"skip"`` them with one warning.
        stacklevel: the warning's ``stacklevel`` as seen from the caller of :func:`collect` (``2``: its caller).

    Raises:
        ValueError: a malformed row (``on_error="raise"``; names the source, the location and the prompt id), or
            no usable row.
    """
    records = Records(source=source)
    seen: set[str] = set()
    for where, record in rows:
        try:
            if isinstance(record, Unparseable):
                raise RowError(record.message)
            row = parse(record)
            check_row(row, seen, slots)
        except RowError as err:
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
            stacklevel=stacklevel + 1,
        )
    if not records.prompt_ids:
        raise ValueError(f"{source}: no usable rows (read {records.n_file_rows})")
    return records
