"""Weights & Biases logging of ActiveUF episodes that never stops an episode (SPEC §12.2).

:class:`WandbRecorder` wraps any ``ActiveUF`` environment, so it works from a user's own loop as well as from
:func:`activeuf_env.runner.benchmark.run_benchmark`: every ``reset`` starts one W&B run (named ``{agent}-seed{seed}``,
grouped by env id, config = every env and agent setting), every step logs the numeric ``info`` entries with
``labels`` as the step metric (``wandb.define_metric``), so W&B draws curves against labels spent, and ``regret``
is summarised by its minimum. The run finishes when the episode ends (or on ``close``).

**Offline unless configured.** :func:`resolve_wandb_mode` keeps an explicit ``mode=`` or ``WANDB_MODE``; otherwise,
with no ``WANDB_API_KEY`` and no ``~/.netrc`` entry for the W&B host, it picks ``"offline"``: runs are written under
``dir`` and can be uploaded later with ``wandb sync``, or read back with :func:`read_offline_run`.

**Failures never stop a run.** Any W&B failure (``wandb`` not importable, ``init``, ``define_metric``, ``log`` or
``finish`` raising, an unwritable ``dir``) is reported once as a :class:`WandbWarning`, stored in
:attr:`WandbRecorder.error`, and the recorder turns itself off; the environment steps on untouched.

Change logs:
    * v0.1.0 - Initially added.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import netrc
import os
import struct
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat
from urllib.parse import urlparse

import gymnasium as gym
import numpy as np

__all__ = [
    "DEFAULT_PROJECT",
    "OfflineRun",
    "WandbRecorder",
    "WandbWarning",
    "describe_agent",
    "describe_env",
    "read_offline_run",
    "resolve_wandb_mode",
    "to_jsonable",
]

DEFAULT_PROJECT = "activeuf-env"
"""The W&B project runs go to unless told otherwise."""

# Settings that make an offline ``wandb.init`` take milliseconds instead of seconds: no system-metrics sampler, no
# machine/git/pip metadata, no console capture, no terminal output. Names checked against wandb 0.31's ``Settings``;
# names an older wandb lacks are dropped (see ``_make_settings``).
_FAST_SETTINGS: dict[str, Any] = {
    "silent": True,
    "console": "off",
    "x_disable_stats": True,
    "x_disable_meta": True,
    "x_disable_machine_info": True,
    "disable_git": True,
    "save_code": False,
    "x_save_requirements": False,
    "disable_job_creation": True,
}

_LEVELDB_HEADER = b":W&B"
_LEVELDB_BLOCK = 32768
_LEVELDB_RECORD_HEADER = struct.Struct("<IHB")  # masked crc32c, length, type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


class WandbWarning(RuntimeWarning):
    """W&B logging failed and was turned off; the episode or benchmark went on without it."""


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


def _has_netrc_entry() -> bool:
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(mode: str | None = None) -> str | None:
    """The ``mode`` to pass to ``wandb.init``: offline unless W&B is configured.

    Rules, in order: an explicit ``mode`` wins; a set ``WANDB_MODE`` is respected (its value is returned, so that it
    holds even when wandb's settings were set up earlier in the process, before the variable was set); a
    ``WANDB_API_KEY`` or a ``~/.netrc`` (or ``$NETRC``) entry for the W&B host means online (``None``: W&B's own
    default); otherwise ``"offline"``.

    Args:
        mode: ``"online"``, ``"offline"``, ``"disabled"`` or ``None`` (decide from the environment).

    Returns:
        The mode, or ``None`` to leave the choice to W&B.

    Example:
        >>> resolve_wandb_mode("disabled")
        'disabled'
    """
    if mode is not None:
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY") or _has_netrc_entry():
        return None
    return "offline"


def _make_settings(wandb: Any) -> Any:
    known = getattr(getattr(wandb, "Settings", None), "model_fields", None)
    options = {key: value for key, value in _FAST_SETTINGS.items() if known is None or key in known}
    return wandb.Settings(**options)


def _supports_create_new(wandb: Any) -> bool:
    parts = [int(part) for part in str(getattr(wandb, "__version__", "0")).split(".")[:3] if part.isdigit()]
    return tuple(parts) >= (0, 19, 10)


class WandbRecorder(gym.Wrapper[Any, Any, Any, Any]):
    """Log every episode of an environment to Weights & Biases, one run per episode; never raises on W&B errors.

    Each ``reset`` finishes the previous run (if any) and starts a new one; each step logs the numeric ``info``
    entries (labels, judge calls, scores, regret, pair gap, label accuracy, ...), the step's ``reward`` and the
    running ``cumulative_regret`` (Σ regret × labels spent in the round, SPEC §10.3), with ``labels`` as the step
    metric. The run finishes when the episode terminates or is truncated, or on :meth:`close`.

    Args:
        env: the environment to record (an ``ActiveUF`` env, possibly wrapped).
        agent: the agent (its name and dataclass fields go into the config) or its name.
        project: W&B project.
        group: W&B group; defaults to the env id.
        name: run name; defaults to ``f"{agent}-seed{seed}"`` from the agent's name and the reset's seed.
        dir: directory W&B writes its ``wandb/`` folder into (created if needed); defaults to W&B's own choice.
        mode: ``"online"``, ``"offline"``, ``"disabled"`` or ``None`` (see :func:`resolve_wandb_mode`).
        config: extra config entries (added to the env and agent settings).
        tags: W&B tags.
        warn: emit a :class:`WandbWarning` on the first failure (``False``: only record it in :attr:`error`).

    Attributes:
        run: the active W&B run, or ``None``.
        run_dirs: the local directory of every run this recorder started.
        error: the first W&B failure as a string (``None`` while all is well); once set, nothing more is logged.

    Example:
        >>> import gymnasium as gym
        >>> import activeuf_env
        >>> env = WandbRecorder(gym.make("ActiveUF/Synthetic-v0", eval_every=None), agent="random", mode="disabled")
        >>> env.error is None
        True
        >>> env.close()
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        agent: Any = None,
        *,
        project: str = DEFAULT_PROJECT,
        group: str | None = None,
        name: str | None = None,
        dir: str | os.PathLike[str] | None = None,  # mirrors wandb.init(dir=)
        mode: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        warn: bool = True,
    ) -> None:
        super().__init__(env)
        if mode not in (None, "online", "offline", "disabled"):
            raise ValueError(f"mode must be 'online', 'offline', 'disabled' or None, got {mode!r}")
        if config is not None and not isinstance(config, Mapping):
            raise ValueError(f"config must be a mapping or None, got {type(config).__name__}")
        self.agent_settings = describe_agent(agent) if agent is not None else {"name": "agent"}
        self.project, self.group, self.name, self.mode = project, group, name, mode
        self.dir = None if dir is None else Path(dir)
        self.extra_config = dict(config or {})
        self.tags = list(tags) if tags is not None else None
        self.warn = bool(warn)
        self.run: Any = None
        self.run_dirs: list[Path] = []
        self.error: str | None = None
        self._cumulative_regret = 0.0
        self._last_labels = 0

    # ------------------------------------------------------------------ failure handling

    def _fail(self, stage: str, exc: BaseException) -> None:
        """Turn W&B off after the first failure, warn once, and let the episode continue."""
        run, self.run = self.run, None
        if self.error is not None:
            return
        self.error = f"{stage}: {type(exc).__name__}: {exc}"
        if run is not None:
            with contextlib.suppress(Exception):  # the run is abandoned either way
                run.finish(exit_code=1)
        if self.warn:
            warnings.warn(
                f"W&B logging turned off after a failure in {self.error}; the episode continues without W&B",
                WandbWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ run life cycle

    def _start_run(self, seed: int | None, info: Mapping[str, Any]) -> None:
        try:
            import wandb
        except Exception as exc:  # ImportError or a broken install: W&B is optional at run time
            self._fail("import wandb", exc)
            return
        # wandb suggests its LLM-tracing add-on (Weave) whenever a module named ``agents`` is imported: ours is not
        # the OpenAI Agents SDK, so turn the suggestion off unless the user has a say in it.
        os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
        agent_name = self.agent_settings["name"]
        env_settings = describe_env(self.env)
        config: dict[str, Any] = {"env": env_settings, "agent": self.agent_settings, "seed": seed}
        reference = getattr(self.env.unwrapped, "reference_score", None)
        try:
            if callable(reference) and "score" in info:
                config["reference_score"] = float(reference())
        except Exception:  # a missing reference only loses one config entry
            pass
        config.update(to_jsonable(self.extra_config))
        kwargs: dict[str, Any] = {
            "project": self.project,
            "group": self.group or env_settings["env_id"],
            "name": self.name or (f"{agent_name}-seed{seed}" if seed is not None else agent_name),
            "config": config,
            "mode": resolve_wandb_mode(self.mode),
            "tags": self.tags,
            "settings": None,
        }
        try:
            if self.dir is not None:
                self.dir.mkdir(parents=True, exist_ok=True)
                if not os.access(self.dir, os.W_OK):
                    raise PermissionError(f"the W&B directory {str(self.dir)!r} is not writable")
                kwargs["dir"] = str(self.dir)
            kwargs["settings"] = _make_settings(wandb)
            if _supports_create_new(wandb):
                kwargs["reinit"] = "create_new"  # never finish a run of the user's own
            self.run = wandb.init(**kwargs)
            if self.run is None:
                raise RuntimeError("wandb.init returned None")
            self.run.define_metric("labels")
            self.run.define_metric("*", step_metric="labels")
            self.run.define_metric("regret", step_metric="labels", summary="min")
            run_dir = getattr(self.run, "dir", None)
            if run_dir:
                self.run_dirs.append(Path(run_dir).parent)
        except Exception as exc:  # any W&B failure turns W&B off, never the episode
            self._fail("wandb.init", exc)

    def _finish_run(self) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        try:
            run.finish()
        except Exception as exc:
            self.run = run
            self._fail("wandb finish", exc)

    def _log(self, info: Mapping[str, Any], reward: float | None) -> None:
        if self.run is None:
            return
        row: dict[str, float | int] = {
            key: value
            for key, value in info.items()
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        }
        if "labels" in row and "regret" in row:
            spent = int(row["labels"]) - self._last_labels
            self._cumulative_regret += float(row["regret"]) * spent
            self._last_labels = int(row["labels"])
            row["cumulative_regret"] = self._cumulative_regret
        if reward is not None:
            row["reward"] = float(reward)
        try:
            self.run.log(row)
        except Exception as exc:
            self._fail("wandb log", exc)

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env, finish the previous run and start a new one; log the reset ``info`` (0 labels)."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._finish_run()
        self._cumulative_regret, self._last_labels = 0.0, 0
        if self.error is None and resolve_wandb_mode(self.mode) != "disabled":
            self._start_run(seed, info)
            self._log(info, reward=None)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env and log its ``info``; finish the run when the episode ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._log(info, reward=float(reward))
        if terminated or truncated:
            self._finish_run()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Finish the active run (if any) and close the env; safe to call more than once."""
        self._finish_run()
        super().close()


# ---------------------------------------------------------------------- reading offline runs back


@dataclasses.dataclass(frozen=True)
class OfflineRun:
    """One W&B run read back from its local ``.wandb`` file.

    Attributes:
        path: the ``.wandb`` file.
        name: the run's display name (``{agent}-seed{seed}`` for :class:`WandbRecorder` runs).
        group: the run's group (the env id).
        config: the run's config.
        history: one dict per ``log`` call, in order (W&B's own ``_step``, ``_runtime`` and ``_timestamp`` included).
        summary: the final summary values that were written (e.g. ``regret`` with ``summary="min"``).
    """

    path: Path
    name: str
    group: str
    config: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def _iter_leveldb_records(data: bytes) -> list[bytes]:
    """Split a W&B transaction log (LevelDB log format: 32 KiB blocks, 7-byte record headers) into records."""
    records: list[bytes] = []
    pending = b""
    position = 7  # ":W&B", a 2-byte magic and a version byte
    while position + _LEVELDB_RECORD_HEADER.size <= len(data):
        left = _LEVELDB_BLOCK - position % _LEVELDB_BLOCK
        if left < _LEVELDB_RECORD_HEADER.size:  # block trailer padding
            position += left
            continue
        _, length, kind = _LEVELDB_RECORD_HEADER.unpack_from(data, position)
        position += _LEVELDB_RECORD_HEADER.size
        chunk = data[position : position + length]
        position += length
        if len(chunk) < length:  # a run still being written: stop at the last complete record
            break
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            records.append(pending + chunk)
            pending = b""
    return records


def _item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def _parse_transaction_log(file: Path) -> tuple[OfflineRun, bool]:
    from wandb.proto import wandb_internal_pb2

    data = file.read_bytes()
    if data[:4] != _LEVELDB_HEADER:
        raise ValueError(
            f"{str(file)!r} is not a W&B transaction log: it starts with {data[:4]!r}, not {_LEVELDB_HEADER!r}"
        )
    name = group = ""
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    complete = False
    for raw in _iter_leveldb_records(data):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            name, group = record.run.display_name or name, record.run.run_group or group
            config.update({_item_key(item): json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            config.update({_item_key(item): json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            history.append({_item_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            summary.update({_item_key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "exit":
            complete = True
    config.pop("_wandb", None)
    run = OfflineRun(path=file, name=name, group=group, config=config, history=history, summary=summary)
    return run, complete


def read_offline_run(path: str | os.PathLike[str], wait: float = 10.0) -> OfflineRun:
    """Read an offline (or not yet synced) W&B run from its local ``.wandb`` transaction log, without ``wandb sync``.

    The ``.wandb`` file is a LevelDB-format log of ``wandb_internal_pb2.Record`` protobuf messages (W&B's internal
    format, read here with the ``wandb.proto`` messages that ship with the installed wandb; checked with wandb 0.31).
    Checksums are not verified. W&B's background process may still be writing the file for a moment after
    ``run.finish()`` returns, so this waits (up to ``wait`` seconds) for the run's exit record.

    Args:
        path: a run directory (``.../wandb/offline-run-*``) or its ``run-*.wandb`` file.
        wait: seconds to wait for a run that is still being written; after that, what is there is returned.

    Returns:
        The run's name, group, config, history rows and summary.

    Raises:
        FileNotFoundError: when the directory holds no ``.wandb`` file.
        ValueError: when the file is not a W&B transaction log.
    """
    file = Path(path)
    if file.is_dir():
        candidates = sorted(file.glob("*.wandb"))
        if not candidates:
            raise FileNotFoundError(f"no .wandb file in {str(file)!r}")
        file = candidates[0]
    deadline = time.monotonic() + max(float(wait), 0.0)
    while True:
        run, complete = _parse_transaction_log(file)
        if complete or time.monotonic() >= deadline:
            return run
        time.sleep(0.05)
