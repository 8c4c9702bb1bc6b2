"""Entry points of the real-data ids: ``ActiveUF/Replay-v0`` (any dataset) and ``ActiveUF/AlpacaEval-v0``.

Both build an :class:`~activeuf_env.envs.active_uf.ActiveUFEnv` over a
:class:`~activeuf_env.data.pool_factory.DatasetPool`, a small picklable description of the data that each process
reads once, so the core env never imports the readers.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from activeuf_env._validation import check_keywords
from activeuf_env.core.pool import ResponsePool
from activeuf_env.data.locate import locate_alpaca_eval
from activeuf_env.data.pool_factory import DatasetPool
from activeuf_env.data.readers import read_auf_dataset, read_multimodel_jsonl
from activeuf_env.envs.active_uf import ActiveUFEnv

__all__ = [
    "ALPACA_EVAL_BATCH_SIZE",
    "ALPACA_EVAL_EVAL_SIZE",
    "ALPACA_EVAL_PROMPTS",
    "make_alpaca_eval_env",
    "make_replay_env",
]

ALPACA_EVAL_BATCH_SIZE = 64
"""Prompts per round of ``ActiveUF/AlpacaEval-v0`` (AUF's batch size)."""
ALPACA_EVAL_PROMPTS = 805
"""Prompts of the shared AlpacaEval data."""

ALPACA_EVAL_EVAL_SIZE = 165
"""Held-out prompts of ``ActiveUF/AlpacaEval-v0``: 805 - 165 = 640 train prompts, exactly 10 rounds of 64."""


_ENV_KEYWORDS = frozenset(inspect.signature(ActiveUFEnv.__init__).parameters) - {"self"}
# Reader options a user passes straight to gym.make: the readers' own keywords (``features`` is ``features_path``).
_READER_KEYWORDS = frozenset(
    name
    for reader in (read_auf_dataset, read_multimodel_jsonl, ResponsePool.load)
    for name in inspect.signature(reader).parameters
    if name not in ("path", "features")
)


def _split_keywords(
    env_id: str, own: tuple[str, ...], env_kwargs: dict[str, Any], reader_kwargs: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Env keywords and reader keywords of a real-data entry point; an unknown one is an error naming the closest."""
    check_keywords(env_id, env_kwargs, {*own, *_ENV_KEYWORDS, *_READER_KEYWORDS, "reader_kwargs"})
    reader, env = dict(reader_kwargs or {}), {}
    for key, value in env_kwargs.items():
        (env if key in _ENV_KEYWORDS else reader)[key] = value
    return env, reader


def make_replay_env(
    data_path: str | Path | None = None,
    features_path: str | Path | None = None,
    *,
    reader_kwargs: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> ActiveUFEnv:
    """Entry point of ``ActiveUF/Replay-v0``: an environment over any real dataset.

    The dataset is read at construction (the env needs its ``K`` and ``D``) and once per process after that
    (:class:`~activeuf_env.data.pool_factory.DatasetPool`); the env pickles without it.

    Args:
        data_path: anything :func:`~activeuf_env.data.readers.load_pool_from_path` reads: an AUF
            ``PromptWithCompletions`` dataset (JSONL, Parquet, ``datasets`` directory), a shared multi-model JSONL
            file, the shared AlpacaEval directory or a saved pool (``.npz``).
        features_path: precomputed embeddings (a directory of ``prompt_embeddings.npy`` and
            ``response_embeddings.npy`` aligned with the file) or a local encoder model; ``None``: the reader's
            default.
        reader_kwargs: further arguments of the reader (``slots``, ``score_transform``, ``true_quality_field``...).
        **env_kwargs: arguments of :class:`ActiveUFEnv` (``batch_size``, ``eval_size``, ``budget``...).

    Raises:
        ValueError: no ``data_path``, or ``instances`` given too.
        FileNotFoundError: ``data_path`` does not exist (the message names it).

    Example:
        >>> import tempfile, pathlib, gymnasium
        >>> from activeuf_env.core.synthetic import SyntheticPoolConfig, make_synthetic_pool
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = make_synthetic_pool(SyntheticPoolConfig(n_prompts=40, feature_dim=8)).save(
        ...     pathlib.Path(tmp.name) / "pool.npz")
        >>> env = gymnasium.make("ActiveUF/Replay-v0", data_path=path, batch_size=8, eval_size=8)
        >>> env.unwrapped.n_responses, env.unwrapped.feature_dim
        (30, 8)
        >>> tmp.cleanup()
    """
    env_kwargs, reader_kwargs = _split_keywords(
        "ActiveUF/Replay-v0", ("data_path", "features_path"), env_kwargs, reader_kwargs
    )
    if data_path is None:
        raise ValueError(
            "ActiveUF/Replay-v0 needs data_path= (a dataset file or directory, e.g. "
            'gymnasium.make("ActiveUF/Replay-v0", data_path="prefs.jsonl")), got None'
        )
    if "instances" in env_kwargs:
        raise ValueError("ActiveUF/Replay-v0 builds its instance from data_path; do not pass instances= too")
    return ActiveUFEnv(DatasetPool(data_path, features_path, reader_kwargs), **env_kwargs)


def make_alpaca_eval_env(
    data_dir: str | Path | None = None,
    *,
    batch_size: int = ALPACA_EVAL_BATCH_SIZE,
    eval_size: float | int = ALPACA_EVAL_EVAL_SIZE,
    reader_kwargs: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> ActiveUFEnv:
    """Entry point of ``ActiveUF/AlpacaEval-v0``: the shared AlpacaEval multi-model data as an environment.

    805 prompts, each answered by 55 to 57 of 57 LLMs and scored by the AlpacaEval 2 GPT-4-turbo judge as the
    probability of beating a fixed strong reference (``gpt4_1106_preview``). The pool has ``K = 57`` slots, slot
    ``k`` holding model ``k``'s response (``valid == 0`` and zero features where a model has none) and
    ``D = 768`` features ``[r, sqrt(384)·(r ⊙ p)]`` from the shipped all-MiniLM-L6-v2 prompt and response
    embeddings (:func:`~activeuf_env.data.embeddings.compose_features`). Judge scores are the win probabilities as
    clipped log-odds ``logit(clip(p, 1e-6, 1 - 1e-6))`` (range ±13.8; differences are Bradley-Terry reward
    differences, within-prompt rankings unchanged; see :mod:`activeuf_env.data.readers`). There is no second judge,
    so ``true_quality`` equals the judge score and the downstream scores measure agreement with that judge.
    The defaults hold out 165 prompts and offer the other 640 in exactly 10 rounds of 64 (640 labels).

    Args:
        data_dir: the shared data directory (or its ``alpaca_eval_multimodel/`` subdirectory); ``None`` is
            ``$ACTIVEUF_SHARED_DATA``, else ``../shared/data`` beside the checkout.
        batch_size: prompts per round.
        eval_size: held-out prompts (a count or a fraction).
        reader_kwargs: further arguments of :func:`~activeuf_env.data.readers.read_alpaca_eval` (``score_transform``,
            ``dtype``, ``with_texts``...).
        **env_kwargs: other arguments of :class:`ActiveUFEnv`.

    Raises:
        FileNotFoundError: the data is absent; the message names the expected path and how to point at it.
    """
    env_kwargs, reader_kwargs = _split_keywords("ActiveUF/AlpacaEval-v0", ("data_dir",), env_kwargs, reader_kwargs)
    try:
        path = locate_alpaca_eval(data_dir)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"ActiveUF/AlpacaEval-v0 needs the shared AlpacaEval data. {err} "
            '(e.g. gymnasium.make("ActiveUF/AlpacaEval-v0", data_dir="/path/to/shared/data"))'
        ) from None
    if "instances" in env_kwargs:
        raise ValueError("ActiveUF/AlpacaEval-v0 builds its instance from the shared data; do not pass instances=")
    return ActiveUFEnv(DatasetPool(path, None, reader_kwargs), batch_size=batch_size, eval_size=eval_size, **env_kwargs)
