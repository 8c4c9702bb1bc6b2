"""The ActiveUF environment: one annotation round of active preference-data selection per step."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import activeuf_env.envs.state_file as state_file
from activeuf_env._validation import check_bool, check_choice, check_int, reject_unknown_keywords
from activeuf_env.core.downstream import DownstreamConfig, DownstreamScores
from activeuf_env.core.pool import ResponsePool
from activeuf_env.core.reward_model import EnsembleRewardModel, ReplayBuffer, RewardModelConfig, anchor_weight_at
from activeuf_env.data.export import ExportFormat, export_pairs
from activeuf_env.envs.actions import check_judge_calls, validate_pairs
from activeuf_env.envs.episode import Episode, RoundRecord
from activeuf_env.envs.instances import InstanceSpec, LoadedInstance, as_instance_list, instance_shapes, load_instance
from activeuf_env.envs.render import render_prompt_table

if TYPE_CHECKING:
    import datasets

__all__ = ["OBS_BOUND", "REWARD_METRICS", "ActiveUFEnv"]

OBS_BOUND = 1e4
"""Finite bound of the float observation boxes; reward-model outputs are clipped to it (never reached in practice)."""

REWARD_METRICS: dict[str, str | None] = {"score": "score", "dpo": "dpo_score", "rm": "rm_score", "none": None}
"""The ``reward=`` choices and the downstream score each one rewards the change of."""

_SETTING_ATTRIBUTES = {
    "instances": "instance_specs",
    "judge": "judge_name",
    "reward_model": "reward_model_config",
    "downstream": "downstream_config",
}
_SCORE_KEYS = ("rm_score", "dpo_score", "score", "rm_focus", "rm_precise", "rm_same_skill")


class ActiveUFEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Active preference-data selection as a Gymnasium environment (ActiveUltraFeedback, Melikidze et al., 2026).

    ## Description

    A pool holds N prompts with K candidate responses each, written by a pool of LLMs and scored by a judge. The
    pool is split by prompt into train prompts (offered to the agent) and held-out eval prompts. Each episode
    shuffles the train prompts into rounds of ``batch_size`` prompts. In every round the agent sees an ensemble reward
    model's predictions for each response and picks one pair per prompt; the judge orients each pair into (chosen,
    rejected); the pairs join the collected preference dataset and the replay buffer, and the ensemble retrains.

    ## Action Space

    ``MultiDiscrete([K] * 2B)`` laid out ``[i_0, j_0, i_1, j_1, ...]``; an integer array of shape ``[B, 2]`` is
    accepted too. ``i == j`` skips the prompt (no label, no cost). Out-of-range indices, padded responses, wrong
    shapes, non-integer dtypes and NaN raise ``ValueError`` naming the prompt and the value, and leave the
    environment's state unchanged. Rows of padded prompts (``prompt_valid == 0``) are ignored.

    ## Observation Space

    A flat ``Dict`` of fixed shapes:

    | key | shape | dtype | meaning |
    |---|---|---|---|
    | ``mean``, ``lower``, ``upper`` | ``[B, K]`` | float32 | ensemble mean and ``mean ∓ β_b·std`` (0 where padded) |
    | ``valid`` | ``[B, K]`` | int8 | 1 for a real response |
    | ``model_ids`` | ``[B, K]`` | int64 | model that wrote each response (0 where padded) |
    | ``prompt_valid`` | ``[B]`` | int8 | 0 for the padding rows of the last, partial batch |
    | ``budget_remaining`` | ``[1]`` | float32 | fraction of the label budget left |
    | ``features`` | ``[B, K, D]`` | float32 | only with ``observe_features=True`` |
    | ``judge_scores`` | ``[B, K]`` | float32 | only with ``expose_judge_scores=True`` (privileged baselines) |

    Float entries lie in ``[-1e4, 1e4]`` (reward-model outputs are clipped to that box). After the last round the
    observation has every ``prompt_valid`` 0.

    ## Rewards

    Every ``eval_every`` rounds (and always after the last one) a
    :class:`~activeuf_env.core.downstream.DownstreamEvaluator` trains a reward-model proxy and a DPO-policy proxy on
    all pairs collected so far and scores them on the held-out eval prompts: ``rm_score`` (RewardBench-2-style
    accuracy, chance 0.25), ``dpo_score`` (policy improvement over the SFT reference, 0 at the start) and their mean
    ``score``. The reward is the change of the chosen metric since the previous evaluation (``reward="score"``,
    ``"dpo"`` or ``"rm"``; 0.0 between evaluations), so the episode's return is the final minus the initial value.
    ``reward="none"`` gives 0.0 always (the scores are still reported); ``eval_every=None`` turns evaluation off.

    ## Episode End

    ``terminated`` when every train prompt has been offered or the label budget (``budget`` labels) is spent. The
    environment never truncates; ``truncated`` comes only from wrappers.

    ## Info

    Plain Python ints and floats: ``labels`` (pairs sent to the labeler so far; the budget counts these),
    ``judge_calls`` (responses the judge scored so far), ``skipped`` (prompts offered but not labelled, including
    pairs dropped because the budget ran out), ``abstained`` (pairs the judge declined), ``round``,
    ``round_labels``, ``pair_gap`` (mean true-quality gap of this round's collected pairs; 0.0 if none),
    ``label_accuracy`` (fraction of this round's collected pairs whose orientation agrees with true quality; 0.0 if
    none: weight by ``round_labels``), ``enn_loss`` (mean training loss this round) and ``instance_id``.
    With evaluation on, also ``rm_score``, ``dpo_score``, ``score``, the per-category accuracies ``rm_focus``,
    ``rm_precise``, ``rm_same_skill`` and ``regret`` (``S* − score``, where ``S*`` is the score of the evaluator
    trained on oracle pairs, :meth:`reference_score`): evaluated at reset (no pairs yet) and carried between
    evaluations, so they are always present and never NaN. The reset's ``info`` also holds ``model_names``, the
    episode's instance's model names indexed by ``obs["model_ids"]`` (a tuple of str).

    ## Instances and real data

    ``ActiveUF/Synthetic-v0`` and ``ActiveUF/SyntheticPaperScale-v0`` draw a synthetic pool
    (:class:`~activeuf_env.core.synthetic.SyntheticPoolConfig`); ``ActiveUF/Replay-v0`` and
    ``ActiveUF/AlpacaEval-v0`` read real data (:mod:`activeuf_env.envs.real_data`), where the judge scores are the
    dataset's and ``true_quality`` equals them, so the downstream scores measure agreement with that judge. A
    missing dataset raises ``FileNotFoundError`` at ``gymnasium.make``, naming the expected path.

    ``env.unwrapped.collected_dataset(format="dataset" | "jsonl" | "records", path=None)`` exports the pairs
    collected so far in the AUF / UltraFeedback binarized layout (``prompt_id``, ``prompt``, ``chosen``,
    ``rejected`` as chat messages, ``score_chosen``, ``score_rejected``, ``chosen_model``, ``rejected_model``,
    ``round``; see :mod:`activeuf_env.data.export`).

    ## Arguments

    ```python
    gymnasium.make("ActiveUF/Synthetic-v0", batch_size=64, budget=None, judge="score", labeler="judge")
    gymnasium.make("ActiveUF/Replay-v0", data_path="prefs.jsonl", features_path=None)
    gymnasium.make("ActiveUF/AlpacaEval-v0", data_dir=None)
    ```

    * ``instances``: one :data:`InstanceSpec` or a list (CARL-style: one is picked per reset, uniformly from the
      env's generator unless ``options={"instance": index}``). All instances need the same K and D.
    * ``batch_size``: prompts per round ``B``.
    * ``budget``: label budget; ``None`` allows one label per train prompt.
    * ``eval_size``: held-out prompts per instance, a fraction or a count; the split is fixed by ``split_seed``.
    * ``judge``, ``judge_kwargs``, ``judge_noise``: see :func:`activeuf_env.core.judges.make_judge`.
    * ``labeler``: ``"judge"``, or ``"first"`` to take the agent's first index as chosen with no judge call.
    * ``judge_calls_per_pair``: responses the judge scores per label (2; privileged baselines declare 4 or
      ``"all"``, every valid response of the prompt).
    * ``expose_judge_scores``, ``observe_features``: add the optional observation keys.
    * ``reward_model``: :class:`~activeuf_env.core.reward_model.RewardModelConfig` of the ensemble.
    * ``reward``: ``"score"`` (default), ``"dpo"``, ``"rm"`` or ``"none"`` (see Rewards).
    * ``eval_every``: evaluate the downstream proxies every this many rounds (and after the last); ``None``: never.
    * ``downstream``: :class:`~activeuf_env.core.downstream.DownstreamConfig` of the evaluator.
    * ``device``: torch device of the ensemble and of the DPO proxy's training (``"cuda"`` where present).
    * ``render_mode``: ``None`` or ``"ansi"``.

    ## Saving and resuming

    ``env.unwrapped.save(path)`` writes the episode (an ``.npz`` of arrays and JSON, no pickle), and
    ``env.reset(options={"state": path})`` resumes it bit-identically, through ``gymnasium.make``'s wrappers
    (``load`` and ``get_state`` / ``set_state`` work on the bare env). A state refuses an env that differs from
    its own, naming the difference (:mod:`~activeuf_env.envs.state_file`).

    ## Version History

    * v0: initial version (added before the first release: the downstream reward and scores, the real-data ids
      ``Replay-v0`` and ``AlpacaEval-v0``, and ``collected_dataset``).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    @reject_unknown_keywords
    def __init__(
        self,
        instances: InstanceSpec | Sequence[InstanceSpec] | None = None,
        *,
        batch_size: int = 64,
        budget: int | None = None,
        eval_size: float | int = 0.2,
        split_seed: int = 0,
        judge: str = "score",
        judge_kwargs: dict[str, Any] | None = None,
        judge_noise: dict[str, float] | None = None,
        labeler: Literal["judge", "first"] = "judge",
        judge_calls_per_pair: int | Literal["all"] = 2,
        expose_judge_scores: bool = False,
        observe_features: bool = False,
        reward_model: RewardModelConfig | None = None,
        reward: Literal["score", "dpo", "rm", "none"] = "score",
        eval_every: int | None = 1,
        downstream: DownstreamConfig | None = None,
        device: str = "cpu",
        render_mode: str | None = None,
    ) -> None:
        specs = as_instance_list(instances)
        if downstream is not None and not isinstance(downstream, DownstreamConfig):
            raise ValueError(f"downstream must be a DownstreamConfig or None, got {type(downstream).__name__}")
        if reward_model is not None and not isinstance(reward_model, RewardModelConfig):
            raise ValueError(f"reward_model must be a RewardModelConfig or None, got {type(reward_model).__name__}")

        self.instance_specs = specs
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.budget = check_int("budget", budget, low=1, optional=True)
        self.eval_size = eval_size
        self.split_seed = check_int("split_seed", split_seed, low=0)
        self.judge_name, self.judge_kwargs, self.judge_noise = judge, dict(judge_kwargs or {}), judge_noise
        self.labeler = check_choice("labeler", labeler, ("judge", "first"))
        self.judge_calls_per_pair = check_judge_calls(judge_calls_per_pair)
        self.expose_judge_scores = check_bool("expose_judge_scores", expose_judge_scores)
        self.observe_features = check_bool("observe_features", observe_features)
        self.reward_model_config = reward_model or RewardModelConfig()
        self.reward = check_choice("reward", reward, tuple(REWARD_METRICS))
        self.eval_every = check_int("eval_every", eval_every, low=1, optional=True)
        self.downstream_config = downstream or DownstreamConfig()
        self.device = device
        self.render_mode = check_choice("render_mode", render_mode, (*self.metadata["render_modes"], None))
        self._cache: dict[int, LoadedInstance] = {}

        n_responses, feature_dim, n_models = instance_shapes(specs)
        self.n_responses, self.feature_dim, self.n_models = n_responses, feature_dim, n_models
        self.action_space = spaces.MultiDiscrete(np.full(2 * self.batch_size, n_responses, dtype=np.int64))
        self.observation_space = self._make_observation_space()
        self._episode: Episode | None = None

    # ------------------------------------------------------------------ spaces and instances

    def _make_observation_space(self) -> spaces.Dict:
        b, k = self.batch_size, self.n_responses

        def box(shape: tuple[int, ...]) -> spaces.Box:
            return spaces.Box(-OBS_BOUND, OBS_BOUND, shape=shape, dtype=np.float32)

        entries: dict[str, spaces.Space[Any]] = {
            "mean": box((b, k)),
            "lower": box((b, k)),
            "upper": box((b, k)),
            "valid": spaces.MultiBinary((b, k)),
            "model_ids": spaces.Box(0, self.n_models - 1, shape=(b, k), dtype=np.int64),
            "prompt_valid": spaces.MultiBinary(b),
            "budget_remaining": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
        }
        if self.observe_features:
            entries["features"] = box((b, k, self.feature_dim))
        if self.expose_judge_scores:
            entries["judge_scores"] = box((b, k))
        return spaces.Dict(entries)

    def _instance(self, index: int) -> LoadedInstance:
        if index not in self._cache:
            judge = (self.judge_name, self.judge_noise, self.judge_kwargs)
            settings = (self.eval_size, self.split_seed, judge, self.downstream_config, self.device)
            self._cache[index] = load_instance(self.instance_specs[index], index, *settings)
        return self._cache[index]

    @property
    def pool(self) -> ResponsePool:
        """The train pool of the current episode's instance."""
        return self._instance(self._require_episode().instance_id).train

    @property
    def eval_pool(self) -> ResponsePool:
        """The held-out eval pool of the current episode's instance."""
        return self._instance(self._require_episode().instance_id).eval

    @property
    def episode(self) -> Episode:
        """The current episode's state (prompt order, round, counters, collected pairs, ensemble); read, don't edit.

        Raises:
            gymnasium.error.ResetNeeded: before the first ``reset``.
        """
        return self._require_episode()

    def settings(self) -> dict[str, Any]:
        """Every constructor argument but ``render_mode`` with the value the env uses (defaults included)."""
        names = [
            name for name in inspect.signature(ActiveUFEnv.__init__).parameters if name not in ("self", "render_mode")
        ]
        return {name: getattr(self, _SETTING_ATTRIBUTES.get(name, name)) for name in names}

    def reference_score(self) -> float:
        """``S*`` of the current instance: the downstream score of oracle pairs for every train prompt (cached)."""
        return self._instance(self._require_episode().instance_id).evaluator.reference_score()

    def reference_scores(self) -> dict[str, float | int]:
        """Every downstream score of the oracle pairs of the current instance (``rm_score``, ``dpo_score``, ...)."""
        return self._instance(self._require_episode().instance_id).evaluator.reference_scores().to_dict()

    def _require_episode(self) -> Episode:
        if self._episode is None:
            raise gym.error.ResetNeeded("call reset() before using the environment")
        return self._episode

    # ------------------------------------------------------------------ reset

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: pick the instance, shuffle its train prompts, re-initialise the ensemble and buffer.

        Args:
            seed: seeds the environment's generator, from which everything in the episode is drawn.
            options: ``{"instance": index}`` picks an instance of a multi-instance env. ``{"state": path}`` (a file
                of :meth:`save`) or ``{"state": state}`` (of :meth:`get_state`) resumes that episode instead and returns
                its current observation and info; ``seed`` is then ignored: the state's generator wins.
        """
        if (options or {}).get("state") is not None:
            if len(options) > 1:
                raise ValueError(f"options['state'] takes no other option, got {sorted(options)}")
            self._restore(options["state"])
        else:
            self._start(seed, options)
        ep = self._require_episode()
        assert ep.observation is not None
        return _copy_obs(ep.observation), {**self._info(ep.last), "model_names": tuple(self.pool.model_names)}

    def _start(self, seed: int | None, options: dict[str, Any] | None) -> None:
        super().reset(seed=seed)
        rng = self.np_random
        instance_id = self._pick_instance(options, rng)
        train = self._instance(instance_id).train
        n_rounds = -(-train.n_prompts // self.batch_size)
        order = np.full(n_rounds * self.batch_size, -1, dtype=np.int64)
        order[: train.n_prompts] = rng.permutation(train.n_prompts)
        cfg, model_seed = self.reward_model_config, int(rng.integers(2**63 - 1))
        model = EnsembleRewardModel(train.feature_dim, config=cfg, seed=model_seed, device=self.device)
        self._episode = Episode(
            instance_id=instance_id,
            order=order.reshape(n_rounds, self.batch_size),
            budget=self.budget if self.budget is not None else train.n_prompts,
            model=model,
            buffer=ReplayBuffer(self.batch_size * cfg.replay_factor, train.feature_dim),
        )
        self._evaluate(self._episode)
        self._episode.observation = self._observe()

    def _pick_instance(self, options: dict[str, Any] | None, rng: np.random.Generator) -> int:
        n = len(self.instance_specs)
        requested = (options or {}).get("instance")
        if requested is None:
            return int(rng.integers(n)) if n > 1 else 0
        if not isinstance(requested, (int, np.integer)) or not 0 <= requested < n:
            raise ValueError(f"options['instance'] must be an index in [0, {n}), got {requested!r}")
        return int(requested)

    # ------------------------------------------------------------------ step

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Label the chosen pairs, store them, retrain the ensemble and observe the next batch."""
        ep = self._require_episode()
        if ep.done:
            raise gym.error.ResetNeeded("the episode has terminated; call reset() before step()")
        inst = self._instance(ep.instance_id)
        prompts = ep.order[ep.round]
        pairs = validate_pairs(action, self.batch_size, self.n_responses, prompts, inst.train)

        record = self._label_and_store(ep, inst, prompts, pairs)
        self._train_model(ep)
        ep.round += 1
        terminated = ep.done
        reward = 0.0
        if self.eval_every is not None and (terminated or ep.round % self.eval_every == 0):
            reward = self._evaluate(ep)
        ep.observation = self._observe(terminal=terminated)
        ep.last = record
        return _copy_obs(ep.observation), reward, terminated, False, self._info(record)

    def _label_and_store(
        self, ep: Episode, inst: LoadedInstance, prompts: np.ndarray, pairs: np.ndarray
    ) -> RoundRecord:
        counts, train = ep.counts, inst.train
        wanted = np.flatnonzero((prompts >= 0) & (pairs[:, 0] != pairs[:, 1]))
        n_offered = int((prompts >= 0).sum())
        sent = wanted[: max(ep.budget - counts.labels, 0)]
        p, i, j = prompts[sent], pairs[sent, 0], pairs[sent, 1]
        if self.labeler == "first":
            chosen_is_i, abstained, calls = np.ones(len(sent), dtype=bool), np.zeros(len(sent), dtype=bool), 0
        else:
            abstained = inst.judge.abstains(p, i, j)
            chosen_is_i = inst.judge.label(p, i, j, self.np_random)
            per_pair = train.valid[p].sum(axis=1) if self.judge_calls_per_pair == "all" else self.judge_calls_per_pair
            calls = int(np.sum(np.broadcast_to(per_pair, (len(sent),))))
        keep = ~abstained
        p, chosen, rejected = p[keep], np.where(chosen_is_i, i, j)[keep], np.where(chosen_is_i, j, i)[keep]
        ep.collected.append(np.stack([p, chosen, rejected, np.full_like(p, ep.round)], axis=1))
        ep.buffer.add(
            np.asarray(train.features[p, chosen], dtype=np.float32),
            np.asarray(train.features[p, rejected], dtype=np.float32),
        )
        counts.labels += len(sent)
        counts.judge_calls += calls
        counts.skipped += n_offered - len(sent)
        counts.abstained += int(abstained.sum())
        u_chosen, u_rejected = train.true_quality[p, chosen], train.true_quality[p, rejected]
        n = len(p)
        assert ep.observation is not None
        return RoundRecord(
            observation=ep.observation,
            prompts=prompts,
            pairs=pairs,
            round_labels=n,
            pair_gap=float(np.mean(np.abs(u_chosen - u_rejected))) if n else 0.0,
            label_accuracy=float(np.mean(u_chosen >= u_rejected)) if n else 0.0,
            verdict=chosen_is_i,
            sent=sent,
            keep=keep,
        )

    def _evaluate(self, ep: Episode) -> float:
        """Score the pairs collected so far downstream; return the change of the rewarded metric (0.0 at reset)."""
        if self.eval_every is None:
            return 0.0
        evaluator = self._instance(ep.instance_id).evaluator
        scores: DownstreamScores = evaluator.evaluate(ep.collected_pairs())
        values = {key: float(getattr(scores, key)) for key in _SCORE_KEYS}
        values["regret"] = float(evaluator.reference_score() - scores.score)
        previous, ep.scores = ep.scores, values
        metric = REWARD_METRICS[self.reward]
        if previous is None or metric is None:
            return 0.0
        return values[metric] - previous[metric]

    def _train_model(self, ep: Episode) -> None:
        cfg = self.reward_model_config
        decay_steps = cfg.anchor_decay_steps if cfg.anchor_decay_steps is not None else ep.n_rounds
        ep.model.anchor_weight = anchor_weight_at(
            cfg.anchor_weight, cfg.anchor_decay, decay_steps, ep.round, ep.n_rounds
        )
        ep.loss = ep.model.fit_round(ep.buffer, self.np_random)

    # ------------------------------------------------------------------ observation and info

    def _observe(self, terminal: bool = False) -> dict[str, np.ndarray]:
        ep = self._require_episode()
        train = self._instance(ep.instance_id).train
        b, k = self.batch_size, self.n_responses
        prompts = np.full(b, -1, dtype=np.int64) if terminal else ep.order[ep.round]
        live = prompts >= 0
        rows = np.where(live, prompts, 0)
        valid = train.valid[rows] & live[:, None]
        obs: dict[str, np.ndarray] = {}
        if live.any():
            features = np.asarray(train.features[rows], dtype=np.float32)
            mean, lower, upper = ep.model.predict(features)
        else:
            features = np.zeros((b, k, self.feature_dim), dtype=np.float32)
            mean = lower = upper = np.zeros((b, k), dtype=np.float32)
        for key, value in (("mean", mean), ("lower", lower), ("upper", upper)):
            obs[key] = np.where(valid, np.clip(value, -OBS_BOUND, OBS_BOUND), 0.0).astype(np.float32)
        obs["valid"] = valid.astype(np.int8)
        obs["model_ids"] = np.where(valid, train.model_ids[rows], 0).astype(np.int64)
        obs["prompt_valid"] = live.astype(np.int8)
        left = 1.0 - ep.counts.labels / ep.budget
        obs["budget_remaining"] = np.array([min(max(left, 0.0), 1.0)], dtype=np.float32)
        if self.observe_features:
            obs["features"] = np.where(valid[..., None], np.clip(features, -OBS_BOUND, OBS_BOUND), 0.0).astype(
                np.float32
            )
        if self.expose_judge_scores:
            obs["judge_scores"] = np.where(valid, train.judge_scores[rows], 0.0).astype(np.float32)
        return obs

    def _info(self, record: RoundRecord | None) -> dict[str, Any]:
        ep = self._require_episode()
        info: dict[str, Any] = {key: int(value) for key, value in dataclasses.asdict(ep.counts).items()}
        info["round"] = int(ep.round)
        info["instance_id"] = int(ep.instance_id)
        if record is not None:
            info.update(record.stats())
            info["enn_loss"] = float(ep.loss)
        if ep.scores is not None:
            info.update(ep.scores)
        return info

    # ------------------------------------------------------------------ render, close, state

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: a table of one prompt's responses, μ ± s, the chosen pair and the verdict."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' to the constructor")
            return None
        ep = self._require_episode()
        return render_prompt_table(self._instance(ep.instance_id).train, ep, self.batch_size)

    def close(self) -> None:
        """Release the episode and cached pools; safe to call more than once."""
        self._episode = None
        self._cache.clear()

    def collected_pairs(self) -> np.ndarray:
        """The pairs collected so far, int64 ``[n, 4]``: (train prompt index, chosen, rejected, round)."""
        return self._require_episode().collected_pairs()

    def collected_dataset(
        self, format: ExportFormat = "dataset", path: str | Path | None = None
    ) -> datasets.Dataset | Path | list[dict[str, Any]]:
        """The pairs collected so far as a preference dataset in the AUF / UltraFeedback binarized layout.

        One row per pair: ``prompt_id``, ``prompt``, ``chosen`` and ``rejected`` (chat messages
        ``[{"role": "user", ...}, {"role": "assistant", ...}]``), ``score_chosen``, ``score_rejected`` (judge
        scores), ``chosen_model``, ``rejected_model``, ``chosen_index``, ``rejected_index`` and ``round``. Pools
        without texts (synthetic) get placeholder strings naming the prompt id, slot and model; see
        :mod:`activeuf_env.data.export`. Exporting never changes the episode: a failed write loses nothing.

        Args:
            format: ``"dataset"`` (a ``datasets.Dataset``; needs the ``data`` extra), ``"jsonl"`` (writes ``path``
                atomically and returns it) or ``"records"`` (a list of dicts).
            path: the JSONL file (``.jsonl`` or ``.jsonl.gz``); required for, and only used with, ``"jsonl"``.

        Raises:
            ValueError: an unknown ``format``, ``"jsonl"`` without ``path``, or ``path`` with another format.
            OSError: the JSONL file cannot be written.
            gymnasium.error.ResetNeeded: no episode yet.
        """
        return export_pairs(self.pool, self.collected_pairs(), format=format, path=path)

    def get_state(self) -> dict[str, Any]:
        """The episode as plain data (a deep copy) that :meth:`set_state` or ``reset(options={"state": ...})`` resumes
        bit-identically on an env of the same fingerprint (:mod:`~activeuf_env.envs.state_file`)."""
        ep = self._require_episode()
        return state_file.make_state(ep, self.np_random, self._fingerprint(ep.instance_id))

    def set_state(self, state: dict[str, Any]) -> None:
        """Resume a :meth:`get_state` (errors as :meth:`load`); through wrappers: ``reset(options={"state": s})``."""
        self._restore(state)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`get_state` atomically to ``path``, an ``.npz`` of arrays and JSON (no pickle); returns it."""
        return state_file.write_state(path, self.get_state())

    def load(self, path: str | Path) -> None:
        """Resume the file of :meth:`save` (no pickle is read); through wrappers use ``reset(options={"state": path})``.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is truncated, corrupt or holds pickled data, or the env differs (naming the path).
        """
        self._restore(path)

    def _fingerprint(self, instance_id: int) -> dict[str, Any]:
        inst, settings = self._instance(instance_id), self.settings()
        settings.update(n_instances=len(self.instance_specs), n_responses=self.n_responses)
        settings.update(feature_dim=self.feature_dim, n_models=self.n_models)
        return state_file.env_fingerprint(settings, inst.train, inst.eval)

    def _restore(self, state: dict[str, Any] | str | Path) -> None:
        cfg, n = self.reward_model_config, len(self.instance_specs)
        model = EnsembleRewardModel(self.feature_dim, config=cfg, seed=0, device=self.device)
        buffer = ReplayBuffer(self.batch_size * cfg.replay_factor, self.feature_dim)
        episode, rng = state_file.restore_state(state, n, self._fingerprint, model, buffer)
        self.np_random, self._episode = rng, episode

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}}


def _copy_obs(observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: value.copy() for key, value in observation.items()}
