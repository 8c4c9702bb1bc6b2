"""The files a benchmark writes into its output directory, and how: every write is atomic (:mod:`activeuf_env._io`).

A reader of ``out`` sees either the previous version of a file or the complete new one, never a half-written file,
even when the run is interrupted or the disk fills up. The names are :data:`ARTEFACTS` (plus the ``wandb/``
folder); :func:`clear_outputs` removes exactly those before a new run.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import platform
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym

from activeuf_env._io import atomic_path, atomic_write_text
from activeuf_env.runner.plots import plot_cumulative_regret, plot_final_scores, plot_score_curves
from activeuf_env.tracking.serialize import to_jsonable

__all__ = [
    "ARTEFACTS",
    "EPISODES_FOLDER",
    "WANDB_FAILURE_FLAG",
    "WANDB_FOLDER",
    "clear_outputs",
    "env_settings",
    "versions",
    "write_json",
    "write_plots",
    "write_summary",
    "write_tables",
]

ARTEFACTS: dict[str, str] = {
    "results_csv": "results.csv",
    "results_parquet": "results.parquet",
    "summary": "summary.md",
    "config": "config.json",
    "score_plot": "score_vs_labels.png",
    "regret_plot": "cumulative_regret.png",
    "final_plot": "final_scores.png",
}
"""The files :func:`~activeuf_env.runner.benchmark.run_benchmark` writes into its output directory, by key."""

EPISODES_FOLDER = "episodes"
"""The folder of one JSON file per finished episode (:mod:`~activeuf_env.runner.store`)."""

WANDB_FOLDER = "wandb"
"""The folder W&B writes its runs into (under the output directory unless ``wandb_dir`` says otherwise)."""

WANDB_FAILURE_FLAG = ".wandb-init-failed"
"""Written into the output directory by the first failing ``wandb.init``; later episodes then skip W&B."""

_VERSIONED = ("activeuf-env", "numpy", "torch", "gymnasium", "pandas", "wandb")


def clear_outputs(out: Path, *, keep_episodes: bool = False) -> None:
    """Remove the artefacts of an earlier run in ``out``: the files of :data:`ARTEFACTS` and the W&B failure flag,
    and unless ``keep_episodes`` (a resume) its stored episodes and ``wandb/`` runs too."""
    for name in (*ARTEFACTS.values(), WANDB_FAILURE_FLAG):
        (out / name).unlink(missing_ok=True)
    if keep_episodes:
        return
    for folder in (EPISODES_FOLDER, WANDB_FOLDER):
        if (out / folder).is_dir():
            shutil.rmtree(out / folder)


def write_json(path: Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (values through :func:`~activeuf_env.tracking.serialize.to_jsonable`)."""
    return atomic_write_text(path, json.dumps(to_jsonable(payload), indent=2) + "\n")


def write_summary(out: Path, markdown: str) -> Path:
    """Write ``summary.md``."""
    return atomic_write_text(out / ARTEFACTS["summary"], markdown)


def write_tables(results: Any, out: Path) -> tuple[dict[str, Path], list[str]]:
    """Write the CSV (an error here is fatal) and the Parquet copy (when pyarrow is there; a failure is reported).

    Args:
        results: the tidy ``pandas.DataFrame``.
        out: the output directory.

    Returns:
        ``(files, problems)``: the tables written, by key of :data:`ARTEFACTS`, and the problems to report.
    """
    csv = out / ARTEFACTS["results_csv"]
    with atomic_path(csv) as tmp:
        results.to_csv(tmp, index=False)
    files = {"results_csv": csv}
    if importlib.util.find_spec("pyarrow") is None:
        return files, []
    parquet = out / ARTEFACTS["results_parquet"]
    try:
        with atomic_path(parquet) as tmp:
            results.to_parquet(tmp, index=False)
    except Exception as exc:  # the CSV holds the same table
        return files, [f"writing {parquet.name} failed ({type(exc).__name__}: {exc}); {csv.name} holds the table"]
    files["results_parquet"] = parquet
    return files, []


def write_plots(results: Any, out: Path) -> tuple[dict[str, Path], list[str]]:
    """Draw the three PNG plots; a failing plot is reported, never raised (the tables are already written).

    Returns:
        ``(files, problems)``: the plots written, by key of :data:`ARTEFACTS`, and the problems to report.
    """
    files: dict[str, Path] = {}
    problems: list[str] = []
    for key, function in (
        ("score_plot", plot_score_curves),
        ("regret_plot", plot_cumulative_regret),
        ("final_plot", plot_final_scores),
    ):
        try:
            files[key] = function(results, out / ARTEFACTS[key])
        except Exception as exc:  # a plot failure must not lose the tables
            problems.append(f"plot {ARTEFACTS[key]} failed: {type(exc).__name__}: {exc}")
    return files, problems


def versions() -> dict[str, str]:
    """The versions of Python and of the packages that decide the results (those installed)."""
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def env_settings(env_id: str, env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The env's settings without building it: constructor defaults, then registered kwargs, then overrides.

    Example:
        >>> import activeuf_env
        >>> settings = env_settings("ActiveUF/Synthetic-v0", {"batch_size": 16})
        >>> settings["env_id"], settings["batch_size"], settings["eval_every"]
        ('ActiveUF/Synthetic-v0', 16, 1)
    """
    spec = gym.spec(env_id)
    settings: dict[str, Any] = {}
    try:
        entry = spec.entry_point
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module), attribute)
        for name, parameter in inspect.signature(entry).parameters.items():  # type: ignore[arg-type]
            if parameter.default is not inspect.Parameter.empty:
                settings[name] = parameter.default
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    settings.update(spec.kwargs)
    settings.update(env_kwargs)
    return {"env_id": env_id, **to_jsonable(settings)}
