"""Weights & Biases logging of ActiveUF episodes that never stops an episode.

:class:`WandbRecorder` wraps any ``ActiveUF`` environment, so it works from a user's own loop as well as from
:func:`activeuf_env.runner.run_benchmark`: every ``reset`` starts one W&B run (named ``{agent}-seed{seed}``,
grouped by env id, config = every env and agent setting), every step logs the numeric ``info`` entries with
``labels`` as the step metric (``wandb.define_metric``), so W&B draws curves against labels spent, and ``regret``
is summarised by its minimum. The run finishes when the episode ends (or on ``close``).

**Offline unless configured.** :func:`resolve_wandb_mode` keeps an explicit ``mode=`` or ``WANDB_MODE``; otherwise,
with no ``WANDB_API_KEY`` and no ``~/.netrc`` entry for the W&B host, it picks ``"offline"``: runs are written under
``dir`` and can be uploaded later with ``wandb sync``, or read back with
:func:`~activeuf_env.tracking.offline.read_offline_run`.

**Failures never stop a run.** Any W&B failure (``wandb`` not importable, ``init``, ``define_metric``, ``log`` or
``finish`` raising, an unwritable ``dir``) is reported once as a :class:`WandbWarning`, stored in
:attr:`WandbRecorder.error`, and the recorder turns itself off; the environment steps on untouched.
"""

from __future__ import annotations

import contextlib
import netrc
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat
from urllib.parse import urlparse

import gymnasium as gym
import numpy as np

from activeuf_env._io import atomic_write_text
from activeuf_env._validation import check_choice, check_type
from activeuf_env.tracking.serialize import describe_agent, describe_env, to_jsonable

__all__ = ["DEFAULT_PROJECT", "WANDB_MODES", "WandbRecorder", "WandbWarning", "resolve_wandb_mode"]

DEFAULT_PROJECT = "activeuf-env"
"""The W&B project runs go to unless told otherwise."""

# Settings that make an offline ``wandb.init`` take milliseconds instead of seconds: no system-metrics sampler, no
# machine/git/pip metadata, no console capture, no terminal output. Names checked against wandb 0.31's ``Settings``;
# names an older wandb lacks are dropped (see ``_make_settings``).
INIT_TIMEOUT_S = 15.0
"""``wandb.init``'s timeout (W&B's own default is 90 s): an unreachable server costs one short wait, not minutes."""

_FAST_SETTINGS: dict[str, Any] = {
    "init_timeout": INIT_TIMEOUT_S,
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

WANDB_MODES: tuple[str | None, ...] = ("online", "offline", "disabled", None)
"""The values of ``mode``: W&B's three modes, or ``None`` to decide from the environment (see
:func:`resolve_wandb_mode`)."""


class WandbWarning(RuntimeWarning):
    """W&B logging failed and was turned off; the episode or benchmark went on without it."""


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
    mode = check_choice("mode", mode, WANDB_MODES)
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
    running ``cumulative_regret`` (Σ regret × labels spent in the round: the results table's column, summed as the
    episode goes), with ``labels`` as the step metric. The run finishes when the episode terminates or is
    truncated, or on :meth:`close`.

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
        failure_flag: a file shared by the recorders of one benchmark (possibly in other processes): the first
            failing ``wandb.init`` writes its error there, and every later episode skips W&B instead of waiting
            out the same failure again.

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
        failure_flag: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(env)
        mode = check_choice("mode", mode, WANDB_MODES)
        if config is not None:
            check_type("config", config, Mapping, "a mapping or None")
        self.agent_settings = describe_agent(agent) if agent is not None else {"name": "agent"}
        self.project, self.group, self.name, self.mode = project, group, name, mode
        self.dir = None if dir is None else Path(dir)
        self.extra_config = dict(config or {})
        self.tags = list(tags) if tags is not None else None
        self.warn = bool(warn)
        self.failure_flag = None if failure_flag is None else Path(failure_flag)
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
        if self.failure_flag is not None and self.failure_flag.exists():
            earlier = self.failure_flag.read_text(errors="replace").strip()
            self.error = f"skipped: W&B failed in an earlier episode of this benchmark ({earlier})"
            return
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
            # Counted as soon as it exists: a run whose set-up fails below still has its folder (a full disk).
            run_dir = getattr(self.run, "dir", None)
            if run_dir:
                self.run_dirs.append(Path(run_dir).parent)
            self.run.define_metric("labels")
            self.run.define_metric("*", step_metric="labels")
            self.run.define_metric("regret", step_metric="labels", summary="min")
        except Exception as exc:  # any W&B failure turns W&B off, never the episode
            self._fail("wandb.init", exc)
            if self.failure_flag is not None:
                with contextlib.suppress(OSError):  # an unwritable folder only loses the shortcut
                    atomic_write_text(self.failure_flag, f"{self.error}\n")

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
