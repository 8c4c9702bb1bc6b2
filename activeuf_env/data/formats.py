"""The file formats of the datasets: where records come from (JSON lines, a JSON array, Parquet, a ``datasets``
directory), how a JSON-lines file is written, and which layout a JSON-lines file holds.

A record source yields ``(location, record)`` pairs: the location is ``"line N"`` (JSON lines, 1-based) or
``"row N (0-based)"`` (tables), for error messages. A JSON line that does not parse yields an
:class:`~activeuf_env.data.rows.Unparseable` record instead of raising, so the collector can skip it. Gzipped files
(``.gz``) are read and written transparently; writes are atomic (:mod:`activeuf_env._io`).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from activeuf_env._io import is_gzip, open_atomic, open_text
from activeuf_env.data.rows import Unparseable

__all__ = [
    "DatasetLayout",
    "auf_rows",
    "is_jsonl",
    "iter_table",
    "json_line",
    "json_rows",
    "sniff_layout",
    "write_jsonl",
]

DatasetLayout = Literal["auf", "multimodel"]
"""The two record layouts: AUF ``PromptWithCompletions`` and the shared multi-model layout."""

_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")


def is_jsonl(path: Path) -> bool:
    """Whether ``path`` names a JSON-lines (or JSON) file by its suffix, gzipped or not."""
    return path.name.lower().endswith(_JSONL_SUFFIXES)


def _iter_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    """``(location, record)`` per non-blank line; a line that is not UTF-8 or not JSON yields an :class:`Unparseable`.

    Lines are decoded one by one, so one bad byte costs one row (``on_error="skip"`` skips it), not the file. A
    truncated or corrupt gzip stream raises ``ValueError`` naming the file and the last line read.
    """
    lineno = 0
    with gzip.open(path, "rb") if is_gzip(path) else open(path, "rb") as handle:
        try:
            for lineno, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    yield f"line {lineno}", Unparseable(f"not UTF-8 text ({err})")
                    continue
                if not line.strip():
                    continue
                try:
                    yield f"line {lineno}", json.loads(line)
                except json.JSONDecodeError as err:
                    yield f"line {lineno}", Unparseable(f"invalid JSON: {err}")
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise ValueError(
                f"{str(path)!r} is truncated or corrupt after line {lineno} ({type(err).__name__}: {err})"
            ) from None


def _is_json_array(path: Path) -> bool:
    """A ``.json`` file whose first non-blank character is ``[`` holds one JSON array of rows, not JSON lines."""
    if not path.name.lower().endswith((".json", ".json.gz")):
        return False
    with open_text(path) as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped.startswith("[")
    return False


def _load_json_array(path: Path) -> list[Any]:
    with open_text(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{str(path)!r} is not valid JSON: {err}") from None


def iter_table(records: Sequence[Any]) -> Iterator[tuple[str, Any]]:
    """``("row i (0-based)", record)`` for the records of a table."""
    for i, record in enumerate(records):
        yield f"row {i} (0-based)", record


def json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """Rows of a JSON-lines file, or of a ``.json`` file holding one array of rows."""
    return iter_table(_load_json_array(path)) if _is_json_array(path) else _iter_jsonl(path)


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


def auf_rows(path: Path, split: str | None) -> Iterator[tuple[str, Any]]:
    """The records of an AUF dataset: a JSON-lines or JSON file, a Parquet file or a ``datasets`` directory.

    Args:
        path: the file or directory.
        split: the split of a ``DatasetDict`` directory (default: its only split, else ``"train"``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the format cannot be told from ``path``, or ``split`` does not fit the directory.
    """
    if not path.exists():
        raise FileNotFoundError(f"no dataset at {str(path)!r}")
    if path.is_dir():
        if not _is_hf_dir(path):
            raise ValueError(
                f"{str(path)!r} is a directory but not a Hugging Face datasets directory (no dataset_info.json, "
                "state.json or dataset_dict.json); expected a .jsonl[.gz], .parquet or save_to_disk directory"
            )
        return iter_table(_load_hf_records(path, split))
    if path.suffix.lower() == ".parquet":
        return iter_table(_load_parquet_records(path))
    if is_jsonl(path):
        return json_rows(path)
    raise ValueError(
        f"cannot tell the format of {str(path)!r}: expected a .jsonl[.gz], .parquet or a datasets directory"
    )


def sniff_layout(path: Path) -> DatasetLayout:
    """The layout of a JSON-lines file, from the fields of its first row.

    Raises:
        ValueError: the file holds no rows, its first row does not parse, or its fields fit neither layout.
    """
    first = next(iter(json_rows(path)), None)
    if first is None:
        raise ValueError(f"{str(path)!r} holds no rows")
    where, record = first
    if isinstance(record, Unparseable):
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


def json_line(record: Any) -> str:
    """One record as a line of JSON (non-ASCII characters kept as they are)."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> Path:
    """Write ``records`` as JSON lines (UTF-8; gzipped for ``.gz``), atomically; returns the path.

    Example:
        >>> import tempfile, pathlib
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = write_jsonl(pathlib.Path(tmp.name) / "r.jsonl", [{"a": "é"}, [1]])
        >>> path.read_text(encoding="utf-8")
        '{"a": "é"}\\n[1]\\n'
        >>> tmp.cleanup()
    """
    with open_atomic(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json_line(record))
    return Path(path)
