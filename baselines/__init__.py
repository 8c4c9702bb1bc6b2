"""Static heuristics of ActiveUltraFeedback: ``random``, ``ultrafeedback``, ``maxmin`` and ``delta_model``.

They share the :class:`agents.Agent` interface and are created through the same registry,
``agents.make(name, **kwargs)``. ``ultrafeedback`` and ``maxmin`` are privileged (they read ``judge_scores``);
``delta_model`` is judge-free (``labeler="first"``).
"""

from baselines.delta_model import DeltaModel
from baselines.maxmin import MaxMin
from baselines.random_pair import RandomPair
from baselines.ultrafeedback import UltraFeedback

__all__ = ["DeltaModel", "MaxMin", "RandomPair", "UltraFeedback"]
