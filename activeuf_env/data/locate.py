"""Where the shared data lives: the shared data directory and the AlpacaEval multi-model file in it.

The shared data directory sits beside the project checkout (``../shared/data``) unless ``$ACTIVEUF_SHARED_DATA``
names another; the AlpacaEval data is ``alpaca_eval_multimodel/alpaca_eval_multimodel.jsonl.gz`` in it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ALPACA_EVAL_DIRNAME",
    "ALPACA_EVAL_FILENAME",
    "SHARED_DATA_ENV",
    "default_shared_data_dir",
    "holds_alpaca_eval",
    "locate_alpaca_eval",
]

SHARED_DATA_ENV = "ACTIVEUF_SHARED_DATA"
"""Environment variable naming the shared data directory (the one holding ``alpaca_eval_multimodel/``)."""

ALPACA_EVAL_DIRNAME = "alpaca_eval_multimodel"
ALPACA_EVAL_FILENAME = "alpaca_eval_multimodel.jsonl.gz"

_CHECKOUT = Path(__file__).resolve().parents[2]
"""The project checkout (``activeuf_env/data/locate.py`` -> the directory above ``activeuf_env/``)."""


def default_shared_data_dir() -> Path:
    """The shared data directory: ``$ACTIVEUF_SHARED_DATA``, else ``../shared/data`` beside the project checkout.

    The checkout is found from this package's location (an editable install) and, failing that, from the working
    directory (``../shared/data`` or ``./shared/data``). When none exists the first candidate is returned, so errors
    name where the data was expected.
    """
    if os.environ.get(SHARED_DATA_ENV):
        return Path(os.environ[SHARED_DATA_ENV]).expanduser()
    candidates = [
        _CHECKOUT.parent / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
        Path.cwd() / "shared" / "data",
    ]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _candidates(base: Path) -> tuple[Path, Path]:
    return base / ALPACA_EVAL_FILENAME, base / ALPACA_EVAL_DIRNAME / ALPACA_EVAL_FILENAME


def holds_alpaca_eval(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` (the shared data directory or its ``alpaca_eval_multimodel/``) holds the AlpacaEval
    file."""
    return any(candidate.is_file() for candidate in _candidates(Path(directory)))


def locate_alpaca_eval(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``alpaca_eval_multimodel.jsonl.gz``.

    Args:
        data_dir: the shared data directory or its ``alpaca_eval_multimodel/`` subdirectory; ``None`` is
            :func:`default_shared_data_dir`.

    Raises:
        FileNotFoundError: the file is absent; the message names the expected path and how to point at the data.
    """
    base = default_shared_data_dir() if data_dir is None else Path(data_dir).expanduser()
    for candidate in _candidates(base):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"AlpacaEval multi-model data not found: expected {str(base / ALPACA_EVAL_DIRNAME / ALPACA_EVAL_FILENAME)!r}. "
        f"Put the shared data beside the checkout (../shared/data), set ${SHARED_DATA_ENV}, or pass data_dir="
    )
