"""Atomic writes and gz-aware reading, used by every writer and reader of the package.

A file the package writes is either its old version or its complete new one, never a half-written file: the data
goes to a temporary file beside the target (same directory, so the final ``os.replace`` is atomic on POSIX), which
replaces the target only once it is complete, and is removed when writing fails (a full disk, an exception in the
caller). The finished file gets the permissions of a normal ``open`` under the user's umask (``mkstemp`` would leave
``0600``).

>>> import tempfile, pathlib
>>> tmp = tempfile.TemporaryDirectory()
>>> path = pathlib.Path(tmp.name) / "a.json"
>>> atomic_write_text(path, "{}\\n") == path, path.read_text()
(True, '{}\\n')
>>> with open_text(path) as handle:
...     handle.read()
'{}\\n'
>>> tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "is_gzip", "open_atomic", "open_text"]


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a gzip file by its suffix (``.gz``)."""
    return Path(path).suffix.lower() == ".gz"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces ``path`` when the block ends without an exception.

    The temporary name keeps the target's suffixes (``.tmp.npy``, ``.tmp.jsonl.gz``), so writers that pick a format
    by suffix (``np.save``, gzip) behave as for the target. On an exception the temporary file is removed and the
    target is left as it was.

    Args:
        path: the final file (or directory, with ``directory=True``). Its parent is created if needed.
        directory: yield a fresh temporary directory instead (e.g. for ``datasets.Dataset.save_to_disk``); an
            existing target directory is replaced as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".tmp" + "".join(path.suffixes)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(handle)
        tmp = Path(name)
    try:
        yield tmp
        if directory:
            os.chmod(tmp, 0o777 & ~_umask())
            if path.is_dir():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.replace(path, old / path.name)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file for writing that atomically becomes ``path`` when the block ends (gzip for ``.gz``).

    Args:
        path: the final file.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        encoding: the text encoding (ignored for ``"wb"``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    text = mode == "w"
    with atomic_path(path) as tmp, contextlib.ExitStack() as stack:
        raw: IO[Any] = stack.enter_context(
            open(tmp, "wb" if is_gzip(path) else mode, encoding=None if is_gzip(path) or not text else encoding)
        )
        if is_gzip(path):
            # The gzip header records a file name: the target's, not the temporary one's.
            raw = stack.enter_context(gzip.GzipFile(filename=Path(path).name, mode="wb", fileobj=raw))
            if text:
                raw = stack.enter_context(io.TextIOWrapper(raw, encoding=encoding))
        yield raw


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (gzip for ``.gz``); returns the path."""
    with open_atomic(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (gzip for ``.gz``); returns the path."""
    with open_atomic(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def open_text(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> IO[str]:
    """Open a text file for reading, decompressing ``.gz`` files."""
    if is_gzip(path):
        return gzip.open(path, "rt", encoding=encoding)
    return open(path, encoding=encoding)
