"""What one episode needs: the response pool, the synthetic pool, judges, the ensemble reward model and the
downstream evaluator. Nothing here imports the env, the data readers or the runner."""

from activeuf_env.core.downstream import DownstreamConfig, DownstreamEvaluator, DownstreamScores
from activeuf_env.core.judges import (
    BradleyTerryJudge,
    FlipNoise,
    Judge,
    PositionBias,
    ScoreJudge,
    TieAbstain,
    make_judge,
)
from activeuf_env.core.pool import PoolTexts, ResponsePool, load_pool
from activeuf_env.core.reward_model import EnsembleRewardModel, ReplayBuffer, RewardModelConfig, anchor_weight_at
from activeuf_env.core.synthetic import SyntheticPoolConfig, make_synthetic_pool

__all__ = [
    "BradleyTerryJudge",
    "DownstreamConfig",
    "DownstreamEvaluator",
    "DownstreamScores",
    "EnsembleRewardModel",
    "FlipNoise",
    "Judge",
    "PoolTexts",
    "PositionBias",
    "ReplayBuffer",
    "ResponsePool",
    "RewardModelConfig",
    "ScoreJudge",
    "SyntheticPoolConfig",
    "TieAbstain",
    "anchor_weight_at",
    "load_pool",
    "make_judge",
    "make_synthetic_pool",
]
