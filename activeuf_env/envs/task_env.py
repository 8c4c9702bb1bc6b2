"""``ActiveUF/SyntheticTasks-v0``: one environment over a split of the task distribution (:mod:`.tasks`)."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from activeuf_env._validation import check_int
from activeuf_env.envs.active_uf import ActiveUFEnv
from activeuf_env.envs.tasks import MAX_RESPONSES, TASK_SPLITS, Task, TaskDistribution, draw_task, split_tasks

__all__ = ["SyntheticTasksEnv"]

_TASK_KWARGS = ("instances", "batch_size", "budget", "eval_size", "judge", "judge_noise", "judge_kwargs")
_CACHED_TASKS = 8


class SyntheticTasksEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Active preference-data selection over a distribution of synthetic tasks (CARL / Procgen style).

    ## Description
    Every reset starts an episode of :class:`~activeuf_env.envs.active_uf.ActiveUFEnv` on one task of the chosen
    split: its own pool (K from 8 to 40 responses per prompt, feature dimension, difficulty, topic mix, verbosity and
    length bias), judge (score or Bradley-Terry, flip noise, position bias, abstention) and label budget (a quarter
    of the train prompts up to all of them). Response slots are shuffled per prompt and model ids drawn afresh per
    task, so position and id carry nothing from one task to the next (:func:`~activeuf_env.envs.tasks.
    make_task_pool`). Steps, rewards, ``info`` and episode end are those of ``ActiveUFEnv``; ``info`` also holds
    ``task`` (the task's seed).

    ## Observation and Action Spaces
    Those of ``ActiveUFEnv`` with ``K = MAX_RESPONSES = 40`` slots (``valid`` is 0 on the padding; the real responses
    are the first K slots) and ``B`` the distribution's ``batch_size`` (32), identical for every task, so tasks mix in
    one vector env. A pair that picks a padded slot skips its prompt (no label, no cost), so every sample of the
    action space is a valid action whatever the task's K; any other invalid action raises as in ``ActiveUFEnv``.

    ## Which task a reset plays
    ``reset(seed=s)`` plays task ``tasks[s % n]`` with episode seed ``s // n`` (``n`` tasks in the env), so seeds
    ``0 .. r*n - 1`` play every task ``r`` times, and the same seed is the same task for every agent (paired
    comparisons). ``reset()`` without a seed draws a task uniformly from the env's generator (as after an
    autoreset in a vector env). ``options={"task": seed}`` plays that task seed (it must be in the env's tasks).

    ## Arguments
    ```python
    gymnasium.make("ActiveUF/SyntheticTasks-v0", split="train", tasks=None, distribution=None, **env_kwargs)
    ```
    * ``split``: ``"train"``, ``"validation"`` or ``"test"`` (:data:`~activeuf_env.envs.tasks.TASK_SPLITS`).
    * ``tasks``: how many of the split's tasks (its first ``tasks`` seeds; default: all of them), or a list of
      task seeds of the split.
    * ``distribution``: the :class:`~activeuf_env.envs.tasks.TaskDistribution` (default ranges when ``None``).
    * ``env_kwargs``: any other ``ActiveUFEnv`` argument (``reward``, ``eval_every``, ``reward_model``, ...), the
      same for every task; the per-task ones (pool, batch size, budget, eval size, judge) are not allowed.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        split: str = "train",
        tasks: int | Sequence[int] | None = None,
        distribution: TaskDistribution | None = None,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        fixed = sorted(set(env_kwargs) & set(_TASK_KWARGS))
        if fixed:
            raise ValueError(f"{fixed} are set per task by the task distribution and cannot be overridden")
        if tasks is None or isinstance(tasks, (int, np.integer)):
            seeds = split_tasks(split, None if tasks is None else int(tasks))
        else:
            seeds = [check_int(f"tasks[{i}]", seed, low=0) for i, seed in enumerate(tasks)]  # type: ignore[misc]
            stray = [seed for seed in seeds if seed not in TASK_SPLITS[split]]
            if stray or not seeds:
                raise ValueError(f"tasks must be seeds of split {split!r} ({TASK_SPLITS[split]}), got {stray or seeds}")
        self.split, self.task_seeds = split, seeds
        self.distribution = distribution or TaskDistribution()
        self.env_kwargs = dict(env_kwargs)
        self.render_mode = render_mode
        self._envs: collections.OrderedDict[int, ActiveUFEnv] = collections.OrderedDict()
        self._env: ActiveUFEnv | None = None
        self._task = -1
        self._valid = np.zeros((0, MAX_RESPONSES), dtype=bool)
        first = self._task_env(seeds[0])
        # Model ids go up to the largest model count of any task, not only the first task's.
        model_ids = spaces.Box(0, MAX_RESPONSES - 1, shape=first.observation_space["model_ids"].shape, dtype=np.int64)
        self.observation_space = spaces.Dict({**first.observation_space.spaces, "model_ids": model_ids})
        self.action_space = first.action_space

    def task(self, seed: int) -> Task:
        """The task of ``seed`` under this env's distribution."""
        return draw_task(seed, self.distribution)

    def _task_env(self, seed: int) -> ActiveUFEnv:
        """The ``ActiveUFEnv`` of a task (the last few are kept: building one draws its pool and evaluator)."""
        if seed not in self._envs:
            kwargs = {**self.env_kwargs, **self.task(seed).env_kwargs()}
            self._envs[seed] = ActiveUFEnv(render_mode=self.render_mode, **kwargs)
            while len(self._envs) > _CACHED_TASKS:
                self._envs.popitem(last=False)[1].close()
        self._envs.move_to_end(seed)
        return self._envs[seed]

    @property
    def current(self) -> ActiveUFEnv:
        """The ``ActiveUFEnv`` of the current episode's task.

        Raises:
            gymnasium.error.ResetNeeded: before the first ``reset``.
        """
        if self._env is None:
            raise gym.error.ResetNeeded("call reset() before using the environment")
        return self._env

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode on a task (see "Which task a reset plays" in the class docstring)."""
        super().reset(seed=seed)
        options = dict(options or {})
        n = len(self.task_seeds)
        if "task" in options:
            task = check_int("options['task']", options.pop("task"), low=0)
            if task not in self.task_seeds:
                raise ValueError(f"options['task'] must be one of this env's {n} task seeds, got {task}")
            episode_seed = int(self.np_random.integers(2**31)) if seed is None else seed
        elif seed is not None:
            task, episode_seed = self.task_seeds[seed % n], seed // n
        else:
            task = self.task_seeds[int(self.np_random.integers(n))]
            episode_seed = int(self.np_random.integers(2**31))
        self._env, self._task = self._task_env(task), task  # type: ignore[arg-type]
        obs, info = self._env.reset(seed=episode_seed, options=options or None)
        self._valid = obs["valid"].astype(bool)
        return obs, {**info, "task": task}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """One annotation round of the current task (``ActiveUFEnv.step``); ``info`` also holds ``task``."""
        obs, reward, terminated, truncated, info = self.current.step(self._skip_padding(action))
        self._valid = obs["valid"].astype(bool)
        return obs, float(reward), terminated, truncated, {**info, "task": self._task}

    def _skip_padding(self, action: Any) -> Any:
        """The action with every pair that picks a padded slot turned into a skip (slot 0 is always real)."""
        array = np.asarray(action)
        if array.dtype.kind not in "iu" or array.size != 2 * self.current.batch_size:
            return action  # ActiveUFEnv names what is wrong with it
        pairs = array.reshape(-1, 2)
        inside = (pairs >= 0) & (pairs < MAX_RESPONSES)
        rows = np.arange(len(pairs))[:, None]
        padded = (inside & ~self._valid[rows, np.where(inside, pairs, 0)]).any(axis=1)
        if not padded.any():
            return action
        pairs = pairs.copy()
        pairs[padded] = 0
        return pairs.reshape(array.shape)

    def render(self) -> str | None:
        """The current task's ``render()``."""
        return self.current.render()

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
        self._env = None

    # The episode accessors of ActiveUFEnv that runners and agents read, for the current task.
    @property
    def budget(self) -> int | None:
        """The current task's label budget."""
        return self.current.budget

    @property
    def pool(self) -> Any:
        """The current task's train pool."""
        return self.current.pool

    def reference_score(self) -> float:
        """``S*`` of the current task."""
        return self.current.reference_score()

    def reference_scores(self) -> dict[str, float | int]:
        """Every downstream score of the oracle pairs of the current task."""
        return self.current.reference_scores()
