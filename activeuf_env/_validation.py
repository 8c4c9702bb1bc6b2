"""One vocabulary of argument checks for configs, the env, the runner and the agents.

Every check names the argument, says what was expected and shows the value received, and returns the value in its
canonical Python type, so a caller writes ``self.batch_size = check_int("batch_size", batch_size, low=1)``. ``bool``
is never accepted where a number is expected (``True`` is an ``int`` to Python, never a batch size to a user).

>>> check_int("batch_size", True, low=1)
Traceback (most recent call last):
...
ValueError: batch_size must be an integer >= 1, got True
>>> check_number("lr", 0.0, low=0.0, low_open=True)
Traceback (most recent call last):
...
ValueError: lr must be a finite number > 0.0, got 0.0
>>> check_choice("reward", "dpo", ("score", "dpo", "rm", "none"))
'dpo'
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_keywords",
    "check_number",
    "check_type",
    "describe_choices",
    "reject_unknown_keywords",
]

T = TypeVar("T")
P = ParamSpec("P")

_REAL_TYPES = (int, float, np.integer, np.floating)
_INT_TYPES = (int, np.integer)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def _outside(value: float, low: float | None, high: float | None, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value < low or (low_open and value == low)):
        return True
    return high is not None and (value > high or (high_open and value == high))


def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None, optional: bool = False
) -> int | None:
    """An integer argument (``bool`` and floats rejected) within ``[low, high]``, as an ``int``.

    Args:
        name: the argument's name, used in the message.
        value: the value received.
        low: the smallest allowed value, if any.
        high: the largest allowed value, if any.
        optional: ``None`` is allowed (and returned).

    Raises:
        ValueError: naming ``name``, the expected range and ``value``.

    Example:
        >>> check_int("seed", 3, low=0), check_int("budget", None, low=1, optional=True)
        (3, None)
        >>> check_int("budget", 0, low=1, optional=True)
        Traceback (most recent call last):
        ...
        ValueError: budget must be an integer >= 1 or None, got 0
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, _INT_TYPES) or _outside(value, low, high, False, False):
        raise ValueError(
            f"{name} must be an integer{_bounds(low, high, False, False)}{' or None' if optional else ''}, "
            f"got {value!r}"
        )
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> float | None:
    """A finite real argument (``bool`` rejected) within the given bounds, as a ``float``.

    Args:
        name: the argument's name, used in the message.
        value: the value received.
        low, high: the bounds, if any.
        low_open, high_open: whether the bound itself is excluded.
        optional: ``None`` is allowed (and returned).

    Raises:
        ValueError: naming ``name``, the expected range and ``value``.

    Example:
        >>> check_number("p", 0.5, low=0.0, high=1.0)
        0.5
        >>> check_number("p", float("nan"), low=0.0, high=1.0)
        Traceback (most recent call last):
        ...
        ValueError: p must be a finite number in [0.0, 1.0], got nan
    """
    if optional and value is None:
        return None
    bounds = _bounds(low, high, low_open, high_open)
    message = f"{name} must be a finite number{bounds}{' or None' if optional else ''}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, _REAL_TYPES):
        raise ValueError(message)
    out = float(value)
    if not math.isfinite(out) or _outside(out, low, high, low_open, high_open):
        raise ValueError(message)
    return out


def check_bool(name: str, value: Any) -> bool:
    """A ``bool`` argument (numpy's included; 0 and 1 are not booleans), as a ``bool``.

    Example:
        >>> check_bool("observe_features", 1)
        Traceback (most recent call last):
        ...
        ValueError: observe_features must be a bool, got 1
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def describe_choices(choices: Iterable[Any]) -> str:
    """``'a' or 'b'``, ``'a', 'b' or None``: the allowed values as a message names them.

    Example:
        >>> describe_choices(["online", "offline", None])
        "'online', 'offline' or None"
    """
    names = [repr(choice) for choice in choices]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_choice(name: str, value: Any, choices: Iterable[T]) -> T:
    """One of a fixed set of values (compared with ``==``; unhashable values are simply not in the set).

    Example:
        >>> check_choice("slots", "random", ("order", "model"))
        Traceback (most recent call last):
        ...
        ValueError: slots must be 'order' or 'model', got 'random'
    """
    allowed = list(choices)
    for choice in allowed:
        if type(value) is type(choice) and value == choice:
            return choice
    raise ValueError(f"{name} must be {describe_choices(allowed)}, got {value!r}")


def check_type(name: str, value: Any, types: type | tuple[type, ...], what: str | None = None) -> Any:
    """An argument of the given type(s); ``what`` describes them in the message (default: the type names).

    Raises:
        TypeError: naming ``name``, the expected type and the type received.

    Example:
        >>> check_type("config", {}, tuple, "a DownstreamConfig")
        Traceback (most recent call last):
        ...
        TypeError: config must be a DownstreamConfig, got dict
    """
    if not isinstance(value, types):
        names = what or " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise TypeError(f"{name} must be {names}, got {type(value).__name__}")
    return value


def check_keywords(owner: str, keywords: Iterable[str], known: Iterable[str]) -> None:
    """Every keyword is one of ``known``; the first that is not is an error naming the closest known one.

    Args:
        owner: what received the keywords (an env id, a class), used in the message.
        keywords: the keywords received.
        known: the keywords ``owner`` accepts.

    Raises:
        ValueError: naming ``owner``, the unknown keyword, the closest known one (``difflib``) and every known one.

    Example:
        >>> check_keywords("ActiveUFEnv", ["batchsize"], ["budget", "batch_size"])
        Traceback (most recent call last):
        ...
        ValueError: ActiveUFEnv got an unknown keyword 'batchsize'; did you mean 'batch_size'? Known: batch_size, budget
    """
    allowed = sorted(set(known))
    for key in keywords:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise ValueError(f"{owner} got an unknown keyword {key!r}{hint} Known: {', '.join(allowed)}")


def reject_unknown_keywords(function: Callable[P, T]) -> Callable[P, T]:
    """Make an unknown keyword to ``function`` (e.g. an ``__init__``) a :func:`check_keywords` error.

    Python's own ``TypeError`` names neither a close match nor the known keywords. The wrapper keeps the function's
    signature for ``inspect.signature`` (``functools.wraps``), so code that reads the keywords sees the real ones.

    Example:
        >>> @reject_unknown_keywords
        ... def make(*, batch_size: int = 64) -> int:
        ...     return batch_size
        >>> make(batchsize=16)
        Traceback (most recent call last):
        ...
        ValueError: make got an unknown keyword 'batchsize'; did you mean 'batch_size'? Known: batch_size
    """
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = inspect.signature(function).parameters.values()
    known = [p.name for p in parameters if p.kind in kinds and p.name != "self"]
    owner = function.__qualname__.removesuffix(".__init__")

    @functools.wraps(function)
    def checked(*args: P.args, **kwargs: P.kwargs) -> T:
        check_keywords(owner, kwargs, known)
        return function(*args, **kwargs)

    return checked
