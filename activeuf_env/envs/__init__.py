"""The ActiveUF environment, its typed episode state, action validation, ansi rendering and the real-data entry
points (``ActiveUF/Replay-v0``, ``ActiveUF/AlpacaEval-v0``)."""

from activeuf_env.envs.active_uf import OBS_BOUND, REWARD_METRICS, ActiveUFEnv
from activeuf_env.envs.episode import STATE_VERSION, Counts, Episode, RoundRecord
from activeuf_env.envs.instances import InstanceSpec
from activeuf_env.envs.real_data import make_alpaca_eval_env, make_replay_env

__all__ = [
    "OBS_BOUND",
    "REWARD_METRICS",
    "STATE_VERSION",
    "ActiveUFEnv",
    "Counts",
    "Episode",
    "InstanceSpec",
    "RoundRecord",
    "make_alpaca_eval_env",
    "make_replay_env",
]
