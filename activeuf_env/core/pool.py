"""The response pool: every prompt's candidate responses as arrays, the only thing the environment needs from data."""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["PoolTexts", "ResponsePool", "load_pool"]

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class PoolTexts:
    """Prompt and response strings of a pool, for rendering and export.

    Args:
        prompts: one string per prompt.
        responses: per prompt, one string per response slot (``""`` for padded slots).
    """

    prompts: list[str]
    responses: list[list[str]]

    def subset(self, indices: np.ndarray) -> PoolTexts:
        """Return the texts of the prompts at ``indices``, in that order."""
        return PoolTexts([self.prompts[i] for i in indices], [self.responses[i] for i in indices])


@dataclass(frozen=True, eq=False)
class ResponsePool:
    """All prompts of an instance with their candidate responses, features and scores.

    Arrays are indexed ``[prompt, response]``; ``K`` response slots per prompt, padded slots have ``valid == False``.
    Construction validates shapes, dtypes, finiteness of valid entries and that each prompt has at least two valid
    responses; the error names the offending field or prompt id.

    Args:
        features: float ``[N, K, D]`` response features (float16 or float32, may be a read-only memmap).
        judge_scores: float32 ``[N, K]``, what the judge sees.
        true_quality: float32 ``[N, K]``, what downstream benchmarks measure (hidden from agents).
        model_ids: int64 ``[N, K]`` indices into ``model_names``.
        valid: bool ``[N, K]``, False for padded response slots.
        model_names: one name per model.
        prompt_ids: one id per prompt.
        texts: optional prompt and response strings.

    Example:
        >>> import numpy as np
        >>> pool = ResponsePool(
        ...     features=np.zeros((1, 2, 3), np.float32), judge_scores=np.array([[1.0, 2.0]], np.float32),
        ...     true_quality=np.array([[1.0, 2.0]], np.float32), model_ids=np.array([[0, 1]]),
        ...     valid=np.ones((1, 2), bool), model_names=["a", "b"], prompt_ids=["p0"])
        >>> pool.n_prompts, pool.n_responses, pool.feature_dim
        (1, 2, 3)
    """

    features: np.ndarray
    judge_scores: np.ndarray
    true_quality: np.ndarray
    model_ids: np.ndarray
    valid: np.ndarray
    model_names: list[str]
    prompt_ids: list[str]
    texts: PoolTexts | None = field(default=None)

    def __post_init__(self) -> None:
        _coerce(self)
        _validate(self)

    @property
    def n_prompts(self) -> int:
        """Number of prompts ``N``."""
        return self.features.shape[0]

    @property
    def n_responses(self) -> int:
        """Response slots per prompt ``K``."""
        return self.features.shape[1]

    @property
    def feature_dim(self) -> int:
        """Feature dimension ``D``."""
        return self.features.shape[2]

    @property
    def n_models(self) -> int:
        """Number of models in ``model_names``."""
        return len(self.model_names)

    def subset(self, indices: np.ndarray) -> ResponsePool:
        """Return a pool of the prompts at ``indices`` (a copy, in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ResponsePool(
            features=np.ascontiguousarray(self.features[idx]),
            judge_scores=self.judge_scores[idx],
            true_quality=self.true_quality[idx],
            model_ids=self.model_ids[idx],
            valid=self.valid[idx],
            model_names=list(self.model_names),
            prompt_ids=[self.prompt_ids[i] for i in idx],
            texts=None if self.texts is None else self.texts.subset(idx),
        )

    def split(self, eval_size: float | int, rng: np.random.Generator) -> tuple[ResponsePool, ResponsePool]:
        """Split by prompt into (train, eval) pools.

        Args:
            eval_size: a fraction in (0, 1) of the prompts, or an absolute number of prompts, for the eval pool.
            rng: the generator that draws which prompts go to eval.

        Returns:
            ``(train, eval)``; each keeps its prompts in their original order.

        Example:
            >>> pool = ResponsePool(np.zeros((4, 2, 1), np.float32), np.ones((4, 2), np.float32),
            ...     np.ones((4, 2), np.float32), np.zeros((4, 2), int), np.ones((4, 2), bool), ["m"],
            ...     ["a", "b", "c", "d"])
            >>> train, held_out = pool.split(0.25, np.random.default_rng(0))
            >>> train.n_prompts, held_out.n_prompts
            (3, 1)
        """
        n_eval = _eval_count(eval_size, self.n_prompts)
        chosen = np.zeros(self.n_prompts, dtype=bool)
        chosen[rng.choice(self.n_prompts, size=n_eval, replace=False)] = True
        return self.subset(np.flatnonzero(~chosen)), self.subset(np.flatnonzero(chosen))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save losslessly to an uncompressed ``.npz`` (arrays plus a JSON header); returns the path written."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        header = {
            "format_version": _FORMAT_VERSION,
            "model_names": list(self.model_names),
            "prompt_ids": list(self.prompt_ids),
            "texts": None if self.texts is None else {"prompts": self.texts.prompts, "responses": self.texts.responses},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            features=np.asarray(self.features),
            judge_scores=self.judge_scores,
            true_quality=self.true_quality,
            model_ids=self.model_ids,
            valid=self.valid,
            header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
        )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap_features: bool = False) -> ResponsePool:
        """Load a pool written by :meth:`save`; ``mmap_features`` keeps the features on disk (read-only)."""
        return load_pool(path, mmap_features=mmap_features)


def load_pool(path: str | os.PathLike[str], mmap_features: bool = False) -> ResponsePool:
    """Load a pool written by :meth:`ResponsePool.save`.

    Args:
        path: the ``.npz`` file.
        mmap_features: memory-map the features read-only instead of reading them into memory.

    Raises:
        FileNotFoundError: the file does not exist (the message names the path).
        ValueError: the file is truncated or corrupt, or not a pool of a known format version (the message names
            the path).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no response pool at {str(path)!r}")
    try:
        arrays = _read_arrays(path, mmap_features)
        header = json.loads(bytes(arrays.pop("header")).decode("utf-8")) if "header" in arrays else None
    except _READ_ERRORS as err:  # numpy's and zipfile's messages do not name the file
        raise ValueError(f"cannot read {str(path)!r} as a response pool: {type(err).__name__}: {err}") from None
    missing = sorted({"features", "judge_scores", "true_quality", "model_ids", "valid"} - set(arrays))
    if missing or header is None:
        raise ValueError(f"{str(path)!r} is not a response pool: missing arrays {missing or ['header']}")
    if header.get("format_version") != _FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r}: expected pool format_version {_FORMAT_VERSION}, got {header.get('format_version')!r}"
        )
    texts = header["texts"]
    return ResponsePool(
        model_names=header["model_names"],
        prompt_ids=header["prompt_ids"],
        texts=None if texts is None else PoolTexts(texts["prompts"], texts["responses"]),
        **{name: arrays[name] for name in ("features", "judge_scores", "true_quality", "model_ids", "valid")},
    )


# What numpy, zipfile and the JSON decoder raise on a truncated or corrupt file (a decode error is a ValueError).
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


def _read_arrays(path: Path, mmap_features: bool) -> dict[str, np.ndarray]:
    """Every array of a pool file, the features memory-mapped when asked; lets numpy's and zipfile's errors out."""
    with open(path, "rb") as handle:  # ours to close: np.load leaks the file it opened when the zip is corrupt
        loaded = np.load(handle, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"expected an .npz archive of arrays, got a single array of shape {loaded.shape}")
        with loaded as archive:
            names = set(archive.files)
            arrays = {name: np.asarray(archive[name]) for name in names if not (mmap_features and name == "features")}
    if mmap_features and "features" in names:
        arrays["features"] = _memmap_npz_member(path, "features.npy")
    return arrays


def _memmap_npz_member(path: Path, member: str) -> np.ndarray:
    """Memory-map one array stored uncompressed inside an ``.npz`` (``np.load`` reads npz members whole)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"cannot memory-map the compressed member {member!r} (ResponsePool.save stores it plain)")
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local_header = handle.read(30)
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        major, _ = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
        offset = handle.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran_order else "C")


def _eval_count(eval_size: float | int, n_prompts: int) -> int:
    if isinstance(eval_size, (int, np.integer)) and not isinstance(eval_size, bool):
        n_eval = int(eval_size)
    elif isinstance(eval_size, float) and 0.0 < eval_size < 1.0:
        n_eval = round(eval_size * n_prompts)
    else:
        raise ValueError(f"eval_size must be a fraction in (0, 1) or a number of prompts, got {eval_size!r}")
    if not 1 <= n_eval <= n_prompts - 1:
        raise ValueError(f"eval_size must leave at least one prompt on each side of {n_prompts}, got {n_eval} for eval")
    return n_eval


def _coerce(pool: ResponsePool) -> None:
    """Bring arrays to their canonical dtypes (no copy where they already match)."""
    set_ = object.__setattr__
    if pool.features.dtype not in (np.float16, np.float32):
        set_(pool, "features", np.asarray(pool.features, dtype=np.float32))
    set_(pool, "judge_scores", np.asarray(pool.judge_scores, dtype=np.float32))
    set_(pool, "true_quality", np.asarray(pool.true_quality, dtype=np.float32))
    if not np.issubdtype(np.asarray(pool.model_ids).dtype, np.integer):
        raise ValueError(f"model_ids must be integers, got dtype {np.asarray(pool.model_ids).dtype}")
    set_(pool, "model_ids", np.asarray(pool.model_ids, dtype=np.int64))
    set_(pool, "valid", np.asarray(pool.valid, dtype=bool))
    set_(pool, "model_names", [str(m) for m in pool.model_names])
    set_(pool, "prompt_ids", [str(p) for p in pool.prompt_ids])


def _validate(pool: ResponsePool) -> None:
    if pool.features.ndim != 3:
        raise ValueError(f"features must have shape [N, K, D], got shape {pool.features.shape}")
    n, k, _ = pool.features.shape
    for name in ("judge_scores", "true_quality", "model_ids", "valid"):
        shape = getattr(pool, name).shape
        if shape != (n, k):
            raise ValueError(f"{name} must have shape {(n, k)} to match features, got {shape}")
    if len(pool.prompt_ids) != n:
        raise ValueError(f"prompt_ids must have {n} entries to match features, got {len(pool.prompt_ids)}")
    if len(set(pool.prompt_ids)) != n:
        raise ValueError("prompt_ids must be unique")
    if pool.texts is not None and (
        len(pool.texts.prompts) != n or len(pool.texts.responses) != n or any(len(r) != k for r in pool.texts.responses)
    ):
        raise ValueError(f"texts must hold {n} prompts with {k} response slots each")
    n_valid = pool.valid.sum(axis=1)
    if np.any(n_valid < 2):
        p = int(np.argmax(n_valid < 2))
        raise ValueError(f"prompt {pool.prompt_ids[p]!r} has {int(n_valid[p])} valid responses, expected at least 2")
    ids = pool.model_ids[pool.valid]
    if ids.size and (ids.min() < 0 or ids.max() >= len(pool.model_names)):
        bad = int(ids.min() if ids.min() < 0 else ids.max())
        raise ValueError(f"model_ids must lie in [0, {len(pool.model_names)}), got {bad}")
    for name in ("judge_scores", "true_quality"):
        _check_finite(pool, name, ~np.isfinite(getattr(pool, name)) & pool.valid)
    _check_finite(pool, "features", _nonfinite_rows(pool.features) & pool.valid)


def _nonfinite_rows(features: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``[N, K]`` mask of responses with a non-finite feature, read in chunks so a memmap is never loaded whole."""
    out = np.empty(features.shape[:2], dtype=bool)
    for start in range(0, features.shape[0], chunk):
        out[start : start + chunk] = ~np.isfinite(features[start : start + chunk]).all(axis=-1)
    return out


def _check_finite(pool: ResponsePool, name: str, bad: np.ndarray) -> None:
    if bad.any():
        p, r = np.argwhere(bad)[0]
        raise ValueError(f"{name} of prompt {pool.prompt_ids[p]!r}, response {int(r)} is not finite")
