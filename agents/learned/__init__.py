"""A meta-learned selector: a permutation-equivariant policy trained across task instances.

``agents.make("learned")`` loads the shipped checkpoint (:data:`~agents.learned.checkpoint.SHIPPED_CHECKPOINT`);
``agents.make("learned", path=...)`` any other. The network is :mod:`agents.learned.policy`, checkpoints are
:mod:`agents.learned.checkpoint`, and ``python -m agents.learned.train`` meta-trains one.
"""

from agents.learned.agent import LearnedSelector, choices_to_pairs
from agents.learned.checkpoint import SHIPPED_CHECKPOINT, load_checkpoint, save_checkpoint
from agents.learned.policy import (
    FEATURES,
    PolicyConfig,
    SelectorPolicy,
    observation_features,
    response_features,
    sample_pairs,
)

__all__ = [
    "FEATURES",
    "SHIPPED_CHECKPOINT",
    "LearnedSelector",
    "PolicyConfig",
    "SelectorPolicy",
    "choices_to_pairs",
    "load_checkpoint",
    "observation_features",
    "response_features",
    "sample_pairs",
    "save_checkpoint",
]
