"""The registry of agents and baselines: ``make(name, **kwargs)``, ``register`` and ``registered_names``.

Entry points are ``"module:Class"`` strings imported on first use, so ``agents`` never imports ``baselines`` at
import time (``baselines`` subclasses :class:`agents.base.Agent`; eager imports both ways would be a cycle).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

from agents.base import Agent

__all__ = ["make", "register", "registered_names"]

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
    """The names ``make`` accepts, in registration order.

    Example:
        >>> registered_names()[:3]
        ('dts', 'drts', 'deltaucb')
    """
    return tuple(_REGISTRY)


def _load(name: str) -> AgentFactory:
    entry_point = _REGISTRY[name]
    if not isinstance(entry_point, str):
        return entry_point
    module_name, attr = entry_point.split(":")
    return getattr(importlib.import_module(module_name), attr)


def make(name: str, **kwargs: Any) -> Agent:
    """Create a registered agent or baseline.

    Args:
        name: a name from :func:`registered_names`.
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
maxminlcb, rucb, infomax, infogain, ids, random, ultrafeedback, maxmin, delta_model
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise ValueError(f"no agent named {name!r}{hint} Registered: {', '.join(_REGISTRY)}")
    agent = _load(name)(**kwargs)
    if not isinstance(agent, Agent):
        raise TypeError(f"the entry point of {name!r} returned {type(agent).__name__}, not an Agent")
    return agent
