"""The registry of agents and baselines: ``make(name, **kwargs)``, ``register`` and ``registered_names``.

Entry points are ``"module:Class"`` strings imported on first use, so ``agents`` never imports ``baselines`` at
import time (``baselines`` subclasses :class:`agents.base.Agent`; eager imports both ways would be a cycle).

Your own agent, without registering it anywhere: ``make("my_package.my_module:MyAgent")`` (and
``activeuf bench --agents my_package.my_module:MyAgent``) imports it in every process that needs it. A package can
also publish agents under the entry-point group :data:`ENTRY_POINT_GROUP` (the way Gymnasium and pytest find
plugins)::

    [project.entry-points."activeuf_env.agents"]
    my_agent = "my_package.my_module:MyAgent"

``register`` at run time only reaches the current process: the benchmark's worker processes are fresh interpreters
(``spawn``) and do not see it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

from agents.base import Agent

__all__ = ["ENTRY_POINT_GROUP", "is_known", "make", "register", "registered_names"]

ENTRY_POINT_GROUP = "activeuf_env.agents"
"""The package entry-point group searched for agents (name -> ``"module:Class"``)."""

AgentFactory = Callable[..., Agent]

_REGISTRY: dict[str, str | AgentFactory] = {
    # Uncertainty-aware agents (agents/).
    "dts": "agents.thompson:DoubleThompsonSampling",
    "drts": "agents.thompson:DoubleReverseThompsonSampling",
    "deltaucb": "agents.ucb:DeltaUCB",
    "deltaquantile": "agents.ucb:DeltaQuantile",
    "maxminlcb": "agents.ucb:MaxMinLCB",
    "rucb": "agents.ucb:RelativeUCB",
    "infomax": "agents.information:InfoMax",
    "infogain": "agents.information:InfoGain",
    "ids": "agents.information:InformationDirectedSampling",
    "learned": "agents.learned.agent:LearnedSelector",
    # Static heuristics (baselines/).
    "random": "baselines.random_pair:RandomPair",
    "ultrafeedback": "baselines.ultrafeedback:UltraFeedback",
    "maxmin": "baselines.maxmin:MaxMin",
    "delta_model": "baselines.delta_model:DeltaModel",
}


def register(name: str, entry_point: str | AgentFactory) -> None:
    """Register an agent under ``name``.

    Args:
        name: the registry name; must be new.
        entry_point: a ``"module:Class"`` string (imported lazily) or a callable returning an :class:`Agent`.

    Raises:
        ValueError: when ``name`` is taken or the entry point is malformed.

    Example:
        >>> from agents.thompson import DoubleThompsonSampling
        >>> register("dts", DoubleThompsonSampling)
        Traceback (most recent call last):
        ...
        ValueError: an agent named 'dts' is already registered
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"the agent name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"an agent named {name!r} is already registered")
    if isinstance(entry_point, str):
        if entry_point.count(":") != 1:
            raise ValueError(f"entry_point must look like 'module:Class', got {entry_point!r}")
    elif not callable(entry_point):
        raise ValueError(f"entry_point must be a 'module:Class' string or a callable, got {entry_point!r}")
    _REGISTRY[name] = entry_point


def registered_names() -> tuple[str, ...]:
    """The names ``make`` accepts, in registration order (the built-in ones, then entry-point plugins).

    Example:
        >>> registered_names()[:3]
        ('dts', 'drts', 'deltaucb')
    """
    _load_entry_points()
    return tuple(_REGISTRY)


def is_known(name: str) -> bool:
    """Whether ``make`` can build ``name``: a registered name or a ``"module:Class"`` path.

    Example:
        >>> is_known("drts"), is_known("baselines.maxmin:MaxMin"), is_known("nope")
        (True, True, False)
    """
    return isinstance(name, str) and (name in registered_names() or _is_path(name))


_ENTRY_POINTS_LOADED = False


def _load_entry_points() -> None:
    """Add the agents published under :data:`ENTRY_POINT_GROUP` (once per process; built-in names win)."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _REGISTRY.setdefault(entry_point.name, entry_point.value)


def _is_path(name: str) -> bool:
    module, _, attr = name.partition(":")
    return bool(module) and bool(attr) and ":" not in attr


def _load(name: str) -> AgentFactory:
    entry_point = _REGISTRY.get(name, name)
    if not isinstance(entry_point, str):
        return entry_point
    module_name, attr = entry_point.split(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load agent {name!r} from {entry_point!r}: {type(exc).__name__}: {exc}") from None


def make(name: str, **kwargs: Any) -> Agent:
    """Create a registered agent or baseline.

    Args:
        name: a name from :func:`registered_names`, or ``"module:Class"`` (any importable agent class or factory).
        **kwargs: the agent's hyperparameters (its dataclass fields).

    Returns:
        A new agent; call ``reset(seed)`` before an episode for reproducible choices.

    Raises:
        ValueError: for an unknown name (with the closest registered names) or a bad hyperparameter value.
        TypeError: for a keyword the agent does not take.

    Example:
        >>> make("drts", beta=2.0)
        DoubleReverseThompsonSampling(beta=2.0, max_tries=30)
        >>> make("dtss")
        Traceback (most recent call last):
        ...
        ValueError: no agent named 'dtss'; did you mean 'dts'? Registered: dts, drts, deltaucb, deltaquantile, \
maxminlcb, rucb, infomax, infogain, ids, learned, random, ultrafeedback, maxmin, delta_model (your own agent: \
'my_module:MyAgent', or the 'activeuf_env.agents' entry-point group; register() in __main__ is not seen by the \
benchmark's worker processes)
    """
    if not is_known(name):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise ValueError(
            f"no agent named {name!r}{hint} Registered: {', '.join(_REGISTRY)} (your own agent: "
            f"'my_module:MyAgent', or the {ENTRY_POINT_GROUP!r} entry-point group; register() in __main__ is not seen "
            "by the benchmark's worker processes)"
        )
    agent = _load(name)(**kwargs)
    if not isinstance(agent, Agent):
        raise TypeError(f"the entry point of {name!r} returned {type(agent).__name__}, not an Agent")
    return agent
