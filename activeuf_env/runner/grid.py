"""A sweep's grid: hyperparameter values of the agents and of the env's ensemble, expanded into configurations.

A grid is data (a mapping, or a JSON / YAML file) with up to four sections, each mapping a name to its list of values:

- ``agent``: agent hyperparameters, applied to every agent of the sweep that has the hyperparameter (``beta`` is
  tuned for DRTS and DeltaUCB, and Random, which has none, is run once per value of the other sections);
- ``agents``: per-agent grids (``{"drts": {"beta": [1, 2, 4]}}``), replacing ``agent`` for those agents; every name
  must be a hyperparameter of that agent;
- ``reward_model``: fields of the env's :class:`~activeuf_env.RewardModelConfig` (the ensemble), replaced in the
  env's own config (registered or given);
- ``env``: other env keyword arguments.

:data:`PAPER_GRID` is ActiveUltraFeedback's tuning grid: acquisition ``beta`` ∈ {1, 2}, the ensemble's regularisation
decay base ``anchor_decay`` ∈ {0.9, 0.99, 0.999} and ``replay_factor`` ∈ {100, 1000}: 12 configurations for each
agent with a ``beta``, 6 for the others. The configurations of every agent are the product of its sections, in the
order of the grid (the last name varies fastest).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from activeuf_env._validation import check_keywords, check_type

__all__ = ["GRID_SECTIONS", "PAPER_GRID", "Configuration", "agent_configurations", "check_grid", "load_grid"]

GRID_SECTIONS: tuple[str, ...] = ("agent", "agents", "reward_model", "env")
"""The sections a grid may have."""

PAPER_GRID: dict[str, Any] = {
    "agent": {"beta": [1.0, 2.0]},
    "reward_model": {"anchor_decay": [0.9, 0.99, 0.999], "replay_factor": [100, 1000]},
}
"""ActiveUltraFeedback's tuning grid (12 configurations per agent with an acquisition ``beta``)."""


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One point of a grid: agent hyperparameters, ensemble fields and env kwargs (each empty when not swept).

    Example:
        >>> Configuration(agent={"beta": 2.0}, reward_model={"anchor_decay": 0.99}).label
        'beta=2.0, anchor_decay=0.99'
        >>> Configuration().label
        'defaults'
    """

    agent: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    reward_model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    env: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        """The swept values, ``name=value`` in order (``"defaults"`` for the empty configuration)."""
        sections = (self.agent, self.reward_model, self.env)
        parts = [f"{name}={value}" for section in sections for name, value in section.items()]
        return ", ".join(parts) or "defaults"

    def key(self) -> str:
        """A canonical JSON text of the configuration (equal configurations, equal keys)."""
        return json.dumps(self.as_dict(), sort_keys=True)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """The three sections as plain dicts."""
        return {"agent": dict(self.agent), "reward_model": dict(self.reward_model), "env": dict(self.env)}


def _check_values(where: str, section: Any) -> dict[str, list[Any]]:
    check_type(where, section, Mapping, "a mapping of names to lists of values")
    checked = {}
    for name, values in section.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"{where}.{name} must be a non-empty list of values, got {values!r}")
        if len({json.dumps(value, sort_keys=True) for value in values}) != len(values):
            raise ValueError(f"{where}.{name} lists a value twice: {list(values)!r}")
        checked[str(name)] = list(values)
    return checked


def check_grid(grid: Mapping[str, Any]) -> dict[str, Any]:
    """Check a grid's structure and return it with every section present (empty when absent).

    Raises:
        ValueError: naming the unknown section (with the closest known one), or the entry that is not a non-empty
            list of distinct values.

    Example:
        >>> check_grid({"agent": {"beta": [1, 2]}})["reward_model"]
        {}
        >>> check_grid({"reward_modle": {}})
        Traceback (most recent call last):
        ...
        ValueError: grid got an unknown keyword 'reward_modle'; did you mean 'reward_model'? Known: agent, agents, env, reward_model
    """  # noqa: E501 - the doctest's message is one line
    check_type("grid", grid, Mapping, "a mapping of sections (agent, agents, reward_model, env)")
    check_keywords("grid", grid, GRID_SECTIONS)
    checked: dict[str, Any] = {name: _check_values(name, grid.get(name, {})) for name in ("agent", "reward_model")}
    checked["env"] = _check_values("env", grid.get("env", {}))
    per_agent = grid.get("agents", {})
    check_type("agents", per_agent, Mapping, "a mapping of agent names to grids of hyperparameters")
    checked["agents"] = {name: _check_values(f"agents.{name}", values) for name, values in per_agent.items()}
    if "reward_model" in checked["env"]:
        raise ValueError("set the ensemble's fields in the reward_model section, not env.reward_model")
    return checked


def load_grid(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A grid from a mapping, a ``.json`` file or a ``.yaml``/``.yml`` file, checked by :func:`check_grid`.

    Raises:
        ValueError: the file cannot be parsed, or the grid is malformed (the message names the file or the entry).
        FileNotFoundError: there is no such file.
    """
    if isinstance(source, Mapping):
        return check_grid(source)
    path = Path(source)
    text = path.read_text(encoding="utf-8")
    parse: Any = json.loads
    errors: tuple[type[Exception], ...] = (json.JSONDecodeError,)
    if path.suffix in (".yaml", ".yml"):
        import yaml  # PyYAML comes with wandb, a core dependency

        parse, errors = yaml.safe_load, (yaml.YAMLError,)
    try:
        data = parse(text)
    except errors as exc:
        raise ValueError(f"cannot read the grid {str(path)!r}: {exc}") from None
    try:
        return check_grid(data if data is not None else {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the grid {str(path)!r}: {exc}") from None


def _product(section: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(section)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(section[n] for n in names))]


def _hyperparameters(agent_name: str) -> list[str]:
    import agents

    agent = agents.make(agent_name)
    return [field.name for field in dataclasses.fields(agent)] if dataclasses.is_dataclass(agent) else []


def agent_configurations(grid: Mapping[str, Any], agent_names: Iterable[str]) -> dict[str, list[Configuration]]:
    """Every agent's configurations: the product of its agent grid (its own, or the shared one restricted to its
    hyperparameters), the ``reward_model`` grid and the ``env`` grid.

    Raises:
        ValueError: ``agents`` names an agent that is not swept, or a hyperparameter the agent lacks.

    Example:
        >>> configs = agent_configurations({"agent": {"beta": [1, 2]}, "reward_model": {"replay_factor": [10, 100]}},
        ...                                ["drts", "random"])
        >>> [c.label for c in configs["drts"]]
        ['beta=1, replay_factor=10', 'beta=1, replay_factor=100', 'beta=2, replay_factor=10', 'beta=2, replay_factor=100']
        >>> [c.label for c in configs["random"]]
        ['replay_factor=10', 'replay_factor=100']
    """  # noqa: E501 - the doctest's output is one line
    grid = check_grid(grid)
    names = list(agent_names)
    stray = sorted(set(grid["agents"]) - set(names))
    if stray:
        raise ValueError(f"the grid's agents section names agents that are not swept: {stray} (sweeping {names})")
    ensemble, env = _product(grid["reward_model"]), _product(grid["env"])
    configurations = {}
    for name in names:
        known = _hyperparameters(name)
        if name in grid["agents"]:
            check_keywords(f"agents.{name} (hyperparameters of {name!r})", grid["agents"][name], known)
            own = grid["agents"][name]
        else:
            own = {key: values for key, values in grid["agent"].items() if key in known}
        configurations[name] = [
            Configuration(agent=a, reward_model=r, env=e) for a, r, e in itertools.product(_product(own), ensemble, env)
        ]
    return configurations
