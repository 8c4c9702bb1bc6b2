"""Validation of pair actions: every bad value is reported with its prompt before anything changes."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from activeuf_env._validation import check_int
from activeuf_env.core.pool import ResponsePool

__all__ = ["check_judge_calls", "validate_pairs"]


def check_judge_calls(value: Any) -> int | Literal["all"]:
    """``judge_calls_per_pair`` checked: an integer ``>= 1`` or ``"all"`` (every valid response of the prompt)."""
    if isinstance(value, str) and value == "all":
        return "all"
    try:
        return check_int("judge_calls_per_pair", value, low=1)  # type: ignore[return-value]
    except ValueError:
        raise ValueError(f"judge_calls_per_pair must be an integer >= 1 or 'all', got {value!r}") from None


def validate_pairs(
    action: object, batch_size: int, n_responses: int, prompts: np.ndarray, pool: ResponsePool
) -> np.ndarray:
    """Check an action and return it as int64 ``[B, 2]`` pairs.

    Args:
        action: ``[i_0, j_0, i_1, j_1, ...]`` of length ``2B`` or an array of shape ``[B, 2]``, integer dtype.
        batch_size: ``B``.
        n_responses: ``K``.
        prompts: the batch's pool prompt indices, ``-1`` for padding rows (whose pairs are not checked).
        pool: the pool the prompts index (for validity and prompt ids in messages).

    Raises:
        ValueError: wrong shape, a non-integer dtype (floats, NaN, bools), an index outside ``[0, K)`` or a padded
            response; the message names the batch row, the prompt id and the value.

    Example:
        >>> import numpy as np
        >>> pool = ResponsePool(np.zeros((1, 3, 1), np.float32), np.ones((1, 3), np.float32),
        ...     np.ones((1, 3), np.float32), np.zeros((1, 3), int), np.array([[True, True, False]]), ["m"], ["p0"])
        >>> validate_pairs([0, 1], 1, 3, np.array([0]), pool).tolist()
        [[0, 1]]
        >>> validate_pairs([0, 2], 1, 3, np.array([0]), pool)
        Traceback (most recent call last):
        ...
        ValueError: pair of batch row 0 (prompt 'p0') picks response 2, which is padding (not a valid response)
    """
    if isinstance(action, np.ma.MaskedArray) and np.ma.getmaskarray(action).any():
        position = int(np.argmax(np.ma.getmaskarray(action).reshape(-1)))
        where = _where(position, action.shape, batch_size, prompts, pool)
        raise ValueError(f"expected integer response indices, got a masked entry{where}")
    array = np.asarray(np.ma.getdata(action) if isinstance(action, np.ma.MaskedArray) else action)
    if array.dtype.kind not in "iu" or (not isinstance(action, np.ndarray) and _holds_bool(action)):
        _raise_non_integer(action, array, batch_size, prompts, pool)
    if array.shape == (2 * batch_size,):
        pairs = array.reshape(batch_size, 2)
    elif array.shape == (batch_size, 2):
        pairs = array
    else:
        raise ValueError(f"expected an action of shape ({2 * batch_size},) or ({batch_size}, 2), got {array.shape}")
    live = prompts >= 0
    # Range first, in the action's own dtype: a uint64 2**64 - 1 must not wrap to -1 in the cast.
    out_of_range = live[:, None] & ((pairs < 0) | (pairs >= n_responses))
    if out_of_range.any():
        row, col = np.argwhere(out_of_range)[0]
        raise ValueError(
            f"pair of batch row {row} ({_prompt_name(prompts, row, pool)}) has index {int(pairs[row, col])}, "
            f"expected an index in [0, {n_responses})"
        )
    pairs = pairs.astype(np.int64)
    rows = np.where(live, prompts, 0)
    picked_valid = np.take_along_axis(pool.valid[rows], np.where(live[:, None], pairs, 0), axis=1)
    padded = live[:, None] & (pairs[:, :1] != pairs[:, 1:]) & ~picked_valid
    if padded.any():
        row, col = np.argwhere(padded)[0]
        raise ValueError(
            f"pair of batch row {row} ({_prompt_name(prompts, row, pool)}) picks response {int(pairs[row, col])}, "
            "which is padding (not a valid response)"
        )
    return pairs


def _prompt_name(prompts: np.ndarray, row: int, pool: ResponsePool) -> str:
    index = int(prompts[row])
    return f"prompt {pool.prompt_ids[index]!r}" if index >= 0 else "a padding row"


def _holds_bool(action: object) -> bool:
    """Whether a (nested) list or tuple action holds a bool, which ``np.asarray`` would silently turn into 0 or 1."""
    items = np.asarray(action, dtype=object).reshape(-1)
    return any(isinstance(item, (bool, np.bool_)) for item in items)


def _where(position: int, shape: tuple[int, ...], batch_size: int, prompts: np.ndarray, pool: ResponsePool) -> str:
    """`` at batch row R (prompt 'id')`` for flat position ``position`` of an action of a pair shape, else ``""``."""
    if tuple(shape) not in ((2 * batch_size,), (batch_size, 2)):
        return ""
    row = position // 2
    return f" at batch row {row} ({_prompt_name(prompts, row, pool)})"


def _is_index(item: object) -> bool:
    """An integer (not a bool) that fits int64; anything else (floats, NaN, None, timedeltas, ...) is not."""
    # numpy counts timedelta64 as a signed integer type; an index is not a duration.
    if isinstance(item, (bool, np.bool_, np.timedelta64)) or not isinstance(item, (int, np.integer)):
        return False
    return -(2**63) <= int(item) < 2**63


def _raise_non_integer(
    action: object, array: np.ndarray, batch_size: int, prompts: np.ndarray, pool: ResponsePool
) -> None:
    """Name the first entry that is not an integer index (for a float action: the first non-integral value)."""
    # The action's own entries (numpy scalars for an array, Python objects for a list), so the message shows them.
    items = array.reshape(-1) if isinstance(action, np.ndarray) else np.asarray(action, dtype=object).reshape(-1)
    flags = [not _is_index(item) for item in items]
    if array.dtype.kind == "f":  # every entry is a float: point at one that is not even integral
        flags = [not (np.isfinite(item) and float(item).is_integer()) for item in items]
    position = flags.index(True) if True in flags else 0
    value = items[position] if items.size else None
    where = _where(position, array.shape, batch_size, prompts, pool) if items.size else ""
    raise ValueError(f"expected integer response indices, got dtype {array.dtype} with value {value!r}{where}")
