"""The agent interface: the registry, hyperparameter validation, env kwargs, observation checks and seeding."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from helpers import make_test_agent

import agents
from agents import registry
from agents.base import Agent

AGENT_NAMES = ("dts", "drts", "deltaucb", "deltaquantile", "maxminlcb", "rucb", "infomax", "infogain", "ids")
BASELINE_NAMES = ("random", "ultrafeedback", "maxmin", "delta_model")


def make_obs(n_prompts: int = 4, n_slots: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(n_prompts, n_slots)).astype(np.float32)
    std = rng.uniform(0.1, 1.0, size=(n_prompts, n_slots)).astype(np.float32)
    return {
        "mean": mean,
        "lower": mean - std,
        "upper": mean + std,
        "valid": np.ones((n_prompts, n_slots), np.int8),
        "model_ids": np.tile(np.arange(n_slots), (n_prompts, 1)) + 5,
        "prompt_valid": np.ones(n_prompts, np.int8),
        "budget_remaining": np.ones(1, np.float32),
        "judge_scores": rng.uniform(1, 5, size=(n_prompts, n_slots)).astype(np.float32),
    }


def test_registry_covers_agents_and_baselines():
    assert set(agents.registered_names()) == {*AGENT_NAMES, *BASELINE_NAMES, "learned"}


@pytest.mark.parametrize("name", AGENT_NAMES + BASELINE_NAMES)
def test_make_returns_a_named_agent(name):
    agent = agents.make(name)
    assert isinstance(agent, Agent)
    assert agent.name == name
    assert type(agent).name == name
    assert name in repr(agents.make(name)) or type(agent).__name__ in repr(agent)


def test_baselines_live_in_the_baselines_package():
    for name in BASELINE_NAMES:
        assert type(agents.make(name)).__module__.startswith("baselines.")
    for name in AGENT_NAMES:
        assert type(agents.make(name)).__module__.startswith("agents.")


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"no agent named 'drtss'; did you mean 'drts'\?"):
        agents.make("drtss")
    with pytest.raises(ValueError, match="Registered: dts, drts"):
        agents.make("zzz")


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="gamma"):
        agents.make("dts", gamma=1.0)


def test_register_new_agent(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    agents.register("my_dts", lambda **kw: agents.DoubleThompsonSampling(**kw))
    agents.register("my_ucb", "agents.ucb:DeltaUCB")
    assert agents.make("my_dts", beta=0.5).beta == 0.5
    assert isinstance(agents.make("my_ucb"), agents.DeltaUCB)
    assert agents.registered_names()[-2:] == ("my_dts", "my_ucb")
    with pytest.raises(ValueError, match="already registered"):
        agents.register("my_dts", agents.DoubleThompsonSampling)
    with pytest.raises(ValueError, match="module:Class"):
        agents.register("bad", "agents.ucb.DeltaUCB")
    with pytest.raises(ValueError, match="non-empty string"):
        agents.register("", agents.DeltaUCB)
    agents.register("not_an_agent", lambda: object())
    with pytest.raises(TypeError, match="not an Agent"):
        agents.make("not_an_agent")


BAD_HYPERPARAMETERS = [
    ("dts", {"beta": -1.0}, "beta must be a finite number >= 0.0, got -1.0"),
    ("drts", {"beta": float("nan")}, "beta must be a finite number >= 0.0, got nan"),
    ("deltaucb", {"beta": float("inf")}, "got inf"),
    ("infomax", {"beta": True}, "got True"),
    ("infogain", {"beta": "1"}, "got '1'"),
    ("dts", {"max_tries": 0}, "max_tries must be an integer >= 1, got 0"),
    ("drts", {"max_tries": 2.0}, "got 2.0"),
    ("deltaquantile", {"quantile": 1.5}, r"quantile must be a finite number in \[0.0, 1.0\], got 1.5"),
    ("deltaquantile", {"quantile": -0.1}, "got -0.1"),
    ("maxminlcb", {"argmax_tol": -1e-4}, "argmax_tol must be a finite number >= 0.0, got -0.0001"),
    ("rucb", {"argmax_tol": float("nan")}, "got nan"),
    ("rucb", {"beta": -2}, "got -2"),
    ("ids", {"rho2": 0.0}, r"rho2 must be a finite number > 0.0, got 0.0"),
    ("ids", {"beta": -0.5}, "got -0.5"),
    ("delta_model", {"chosen_model": -1}, "chosen_model must be an integer >= 0, got -1"),
    ("delta_model", {"rejected_model": 7.0}, "rejected_model must be an integer >= 0, got 7.0"),
    ("delta_model", {"chosen_model": 3, "rejected_model": 3}, "must differ, got 3 for both"),
    ("delta_model", {"chosen_model": "gemma-7b-it"}, "must both be given or both be None, got 'gemma-7b-it' and None"),
]


@pytest.mark.parametrize(("name", "kwargs", "message"), BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_are_named(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        agents.make(name, **kwargs)


def test_hyperparameter_defaults_and_coercion():
    assert agents.make("dts").max_tries == 30
    assert agents.make("drts").beta == 1.0
    assert agents.make("deltaquantile").quantile == 0.05
    assert agents.make("maxminlcb").argmax_tol == 1e-4
    agent = agents.make("deltaucb", beta=2)
    assert agent.beta == 2.0 and isinstance(agent.beta, float)
    model = agents.make("delta_model")
    assert (model.chosen_model, model.rejected_model) == (None, None)  # picked from the pool's model names


EXPECTED_ENV_KWARGS = {
    "ultrafeedback": {"expose_judge_scores": True, "judge_calls_per_pair": 4},
    "maxmin": {"expose_judge_scores": True, "judge_calls_per_pair": "all"},
    "delta_model": {"labeler": "first"},
}


@pytest.mark.parametrize("name", AGENT_NAMES + BASELINE_NAMES)
def test_env_kwargs(name):
    kwargs = agents.make(name).env_kwargs()
    assert kwargs == EXPECTED_ENV_KWARGS.get(name, {})
    assert set(kwargs) <= {"expose_judge_scores", "labeler", "judge_calls_per_pair"}


@pytest.mark.parametrize("name", ["ultrafeedback", "maxmin"])
def test_privileged_baselines_need_judge_scores(name):
    obs = make_obs()
    del obs["judge_scores"]
    with pytest.raises(
        ValueError,
        match=r"obs\['judge_scores'\], which is missing: build the env with "
        r"expose_judge_scores=True",
    ):
        agents.make(name).select(obs)


@pytest.mark.parametrize("name", AGENT_NAMES)
@pytest.mark.parametrize("key", ["mean", "lower", "upper", "valid", "prompt_valid"])
def test_missing_key_is_named(name, key):
    obs = make_obs()
    del obs[key]
    with pytest.raises(ValueError, match=f"no key '{key}'"):
        agents.make(name).select(obs)


def test_delta_model_needs_model_ids_and_random_needs_no_enn_keys():
    obs = make_obs()
    del obs["model_ids"]
    with pytest.raises(ValueError, match="no key 'model_ids'"):
        agents.make("delta_model").select(obs)
    minimal = {"valid": np.ones((2, 3), np.int8), "prompt_valid": np.ones(2, np.int8)}
    assert agents.make("random").select(minimal).shape == (2, 2)


BAD_OBSERVATIONS = [
    ("mean", lambda o: o["mean"][:, :3], r"obs\['mean'\] must have shape \[B, K\] = \(4, 5\).*got shape \(4, 3\)"),
    ("upper", lambda o: o["upper"][None], r"got shape \(1, 4, 5\)"),
    ("valid", lambda o: o["valid"][0], r"obs\['valid'\] must have shape \[B, K\], got shape \(5,\)"),
    ("prompt_valid", lambda o: o["prompt_valid"][:2], r"obs\['prompt_valid'\] must have shape \[B\] = \(4,\)"),
    (
        "mean",
        lambda o: np.where(np.eye(4, 5) == 1, np.nan, o["mean"]),
        r"obs\['mean'\] has a non-finite value nan at prompt 0, response 0",
    ),
    ("lower", lambda o: np.where(np.eye(4, 5)[::-1] == 1, -np.inf, o["lower"]), "non-finite value -inf at prompt 0"),
    ("upper", lambda o: o["lower"] - 1, r"obs\['upper'\] < obs\['lower'\] at prompt 0, response 0"),
]


@pytest.mark.parametrize(("key", "corrupt", "message"), BAD_OBSERVATIONS)
@pytest.mark.parametrize("name", ["drts", "deltaucb", "ids"])
def test_malformed_observations_raise(name, key, corrupt, message):
    obs = make_obs()
    obs[key] = corrupt(obs)
    with pytest.raises(ValueError, match=message):
        agents.make(name).select(obs)


@pytest.mark.parametrize("name", AGENT_NAMES + BASELINE_NAMES)
def test_active_prompt_with_one_valid_response_raises(name):
    obs = make_obs()
    obs["valid"][2] = 0
    obs["valid"][2, 3] = 1
    with pytest.raises(ValueError, match=r"prompt 2 of the batch is active \(prompt_valid=1\) but has 1 valid"):
        agents.make(name).select(obs)


def test_observation_must_be_a_mapping():
    with pytest.raises(ValueError, match="must be a mapping of arrays, got list"):
        agents.make("dts").select([1, 2])


def test_nan_in_padded_entries_and_inactive_rows_is_ignored():
    obs = make_obs()
    obs["valid"][0, 4] = 0
    obs["prompt_valid"][3] = 0
    for key in ("mean", "lower", "upper", "judge_scores"):
        obs[key][0, 4] = np.nan
        obs[key][3] = np.nan
    for name in AGENT_NAMES + BASELINE_NAMES:
        pairs = make_test_agent(name).select(obs)
        assert pairs[3].tolist() == [0, 0]
        assert 4 not in pairs[0]


@pytest.mark.parametrize("name", AGENT_NAMES + BASELINE_NAMES)
def test_no_global_random_state_is_used(name):
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002 - checking the legacy global
    agent = make_test_agent(name)
    agent.reset(seed=3)
    agent.select(make_obs(16, 7))
    after = np.random.get_state()  # noqa: NPY002
    assert random.getstate() == py_state
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


@pytest.mark.parametrize("name", AGENT_NAMES + BASELINE_NAMES)
def test_agents_pickle_with_their_generator_state(name):
    agent = make_test_agent(name)
    agent.reset(seed=4)
    clone = pickle.loads(pickle.dumps(agent))
    obs = make_obs(8, 6)
    np.testing.assert_array_equal(agent.select(obs), clone.select(obs))


def test_unseeded_reset_draws_fresh_entropy():
    obs = make_obs(64, 30)
    agent = agents.make("random")
    draws = set()
    for _ in range(3):
        agent.reset()
        draws.add(agent.select(obs).tobytes())
    assert len(draws) == 3


def test_make_takes_a_module_path_and_names_what_failed() -> None:
    assert type(agents.make("baselines.maxmin:MaxMin")).__name__ == "MaxMin"
    assert agents.is_known("baselines.maxmin:MaxMin") and not agents.is_known("maxmin:") and not agents.is_known("x")
    with pytest.raises(ValueError, match=r"cannot load agent 'no_such_module:Agent'.*ModuleNotFoundError"):
        agents.make("no_such_module:Agent")
    with pytest.raises(ValueError, match=r"your own agent: 'my_module:MyAgent'.*register\(\) in __main__"):
        agents.make("not_an_agent")


def test_agents_published_under_the_entry_point_group_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    published = [EntryPoint("plugin_maxmin", "baselines.maxmin:MaxMin", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: published)
    monkeypatch.setattr(registry, "_ENTRY_POINTS_LOADED", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert "plugin_maxmin" in agents.registered_names()
    assert type(agents.make("plugin_maxmin")).__name__ == "MaxMin"
