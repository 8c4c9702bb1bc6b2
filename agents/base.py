"""The agent interface and the validated view of an observation that every agent reads.

An agent is a small dataclass (Open Bandit Pipeline style): its fields are hyperparameters, validated in
``__post_init__``; it owns an :class:`numpy.random.Generator` that :meth:`Agent.reset` re-seeds; and
:meth:`Agent.select` maps one observation of an ``ActiveUF`` environment to an ``int64`` array ``[B, 2]`` of
response pairs ``(i, j)``, one per prompt, where ``i == j`` means *skip this prompt*.

Subclasses implement :meth:`Agent._select_pairs` on a :class:`Batch`, the checked float64 view of the observation,
and never see padded responses: :class:`Batch` zero-fills them and hands the agent a boolean mask instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from activeuf_env._validation import check_int, check_number

__all__ = ["ENN_KEYS", "Agent", "Batch", "Observation", "check_int", "check_number"]

Observation = Mapping[str, Any]
"""One environment observation: a mapping from key to array (see docs/design.md §7.2)."""

ENN_KEYS: tuple[str, ...] = ("mean", "lower", "upper")
"""The reward-model keys that the uncertainty-aware agents read."""

_PER_RESPONSE_KEYS = frozenset({"mean", "lower", "upper", "judge_scores", "model_ids"})
_FLOAT_KEYS = frozenset({"mean", "lower", "upper", "judge_scores"})


@dataclass(frozen=True, eq=False)
class Batch:
    """A checked, float64 view of one observation, as agents consume it.

    Padded responses are zero-filled in every per-response array, so arithmetic on them never produces
    ``inf - inf``; agents mask them with :attr:`valid` before any argmax. Rows of inactive prompts
    (``prompt_valid == 0``) have an all-false :attr:`valid` row, and :meth:`finalize` turns them into the skip
    pair ``(0, 0)``.

    Attributes:
        active: bool ``[B]``, the prompts to answer (``prompt_valid == 1``).
        valid: bool ``[B, K]``, real responses of active prompts.
        mean: float64 ``[B, K]`` (``None`` when the agent did not ask for it); likewise ``lower``, ``upper``.
        spread: float64 ``[B, K]``, ``s = (upper - lower) / 2`` when the ENN keys were read, else ``None``.
        judge_scores: float64 ``[B, K]`` or ``None``.
        model_ids: int64 ``[B, K]`` or ``None``.
    """

    active: np.ndarray
    valid: np.ndarray
    mean: np.ndarray | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    spread: np.ndarray | None = None
    judge_scores: np.ndarray | None = None
    model_ids: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(B, K)``: prompts per batch and response slots per prompt."""
        return self.valid.shape  # type: ignore[return-value]

    @classmethod
    def from_obs(cls, obs: Observation, keys: tuple[str, ...], agent: str = "agent") -> Batch:
        """Check an observation and build the view of the keys an agent reads.

        Args:
            obs: the observation mapping; it is never modified.
            keys: per-response keys to read besides ``valid`` and ``prompt_valid`` (any of ``mean``, ``lower``,
                ``upper``, ``judge_scores``, ``model_ids``).
            agent: the agent's name, used in error messages.

        Returns:
            The validated :class:`Batch`.

        Raises:
            ValueError: on a missing key, a shape mismatch, a non-finite value in a valid entry,
                ``upper < lower``, or an active prompt with fewer than two valid responses. A missing
                ``judge_scores`` key says how to build the env so that it exists.
        """
        if not isinstance(obs, Mapping):
            raise ValueError(f"{agent}: the observation must be a mapping of arrays, got {type(obs).__name__}")
        for key in ("valid", "prompt_valid", *keys):
            if key not in obs:
                if key == "judge_scores":
                    raise ValueError(
                        f"{agent} reads obs['judge_scores'], which is missing: build the env with "
                        f"expose_judge_scores=True, e.g. gymnasium.make(env_id, **agent.env_kwargs())"
                    )
                raise ValueError(f"{agent}: the observation has no key {key!r} (keys: {sorted(obs)})")
        valid = np.asarray(obs["valid"])
        if valid.ndim != 2:
            raise ValueError(f"{agent}: obs['valid'] must have shape [B, K], got shape {valid.shape}")
        n_prompts, n_slots = valid.shape
        prompt_valid = np.asarray(obs["prompt_valid"])
        if prompt_valid.shape != (n_prompts,):
            raise ValueError(
                f"{agent}: obs['prompt_valid'] must have shape [B] = ({n_prompts},), got shape {prompt_valid.shape}"
            )
        active = prompt_valid != 0
        valid = (valid != 0) & active[:, None]
        n_valid = valid.sum(axis=1)
        short = active & (n_valid < 2)
        if short.any():
            row = int(np.flatnonzero(short)[0])
            raise ValueError(
                f"{agent}: prompt {row} of the batch is active (prompt_valid=1) but has {int(n_valid[row])} valid "
                f"response(s); at least 2 are needed"
            )
        arrays: dict[str, np.ndarray] = {}
        for key in keys:
            if key not in _PER_RESPONSE_KEYS:
                raise ValueError(f"{agent}: unknown observation key {key!r}")
            arr = np.asarray(obs[key])
            if arr.shape != (n_prompts, n_slots):
                raise ValueError(
                    f"{agent}: obs[{key!r}] must have shape [B, K] = {(n_prompts, n_slots)} like obs['valid'], "
                    f"got shape {arr.shape}"
                )
            if key in _FLOAT_KEYS:
                arr = np.where(valid, arr.astype(np.float64, copy=False), 0.0)
                if not np.isfinite(arr).all():
                    bad = np.argwhere(~np.isfinite(arr))[0]
                    raise ValueError(
                        f"{agent}: obs[{key!r}] has a non-finite value {float(arr[tuple(bad)])!r} at prompt {bad[0]}, "
                        f"response {bad[1]}"
                    )
            else:
                arr = np.where(valid, arr.astype(np.int64, copy=False), 0)
            arrays[key] = arr
        spread = None
        if "lower" in arrays and "upper" in arrays:
            spread = 0.5 * (arrays["upper"] - arrays["lower"])
            if (spread < 0).any():
                bad = np.argwhere(spread < 0)[0]
                raise ValueError(
                    f"{agent}: obs['upper'] < obs['lower'] at prompt {bad[0]}, response {bad[1]} "
                    f"({float(arrays['upper'][tuple(bad)])!r} < {float(arrays['lower'][tuple(bad)])!r})"
                )
        return cls(active=active, valid=valid, spread=spread, **arrays)

    def finalize(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Stack per-prompt indices into the ``int64 [B, 2]`` action, with ``(0, 0)`` for inactive prompts.

        Args:
            first: int ``[B]``, the first index ``i`` of each pair.
            second: int ``[B]``, the second index ``j`` of each pair.

        Returns:
            int64 ``[B, 2]``.
        """
        pairs = np.stack([first, second], axis=1).astype(np.int64, copy=False)
        pairs[~self.active] = 0
        return pairs


@dataclass
class Agent:
    """Base class of selection agents and baselines.

    Subclasses are dataclasses whose fields are hyperparameters; they set the class attributes :attr:`name` and
    :attr:`obs_keys`, validate their fields in :meth:`_validate`, and implement :meth:`_select_pairs`.

    Attributes:
        name: the registry name (``agents.make(name)``).
        obs_keys: per-response observation keys the agent reads besides ``valid`` and ``prompt_valid``.

    Example:
        >>> import numpy as np
        >>> from agents import make
        >>> agent = make("random")
        >>> agent.reset(seed=0)
        >>> obs = {"valid": np.ones((2, 3), np.int8), "prompt_valid": np.array([1, 0], np.int8)}
        >>> pairs = agent.select(obs)
        >>> pairs.dtype, pairs.shape, bool(pairs[0, 0] != pairs[0, 1]), pairs[1].tolist()
        (dtype('int64'), (2, 2), True, [0, 0])
    """

    name: ClassVar[str] = "agent"
    obs_keys: ClassVar[tuple[str, ...]] = ENN_KEYS

    def __post_init__(self) -> None:
        self._validate()
        self._rng: np.random.Generator = np.random.default_rng()

    def _validate(self) -> None:
        """Check the hyperparameters; raise ``ValueError`` naming the bad value."""

    def reset(self, seed: int | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Re-seed the agent's random generator (``None``: fresh OS entropy) at the start of an episode.

        Args:
            seed: the seed of the agent's :class:`numpy.random.Generator`.
            info: the env's reset ``info`` (its ``model_names`` name the ids of ``obs["model_ids"]``); agents that
                read pool metadata use it, the others ignore it.
        """
        self._rng = np.random.default_rng(seed)

    def env_kwargs(self) -> dict[str, Any]:
        """The ``ActiveUFEnv`` constructor kwargs this agent needs (``gymnasium.make(env_id, **kwargs)``).

        Returns:
            A dict with any of ``expose_judge_scores``, ``labeler`` and ``judge_calls_per_pair``; empty by default.
        """
        return {}

    def select(self, obs: Observation) -> np.ndarray:
        """Pick one response pair per prompt.

        Args:
            obs: one observation of an ``ActiveUF`` environment (see docs/design.md §7.2).

        Returns:
            int64 ``[B, 2]``: ``(i, j)`` per prompt; ``i == j`` (``(0, 0)``) skips the prompt, and inactive
            prompts (``prompt_valid == 0``) are always skipped.

        Raises:
            ValueError: when the observation lacks a key the agent reads or is malformed.
        """
        batch = Batch.from_obs(obs, self.obs_keys, self.name)
        if batch.shape[0] == 0:
            return np.zeros((0, 2), dtype=np.int64)
        first, second = self._select_pairs(batch)
        return batch.finalize(first, second)

    def _select_pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(i, j)`` index arrays ``[B]``; rows of inactive prompts may hold anything."""
        raise NotImplementedError
