"""Writing pools and records in the AUF ``PromptWithCompletions`` layout (JSONL, Parquet or a ``datasets``
directory), atomically: a failed write leaves any earlier file or directory at the target as it was."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from activeuf_env._io import atomic_path
from activeuf_env._validation import check_choice
from activeuf_env.core.pool import ResponsePool
from activeuf_env.data.formats import is_jsonl, write_jsonl

__all__ = ["AUF_FORMATS", "AufFormat", "pool_to_auf_records", "write_auf_dataset"]

AufFormat = Literal["jsonl", "parquet", "hf"]
AUF_FORMATS: tuple[AufFormat, ...] = ("jsonl", "parquet", "hf")
"""The ``format=`` choices of :func:`write_auf_dataset`."""


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
                "overall_score": _shortest(pool.judge_scores[p, k]),
            }
            if true_quality_field:
                completion[true_quality_field] = _shortest(pool.true_quality[p, k])
            completions.append(completion)
        rows.append(
            {"prompt_id": prompt_id, "source": source, "prompt": pool.texts.prompts[p], "completions": completions}
        )
    return rows


def write_auf_dataset(
    data: ResponsePool | Iterable[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    format: AufFormat | None = None,
    true_quality_field: str | None = None,
) -> Path:
    """Write a pool (with texts) or AUF records as JSONL, Parquet or a ``datasets`` directory, atomically.

    The data goes to a temporary file (or directory) beside ``path`` that replaces it once complete, so a failed
    write leaves an earlier ``path`` untouched and nothing partial behind.

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
        format = "jsonl" if is_jsonl(path) else "parquet" if path.suffix.lower() == ".parquet" else "hf"
    format = check_choice("format", format, AUF_FORMATS)
    if format == "jsonl":
        write_jsonl(path, records)
    elif format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(records)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    else:
        import datasets

        dataset = datasets.Dataset.from_list(records)
        with atomic_path(path, directory=True) as tmp:
            dataset.save_to_disk(str(tmp))
    return path


def _shortest(value: np.floating) -> str:
    """The shortest decimal that reads back to ``value`` in its own dtype: a float32 ``3.22`` is written ``3.22``, not
    ``3.2200000286102295`` (the float32 printed as a float64)."""
    return np.format_float_positional(value, unique=True, trim="-")
