"""The per-episode result store of a benchmark: one JSON file per finished episode, written as the episode ends.

A benchmark's output directory keeps every finished episode in ``episodes/`` (one file per (agent, seed), written
atomically by the parent process as the outcome arrives), and ``config.json`` records the settings that decide the
episodes. The tidy table, the summary and the plots are always built from the stored episodes, so

- a fault at any point (a full disk, a read-only folder, ``kill -9``) loses at most the episodes still running;
- ``resume=True`` (``activeuf bench ... --resume``) runs only the episodes that are not stored (failed ones are run
  again) and writes the same tables as an uninterrupted run, because every row comes from a stored file either way;
- a resume with other settings is refused by :func:`check_same_settings`, naming each difference.

Floats survive the JSON round trip exactly (Python writes the shortest ``repr`` that reads back to the same double),
so a table rebuilt from the store equals the one built from the episodes in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from activeuf_env.runner.artefacts import EPISODES_FOLDER, write_json
from activeuf_env.runner.outcome import EpisodeOutcome
from activeuf_env.tracking.serialize import to_jsonable

__all__ = [
    "EPISODE_SETTINGS",
    "EpisodeStore",
    "ResultsNotWritten",
    "check_same_settings",
    "settings_differences",
]

EPISODE_SETTINGS: tuple[str, ...] = ("env_id", "env", "agents", "torch_threads")
"""The keys of ``config.json`` that decide an episode's rows; a resume must match them (seeds and agents may grow)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ResultsNotWritten(OSError):
    """Writing into the output directory failed; the message says what is kept there and how to finish the run."""


class EpisodeStore:
    """The finished episodes of one output directory (see the module docstring).

    Args:
        out: the benchmark's output directory; the episodes live in ``out / "episodes"``.
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.folder = self.out / EPISODES_FOLDER

    def path(self, agent: str, seed: int) -> Path:
        """The file of the (agent, seed) episode: the agent name made file-safe, plus a hash when that changed it."""
        slug = _UNSAFE.sub("_", agent)
        if slug != agent:  # 'pkg.mod:Agent' and 'pkg.mod_Agent' must not share a file
            slug += "-" + hashlib.sha1(agent.encode()).hexdigest()[:8]
        return self.folder / f"{slug}--seed-{int(seed)}.json"

    def write(self, outcome: EpisodeOutcome) -> Path:
        """Store one outcome (atomically, so a reader never sees half an episode); returns its file."""
        return write_json(self.path(outcome.agent, outcome.seed), dataclasses.asdict(outcome))

    def read(self, agent: str, seed: int) -> EpisodeOutcome | None:
        """The stored outcome of (agent, seed), or ``None`` when there is none.

        Raises:
            ValueError: a stored file that is not an episode of this (agent, seed), naming the file.
        """
        path = self.path(agent, seed)
        if not path.is_file():
            return None
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            outcome = EpisodeOutcome(**payload)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{str(path)!r} is not a stored episode ({type(exc).__name__}: {exc})") from None
        if (outcome.agent, outcome.seed) != (agent, seed):
            raise ValueError(
                f"{str(path)!r} holds the episode of agent {outcome.agent!r} seed {outcome.seed}, expected agent "
                f"{agent!r} seed {seed}"
            )
        return outcome

    def read_all(self, keys: Iterable[tuple[str, int]]) -> Iterator[EpisodeOutcome]:
        """The stored outcomes of ``keys`` (agent, seed), in that order, skipping those not stored."""
        for agent, seed in keys:
            outcome = self.read(agent, seed)
            if outcome is not None:
                yield outcome

    def count(self) -> int:
        """How many episode files the store holds (of any grid)."""
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0


def settings_differences(stored: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Where two settings trees differ, one ``key.path: stored X, this run Y`` line per leaf.

    Example:
        >>> settings_differences({"env": {"batch_size": 16, "seed": 0}}, {"env": {"batch_size": 32, "seed": 0}})
        ['env.batch_size: stored 16, this run 32']
    """
    lines = []
    for key in sorted(set(stored) | set(current), key=str):
        name = f"{prefix}{key}"
        if key not in stored or key not in current:
            where = "this run only" if key not in stored else "stored only"
            value = current.get(key, stored.get(key))
            lines.append(f"{name}: {where} ({json.dumps(value)})")
        elif isinstance(stored[key], Mapping) and isinstance(current[key], Mapping):
            lines.extend(settings_differences(stored[key], current[key], prefix=f"{name}."))
        elif stored[key] != current[key]:
            lines.append(f"{name}: stored {json.dumps(stored[key])}, this run {json.dumps(current[key])}")
    return lines


def check_same_settings(stored_config: Mapping[str, Any], config: Mapping[str, Any], config_path: Path) -> None:
    """Refuse to resume a run whose episode settings (:data:`EPISODE_SETTINGS`) differ from the stored ones.

    Agents that only one of the two runs has are fine (a resume may add agents or seeds); an agent of both must have
    the same settings.

    Raises:
        ValueError: naming every difference and the stored ``config.json``.
    """
    # Through JSON, so that tuples and lists (and other JSON-equal values) compare equal.
    stored = json.loads(json.dumps(to_jsonable({key: stored_config.get(key) for key in EPISODE_SETTINGS})))
    current = json.loads(json.dumps(to_jsonable({key: config.get(key) for key in EPISODE_SETTINGS})))
    shared = set(stored["agents"] or {}) & set(current["agents"] or {})
    stored["agents"] = {name: stored["agents"][name] for name in shared}
    current["agents"] = {name: current["agents"][name] for name in shared}
    differences = settings_differences(stored, current)
    if differences:
        raise ValueError(
            f"cannot resume: the settings differ from the run stored in {str(config_path)!r}: "
            + "; ".join(differences)
            + " (use another out, or overwrite=True / --overwrite to replace that run)"
        )
