"""Weights & Biases: the recorder wrapper, JSON serialisation of settings, and the reader of offline runs.

- :mod:`~activeuf_env.tracking.recorder`: :class:`WandbRecorder`, one W&B run per episode, never raising;
- :mod:`~activeuf_env.tracking.serialize`: settings of envs and agents as plain JSON values;
- :mod:`~activeuf_env.tracking.offline`: :func:`read_offline_run`, a run read back from its local ``.wandb`` file.

Importing this package does not import ``wandb`` (the recorder imports it when a run starts).
"""

from activeuf_env.tracking.offline import OfflineRun, read_offline_run
from activeuf_env.tracking.recorder import (
    DEFAULT_PROJECT,
    WANDB_MODES,
    WandbRecorder,
    WandbWarning,
    resolve_wandb_mode,
)
from activeuf_env.tracking.serialize import describe_agent, describe_env, to_jsonable

__all__ = [
    "DEFAULT_PROJECT",
    "WANDB_MODES",
    "OfflineRun",
    "WandbRecorder",
    "WandbWarning",
    "describe_agent",
    "describe_env",
    "read_offline_run",
    "resolve_wandb_mode",
    "to_jsonable",
]
