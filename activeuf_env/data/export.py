"""Export of collected preference pairs in the AUF / UltraFeedback *binarized* layout.

One row per collected pair, with the columns of Hugging Face's ``ultrafeedback_binarized`` (``prompt``,
``prompt_id``, ``chosen``, ``rejected``, ``score_chosen``, ``score_rejected``) and the model columns of the pair
datasets the ActiveUltraFeedback loop writes (``chosen_model``, ``rejected_model``), plus a few the environment
knows. ``chosen`` and ``rejected`` are conversations ``[{"role": "user", "content": prompt}, {"role": "assistant",
"content": response}]``, ready for DPO or reward-model trainers (e.g. TRL's).

| column | type | meaning |
|---|---|---|
| ``prompt_id`` | str | the pool's prompt id |
| ``prompt`` | str | the prompt text |
| ``chosen``, ``rejected`` | list of ``{"role", "content"}`` | the user's prompt, then the assistant's response |
| ``score_chosen``, ``score_rejected`` | float | the judge scores (``pool.judge_scores``) of the two responses |
| ``chosen_model``, ``rejected_model`` | str | the models that wrote them |
| ``chosen_index``, ``rejected_index`` | int | their response slots in the pool (``[prompt, slot]``) |
| ``round`` | int | the round (0-based ``env.step``) in which the pair was labelled |

Scores are the pool's judge scores, i.e. after any transform its reader applied (AlpacaEval's win probabilities
become clipped log-odds, see :mod:`activeuf_env.data.readers`). **Pools without texts** (the synthetic ones) get
placeholder strings: the prompt is its prompt id and a response is ``"<response {slot} to {prompt_id} by
{model}>"``, unique within the pool, so the rows stay well-formed for tools that expect text.

The functions are pure (a pool and the ``[n, 4]`` pairs in, rows out); ``ActiveUFEnv.collected_dataset`` is a thin
wrapper over :func:`export_pairs`.

Example:
    >>> import numpy as np
    >>> from activeuf_env.core.pool import PoolTexts, ResponsePool
    >>> pool = ResponsePool(np.zeros((1, 2, 1), np.float32), np.array([[4.0, 2.0]], np.float32),
    ...     np.array([[4.0, 2.0]], np.float32), np.array([[0, 1]]), np.ones((1, 2), bool), ["a", "b"], ["p0"],
    ...     texts=PoolTexts(["Hi?"], [["Hello.", "Go away."]]))
    >>> row = pairs_to_records(pool, np.array([[0, 0, 1, 0]]))[0]
    >>> row["chosen"][1], row["score_chosen"], row["rejected_model"]
    ({'role': 'assistant', 'content': 'Hello.'}, 4.0, 'b')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from activeuf_env._validation import check_choice
from activeuf_env.core.pool import ResponsePool
from activeuf_env.data.formats import write_jsonl

if TYPE_CHECKING:
    import datasets

__all__ = [
    "BINARIZED_COLUMNS",
    "EXPORT_FORMATS",
    "export_pairs",
    "pairs_to_columns",
    "pairs_to_dataset",
    "pairs_to_records",
    "write_pairs_jsonl",
]

BINARIZED_COLUMNS = (
    "prompt_id",
    "prompt",
    "chosen",
    "rejected",
    "score_chosen",
    "score_rejected",
    "chosen_model",
    "rejected_model",
    "chosen_index",
    "rejected_index",
    "round",
)
"""The columns of an exported preference dataset, in order."""

ExportFormat = Literal["dataset", "jsonl", "records"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("dataset", "jsonl", "records")
"""The ``format=`` choices of :func:`export_pairs`."""


def _check_pairs(pool: ResponsePool, pairs: np.ndarray) -> np.ndarray:
    """``pairs`` as int64 ``[n, 4]`` naming valid responses of the pool; a ``ValueError`` names the bad row."""
    array = np.asarray(pairs)
    if array.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 4 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            "pairs must be an integer array [n, 4] of (prompt, chosen, rejected, round), "
            f"got dtype {array.dtype} and shape {array.shape}"
        )
    array = array.astype(np.int64, copy=False)
    p, c, r = array[:, 0], array[:, 1], array[:, 2]
    bad = (p < 0) | (p >= pool.n_prompts) | (c < 0) | (c >= pool.n_responses) | (r < 0) | (r >= pool.n_responses)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"pair {row} = {array[row].tolist()} is out of range for a pool of {pool.n_prompts} prompts "
            f"x {pool.n_responses} responses"
        )
    invalid = ~(pool.valid[p, c] & pool.valid[p, r])
    if invalid.any():
        row = int(np.argmax(invalid))
        raise ValueError(
            f"pair {row} = {array[row].tolist()} names a padded response of prompt {pool.prompt_ids[p[row]]!r}"
        )
    return array


def _placeholders(prompt_ids: list[str], slots: list[int], models: list[str]) -> list[str]:
    return [f"<response {k} to {pid} by {m}>" for pid, k, m in zip(prompt_ids, slots, models, strict=True)]


def _messages(prompts: list[str], responses: list[str]) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        for q, a in zip(prompts, responses, strict=True)
    ]


def pairs_to_columns(pool: ResponsePool, pairs: np.ndarray) -> dict[str, list[Any]]:
    """The collected pairs as columns (:data:`BINARIZED_COLUMNS`) of plain Python values.

    Args:
        pool: the train pool the pairs index into.
        pairs: int ``[n, 4]``: (prompt index, chosen slot, rejected slot, round), as ``env.collected_pairs()``.

    Returns:
        A dict from column name to a list of ``n`` values (see the module docstring).

    Raises:
        ValueError: ``pairs`` has the wrong shape or dtype, or names an out-of-range or padded response (the
            message names the row).
    """
    array = _check_pairs(pool, pairs)
    p, c, r, rounds = (array[:, i] for i in range(4))
    names = np.asarray(pool.model_names, dtype=object)
    prompt_ids = np.asarray(pool.prompt_ids, dtype=object)[p].tolist()
    chosen_model = names[pool.model_ids[p, c]].tolist()
    rejected_model = names[pool.model_ids[p, r]].tolist()
    p_list, c_list, r_list = p.tolist(), c.tolist(), r.tolist()
    if pool.texts is not None:
        prompts = [pool.texts.prompts[i] for i in p_list]
        chosen_text = [pool.texts.responses[i][k] for i, k in zip(p_list, c_list, strict=True)]
        rejected_text = [pool.texts.responses[i][k] for i, k in zip(p_list, r_list, strict=True)]
    else:
        prompts = list(prompt_ids)
        chosen_text = _placeholders(prompt_ids, c_list, chosen_model)
        rejected_text = _placeholders(prompt_ids, r_list, rejected_model)
    return {
        "prompt_id": prompt_ids,
        "prompt": prompts,
        "chosen": _messages(prompts, chosen_text),
        "rejected": _messages(prompts, rejected_text),
        "score_chosen": _shortest_floats(pool.judge_scores[p, c]),
        "score_rejected": _shortest_floats(pool.judge_scores[p, r]),
        "chosen_model": chosen_model,
        "rejected_model": rejected_model,
        "chosen_index": c_list,
        "rejected_index": r_list,
        "round": rounds.tolist(),
    }


def _columns_to_records(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(BINARIZED_COLUMNS, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def pairs_to_records(pool: ResponsePool, pairs: np.ndarray) -> list[dict[str, Any]]:
    """The collected pairs as a list of row dicts (one per pair, keys :data:`BINARIZED_COLUMNS`).

    Raises:
        ValueError: as :func:`pairs_to_columns`.
    """
    return _columns_to_records(pairs_to_columns(pool, pairs))


def _binarized_features() -> datasets.Features:
    import datasets

    message = [{"content": datasets.Value("string"), "role": datasets.Value("string")}]
    types = {
        "prompt_id": datasets.Value("string"),
        "prompt": datasets.Value("string"),
        "chosen": message,
        "rejected": message,
        "score_chosen": datasets.Value("float64"),
        "score_rejected": datasets.Value("float64"),
        "chosen_model": datasets.Value("string"),
        "rejected_model": datasets.Value("string"),
        "chosen_index": datasets.Value("int64"),
        "rejected_index": datasets.Value("int64"),
        "round": datasets.Value("int64"),
    }
    return datasets.Features(types)


def pairs_to_dataset(pool: ResponsePool, pairs: np.ndarray) -> datasets.Dataset:
    """The collected pairs as a Hugging Face ``datasets.Dataset`` with a fixed schema (also when empty).

    Raises:
        ModuleNotFoundError: ``datasets`` is not installed (``pip install 'activeuf-env[data]'``).
        ValueError: as :func:`pairs_to_columns`.
    """
    try:
        import datasets
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "format='dataset' needs the 'datasets' package (pip install 'activeuf-env[data]'); "
            "format='jsonl' or 'records' work without it"
        ) from err
    return datasets.Dataset.from_dict(pairs_to_columns(pool, pairs), features=_binarized_features())


def write_pairs_jsonl(pool: ResponsePool, pairs: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write the collected pairs as JSON lines (gzipped when ``path`` ends in ``.gz``), atomically.

    The rows go to a temporary file beside ``path`` that then replaces it, so a failed write leaves any earlier
    file at ``path`` untouched and no partial file behind.

    Returns:
        ``path``.

    Raises:
        OSError: the file cannot be written (the pairs are not affected).
        ValueError: as :func:`pairs_to_columns`.
    """
    return write_jsonl(Path(path).expanduser(), pairs_to_records(pool, pairs))


def export_pairs(
    pool: ResponsePool,
    pairs: np.ndarray,
    format: ExportFormat = "dataset",
    path: str | os.PathLike[str] | None = None,
) -> datasets.Dataset | Path | list[dict[str, Any]]:
    """Export collected pairs as a ``datasets.Dataset``, a JSONL file or a list of row dicts.

    Args:
        pool: the train pool the pairs index into.
        pairs: int ``[n, 4]`` (prompt index, chosen, rejected, round).
        format: ``"dataset"`` (returns a ``datasets.Dataset``), ``"jsonl"`` (writes ``path``, returns it) or
            ``"records"`` (returns a list of dicts).
        path: the JSONL file to write; required for ``"jsonl"`` and only allowed there.

    Raises:
        ValueError: an unknown ``format``, ``"jsonl"`` without a ``path``, a ``path`` with another format, or bad
            ``pairs``.
        OSError: the JSONL file cannot be written.
    """
    format = check_choice("format", format, EXPORT_FORMATS)
    if format == "jsonl":
        if path is None:
            raise ValueError("format='jsonl' needs path= (the file to write), got path=None")
        return write_pairs_jsonl(pool, pairs, path)
    if path is not None:
        raise ValueError(f"path is only used with format='jsonl', got path={str(path)!r} with format={format!r}")
    if format == "records":
        return pairs_to_records(pool, pairs)
    return pairs_to_dataset(pool, pairs)


def _shortest_floats(values: np.ndarray) -> list[float]:
    """Scores as the shortest decimals that round-trip in their stored dtype, so a dataset's ``3.22`` stored as
    float32 exports as ``3.22``, not ``3.2200000286102295`` (the float32 value printed as a float64)."""
    values = np.asarray(values)
    if values.dtype == np.float64:
        return values.tolist()
    return [float(np.format_float_positional(value, unique=True, trim="-")) for value in values]
