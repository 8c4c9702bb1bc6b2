"""A picklable pool factory for the environment (:class:`DatasetPool`) and its per-process cache of pools."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activeuf_env._validation import check_type
from activeuf_env.core.pool import ResponsePool
from activeuf_env.data.readers import load_pool_from_path

__all__ = ["DatasetPool"]


@dataclass(frozen=True)
class DatasetPool:
    """A picklable pool factory for the environment: reads a dataset on first call, once per process.

    ``ActiveUFEnv(instances=DatasetPool(path))`` stores only this small, hashable description, so the env pickles
    cheaply and each process (an ``AsyncVectorEnv`` worker, a benchmark job) reads the data itself (texts to encode
    are encoded once, by the first process, through the locked feature cache); calls with equal arguments share one
    read-only pool per process (``functools.lru_cache``, keyed also by the files' modification times and sizes, so
    a rewritten file is read again).

    Args:
        path: anything :func:`~activeuf_env.data.readers.load_pool_from_path` reads: a saved pool (``.npz``), an AUF
            dataset (JSONL, Parquet, ``datasets`` directory), a shared multi-model JSONL file or the shared
            AlpacaEval directory.
        features_path: where features come from, passed to the reader as ``features=``: a directory holding
            ``prompt_embeddings.npy`` and ``response_embeddings.npy`` aligned with the file, or a local encoder
            model path. ``None``: the reader's default (the shipped embeddings beside a shared multi-model file,
            else the default text encoder through the on-disk cache). Not allowed for a saved ``.npz`` pool.
        reader_kwargs: further keyword arguments of the reader (``slots``, ``score_transform``, ``dtype``,
            ``with_texts``...), as a mapping; stored as sorted ``(key, value)`` pairs.

    Example:
        >>> import tempfile, pathlib
        >>> import numpy as np
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
        check_type("path", self.path, (str, os.PathLike), "a str or os.PathLike")
        object.__setattr__(self, "path", str(Path(self.path).expanduser().absolute()))
        if self.features_path is not None:
            check_type("features_path", self.features_path, (str, os.PathLike), "a str, os.PathLike or None")
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
            ValueError: the reader rejects the data (see :func:`~activeuf_env.data.readers.load_pool_from_path`).
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
