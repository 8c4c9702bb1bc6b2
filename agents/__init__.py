"""Selection agents for the ``ActiveUF`` environments, and the registry of agents and baselines.

``agents.make(name, **kwargs)`` creates any of :func:`registered_names`: the uncertainty-aware agents of this
package (``dts``, ``drts``, ``deltaucb``, ``deltaquantile``, ``maxminlcb``, ``rucb``, ``infomax``, ``infogain``,
``ids``) and the static heuristics of :mod:`baselines` (``random``, ``ultrafeedback``, ``maxmin``,
``delta_model``). Every agent is a validated dataclass with ``name``, ``reset(seed, info=None)``, ``select(obs)`` and
``env_kwargs()`` (see :class:`agents.base.Agent`).

Example:
    >>> import agents
    >>> agent = agents.make("deltaucb")
    >>> agent.name, agent.env_kwargs()
    ('deltaucb', {})
"""

from agents.base import Agent, Batch, Observation
from agents.information import IDS, InfoGain, InfoMax, InformationDirectedSampling
from agents.registry import ENTRY_POINT_GROUP, is_known, make, register, registered_names
from agents.thompson import DoubleReverseThompsonSampling, DoubleThompsonSampling
from agents.ucb import DeltaQuantile, DeltaUCB, MaxMinLCB, RelativeUCB

__all__ = [
    "ENTRY_POINT_GROUP",
    "IDS",
    "Agent",
    "Batch",
    "DeltaQuantile",
    "DeltaUCB",
    "DoubleReverseThompsonSampling",
    "DoubleThompsonSampling",
    "InfoGain",
    "InfoMax",
    "InformationDirectedSampling",
    "MaxMinLCB",
    "Observation",
    "RelativeUCB",
    "is_known",
    "make",
    "register",
    "registered_names",
]
