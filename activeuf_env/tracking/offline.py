"""Reading W&B runs back from their local ``.wandb`` files, without ``wandb sync`` or a W&B account.

:func:`read_offline_run` parses the transaction log W&B writes for every run (offline runs included) into an
:class:`OfflineRun`: the run's name, group, config, logged history and summary. The file is a LevelDB-format log
(32 KiB blocks of records with 7-byte headers) of ``wandb_internal_pb2.Record`` protobuf messages, W&B's internal
format, decoded with the ``wandb.proto`` messages of the installed wandb (checked with wandb 0.31).
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import time
from pathlib import Path
from typing import Any

__all__ = ["OfflineRun", "read_offline_run"]

_LEVELDB_HEADER = b":W&B"
_LEVELDB_BLOCK = 32768
_LEVELDB_RECORD_HEADER = struct.Struct("<IHB")  # masked crc32c, length, type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclasses.dataclass(frozen=True)
class OfflineRun:
    """One W&B run read back from its local ``.wandb`` file.

    Attributes:
        path: the ``.wandb`` file.
        name: the run's display name (``{agent}-seed{seed}`` for runs of
            :class:`~activeuf_env.tracking.recorder.WandbRecorder`).
        group: the run's group (the env id).
        config: the run's config.
        history: one dict per ``log`` call, in order (W&B's own ``_step``, ``_runtime`` and ``_timestamp`` included).
        summary: the final summary values that were written (e.g. ``regret`` with ``summary="min"``).
    """

    path: Path
    name: str
    group: str
    config: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def _iter_leveldb_records(data: bytes) -> list[bytes]:
    """Split a W&B transaction log (LevelDB log format: 32 KiB blocks, 7-byte record headers) into records."""
    records: list[bytes] = []
    pending = b""
    position = 7  # ":W&B", a 2-byte magic and a version byte
    while position + _LEVELDB_RECORD_HEADER.size <= len(data):
        left = _LEVELDB_BLOCK - position % _LEVELDB_BLOCK
        if left < _LEVELDB_RECORD_HEADER.size:  # block trailer padding
            position += left
            continue
        _, length, kind = _LEVELDB_RECORD_HEADER.unpack_from(data, position)
        position += _LEVELDB_RECORD_HEADER.size
        chunk = data[position : position + length]
        position += length
        if len(chunk) < length:  # a run still being written: stop at the last complete record
            break
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            records.append(pending + chunk)
            pending = b""
    return records


def _item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def _parse_transaction_log(file: Path) -> tuple[OfflineRun, bool]:
    from wandb.proto import wandb_internal_pb2

    data = file.read_bytes()
    if data[:4] != _LEVELDB_HEADER:
        raise ValueError(
            f"{str(file)!r} is not a W&B transaction log: it starts with {data[:4]!r}, not {_LEVELDB_HEADER!r}"
        )
    name = group = ""
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    complete = False
    for raw in _iter_leveldb_records(data):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            name, group = record.run.display_name or name, record.run.run_group or group
            config.update({_item_key(item): json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            config.update({_item_key(item): json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            history.append({_item_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            summary.update({_item_key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "exit":
            complete = True
    config.pop("_wandb", None)
    run = OfflineRun(path=file, name=name, group=group, config=config, history=history, summary=summary)
    return run, complete


def read_offline_run(path: str | os.PathLike[str], wait: float = 10.0) -> OfflineRun:
    """Read an offline (or not yet synced) W&B run from its local ``.wandb`` transaction log, without ``wandb sync``.

    The ``.wandb`` file is a LevelDB-format log of ``wandb_internal_pb2.Record`` protobuf messages (W&B's internal
    format, read here with the ``wandb.proto`` messages that ship with the installed wandb; checked with wandb 0.31).
    Checksums are not verified. W&B's background process may still be writing the file for a moment after
    ``run.finish()`` returns, so this waits (up to ``wait`` seconds) for the run's exit record.

    Args:
        path: a run directory (``.../wandb/offline-run-*``) or its ``run-*.wandb`` file.
        wait: seconds to wait for a run that is still being written; after that, what is there is returned.

    Returns:
        The run's name, group, config, history rows and summary.

    Raises:
        FileNotFoundError: when the directory holds no ``.wandb`` file.
        ValueError: when the file is not a W&B transaction log.
    """
    file = Path(path)
    if file.is_dir():
        candidates = sorted(file.glob("*.wandb"))
        if not candidates:
            raise FileNotFoundError(f"no .wandb file in {str(file)!r}")
        file = candidates[0]
    deadline = time.monotonic() + max(float(wait), 0.0)
    while True:
        run, complete = _parse_transaction_log(file)
        if complete or time.monotonic() >= deadline:
            return run
        time.sleep(0.05)
