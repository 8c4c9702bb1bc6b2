"""Settings as plain JSON values: for W&B configs, ``config.json`` and summaries.

:func:`to_jsonable` turns dataclasses, numpy values, tuples and paths into dicts, lists, strings and numbers;
:func:`describe_env` and :func:`describe_agent` list every setting of an environment or an agent that way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["describe_agent", "describe_env", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Turn settings (dataclasses, numpy scalars and arrays, tuples, paths) into plain JSON-compatible values.

    Dataclasses become dicts with their class name under ``"type"``; anything else unknown becomes its ``repr``.

    Args:
        value: any value.

    Returns:
        A value made of dicts, lists, strings, numbers, booleans and ``None`` (non-finite floats become strings).

    Example:
        >>> from activeuf_env import SyntheticPoolConfig
        >>> to_jsonable({"pool": SyntheticPoolConfig(n_prompts=200), "sizes": (1, np.int64(2))})["sizes"]
        [1, 2]
        >>> to_jsonable(SyntheticPoolConfig())["type"]
        'SyntheticPoolConfig'
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist()) if value.size <= 64 else f"ndarray{value.shape}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: to_jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
        return {"type": type(value).__name__, **fields}
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def describe_env(env: gym.Env[Any, Any]) -> dict[str, Any]:
    """Every setting of an environment, as plain JSON values: its id plus all constructor settings.

    For an :class:`~activeuf_env.ActiveUFEnv` (wrapped or not) these are the values the env actually uses, defaults
    included; for other environments, the kwargs recorded in ``env.spec``.

    Args:
        env: an environment, possibly wrapped.

    Returns:
        ``{"env_id": ..., setting: value, ...}``.

    Example:
        >>> import gymnasium as gym
        >>> import activeuf_env
        >>> settings = describe_env(gym.make("ActiveUF/Synthetic-v0"))
        >>> settings["env_id"], settings["batch_size"], settings["instances"][0]["n_prompts"]
        ('ActiveUF/Synthetic-v0', 64, 1280)
    """
    spec = env.spec if env.spec is not None else env.unwrapped.spec
    settings: dict[str, Any] = {"env_id": spec.id if spec is not None else type(env.unwrapped).__name__}
    unwrapped = env.unwrapped
    if callable(getattr(unwrapped, "settings", None)):
        settings.update(to_jsonable(unwrapped.settings()))
    elif spec is not None:
        settings.update(to_jsonable(dict(spec.kwargs)))
    return settings


def describe_agent(agent: Any) -> dict[str, Any]:
    """An agent's name and hyperparameters (its dataclass fields), as plain JSON values.

    Args:
        agent: an :class:`agents.Agent` (any dataclass instance with a ``name``) or just a name.

    Returns:
        ``{"name": ..., field: value, ...}``.

    Example:
        >>> import agents
        >>> describe_agent(agents.make("deltaucb"))["name"]
        'deltaucb'
        >>> describe_agent("random")
        {'name': 'random'}
    """
    if isinstance(agent, str):
        return {"name": agent}
    settings: dict[str, Any] = {"name": str(getattr(agent, "name", type(agent).__name__))}
    if dataclasses.is_dataclass(agent) and not isinstance(agent, type):
        settings.update({f.name: to_jsonable(getattr(agent, f.name)) for f in dataclasses.fields(agent)})
    return settings
