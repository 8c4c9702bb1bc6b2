"""Exactness of the uncertainty-aware agents against independent reference computations.

The references are written here from the rules of docs/design.md §6.2, per prompt and per pair, with Python loops
and ``math``: brute force over all ordered pairs ``i != j`` for the argmax rules, and exact sampling distributions
(numerical integration of the Thompson draws) for the randomized rules, checked with a fixed seed and a statistical
tolerance. None of them call the vectorized helpers of ``agents``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import agents

# --------------------------------------------------------------------------------------------------------------
# Observation builders and per-prompt readers (the reference side).
# --------------------------------------------------------------------------------------------------------------


def make_obs(
    mean: np.ndarray, std: np.ndarray, valid: np.ndarray | None = None, prompt_valid: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """An observation with float32 ENN keys, ``lower/upper = mean -/+ std``, padded entries zeroed."""
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    valid = np.ones(mean.shape, np.int8) if valid is None else np.asarray(valid, np.int8)
    prompt_valid = np.ones(mean.shape[0], np.int8) if prompt_valid is None else np.asarray(prompt_valid, np.int8)
    valid = valid * prompt_valid[:, None]
    lower, upper = mean - std, mean + std
    return {
        "mean": np.where(valid == 1, mean, 0).astype(np.float32),
        "lower": np.where(valid == 1, lower, 0).astype(np.float32),
        "upper": np.where(valid == 1, upper, 0).astype(np.float32),
        "valid": valid,
        "model_ids": np.tile(np.arange(mean.shape[1]), (mean.shape[0], 1)),
        "prompt_valid": prompt_valid,
        "budget_remaining": np.ones(1, np.float32),
    }


View = dict[int, tuple[float, float, float, float]]


def prompt_view(obs: dict[str, np.ndarray], row: int, beta: float = 1.0) -> View:
    """``{k: (mu, s, U, L)}`` over the valid responses of one prompt, as Python floats."""
    view = {}
    for k in range(obs["valid"].shape[1]):
        if obs["valid"][row, k]:
            mu = float(obs["mean"][row, k])
            s = (float(obs["upper"][row, k]) - float(obs["lower"][row, k])) / 2
            view[k] = (mu, s, mu + beta * s, mu - beta * s)
    return view


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def random_obs(rng: np.random.Generator, n_prompts: int, n_slots: int, pad: bool = True) -> dict[str, np.ndarray]:
    """Continuous random inputs (ties have probability 0), with random padding keeping >= 2 valid per prompt."""
    mean = rng.normal(size=(n_prompts, n_slots))
    std = rng.uniform(0.0, 1.0, size=(n_prompts, n_slots))
    valid = np.ones((n_prompts, n_slots), np.int8)
    if pad:
        for row in range(n_prompts):
            n_valid = rng.integers(2, n_slots + 1)
            valid[row] = 0
            valid[row, rng.choice(n_slots, n_valid, replace=False)] = 1
    return make_obs(mean, std, valid)


# --------------------------------------------------------------------------------------------------------------
# Brute-force references for the argmax rules.
# --------------------------------------------------------------------------------------------------------------


def ref_pair_values(obs, row, value, beta=1.0, unordered=False):
    """``{(i, j): value(view, i, j)}`` over ordered (or unordered) valid pairs of one prompt."""
    view = prompt_view(obs, row, beta)
    pairs = itertools.combinations(view, 2) if unordered else itertools.permutations(view, 2)
    return {(i, j): value(view, i, j) for i, j in pairs}


def deltaucb_value(view, i, j):
    return view[i][2] - view[j][3]  # U_i - L_j = (mu_i + beta s_i) - (mu_j - beta s_j)


def infomax_value(view, i, j):
    return sigmoid(view[i][2] - view[j][3]) - sigmoid(view[i][3] - view[j][2])


def ids_value(view, i, j, rho2=1.0):
    best_upper = max(u for (_, _, u, _) in view.values())
    gap = best_upper - (view[i][0] + view[j][0]) / 2
    info = math.log1p((view[i][1] ** 2 + view[j][1] ** 2) / rho2)
    if info == 0:
        return 0.0 if gap == 0 else math.inf
    return gap**2 / info


CASES = [(3, 2), (16, 5), (32, 30), (8, 64)]


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
@pytest.mark.parametrize(("n_prompts", "n_slots"), CASES)
def test_deltaucb_is_the_brute_force_argmax(n_prompts, n_slots, beta):
    obs = random_obs(np.random.default_rng(n_slots), n_prompts, n_slots)
    pairs = agents.make("deltaucb", beta=beta).select(obs)
    for row in range(n_prompts):
        values = ref_pair_values(obs, row, deltaucb_value, beta)
        best = max(values, key=values.get)
        assert tuple(pairs[row]) == best, (row, values[tuple(pairs[row])], values[best])


def test_deltaucb_runner_up_when_best_upper_and_lowest_lower_coincide():
    # Response 1 has both the highest U and the lowest L; the best pair uses it on one side only.
    obs = make_obs([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]], [[0.1, 2.0, 0.5], [0.5, 2.0, 0.1]])
    pairs = agents.make("deltaucb").select(obs)
    for row in range(2):
        values = ref_pair_values(obs, row, deltaucb_value)
        assert values[tuple(pairs[row])] == max(values.values())
    assert pairs.tolist() == [[2, 1], [1, 0]]


def test_deltaucb_with_ties_reaches_the_maximum_value():
    obs = make_obs(np.zeros((4, 5)), np.zeros((4, 5)))
    obs["mean"][1] = [1, 1, 0, 0, 1]
    obs["lower"][1] = obs["upper"][1] = obs["mean"][1]
    pairs = agents.make("deltaucb").select(obs)
    for row in range(4):
        values = ref_pair_values(obs, row, deltaucb_value)
        assert values[tuple(pairs[row])] == max(values.values())
        assert pairs[row, 0] != pairs[row, 1]


def ref_deltaquantile_value(obs, row, quantile, beta):
    values = sorted(ref_pair_values(obs, row, deltaucb_value, beta).values(), reverse=True)
    n_valid = int(obs["valid"][row].sum())
    n_pairs = n_valid * (n_valid - 1)
    rank = min(math.floor(quantile * n_pairs), n_pairs - 1)
    return values[rank]


@pytest.mark.parametrize("quantile", [0.0, 0.05, 0.1, 0.37, 0.5, 0.999, 1.0])
@pytest.mark.parametrize(("n_prompts", "n_slots"), CASES)
def test_deltaquantile_picks_the_pair_at_the_rank(n_prompts, n_slots, quantile):
    obs = random_obs(np.random.default_rng(7 + n_slots), n_prompts, n_slots)
    beta = 1.5
    pairs = agents.make("deltaquantile", quantile=quantile, beta=beta).select(obs)
    for row in range(n_prompts):
        values = ref_pair_values(obs, row, deltaucb_value, beta)
        target = ref_deltaquantile_value(obs, row, quantile, beta)
        # Continuous inputs: the value identifies the pair; compare values to absorb the last-bit rounding.
        assert values[tuple(pairs[row])] == pytest.approx(target, rel=1e-12, abs=1e-12)


def test_deltaquantile_zero_is_deltaucb_and_ties_are_ranked_by_value():
    rng = np.random.default_rng(3)
    obs = random_obs(rng, 32, 12)
    assert np.array_equal(agents.make("deltaquantile", quantile=0.0).select(obs), agents.make("deltaucb").select(obs))
    # Integer means, zero spread: many tied gaps.
    obs = make_obs(rng.integers(0, 3, size=(16, 6)).astype(float), np.zeros((16, 6)))
    pairs = agents.make("deltaquantile", quantile=0.3).select(obs)
    for row in range(16):
        values = ref_pair_values(obs, row, deltaucb_value)
        assert values[tuple(pairs[row])] == ref_deltaquantile_value(obs, row, 0.3, 1.0)


def test_deltaquantile_counts_only_valid_pairs():
    # 3 valid of 6 slots: 6 ordered pairs; q = 0.5 -> rank 3 (AUF would use 30 pairs -> rank 15).
    mean = np.array([[0.0, 10.0, 1.0, 20.0, 3.0, 30.0]])
    obs = make_obs(mean, np.zeros_like(mean), valid=np.array([[1, 0, 1, 0, 1, 0]]))
    pair = agents.make("deltaquantile", quantile=0.5).select(obs)[0]
    # gaps: (4,0)=3, (4,2)=2, (2,0)=1, (0,2)=-1, (2,4)=-2, (0,4)=-3 -> rank 3 is (0, 2).
    assert pair.tolist() == [0, 2]


@pytest.mark.parametrize("beta", [0.0, 1.0, 3.0])
@pytest.mark.parametrize(("n_prompts", "n_slots"), CASES)
def test_infomax_is_the_brute_force_argmax(n_prompts, n_slots, beta):
    obs = random_obs(np.random.default_rng(11 + n_slots), n_prompts, n_slots)
    pairs = agents.make("infomax", beta=beta).select(obs)
    for row in range(n_prompts):
        values = ref_pair_values(obs, row, infomax_value, beta)  # ordered pairs: the width is symmetric
        chosen = tuple(pairs[row])
        assert chosen[0] != chosen[1]
        assert values[chosen] == pytest.approx(max(values.values()), rel=1e-9, abs=1e-15)
        if beta > 0:  # beta = 0 makes every width 0: all pairs tie
            best = max(values, key=values.get)
            assert set(chosen) == set(best)


@pytest.mark.parametrize("rho2", [0.1, 1.0, 10.0])
@pytest.mark.parametrize(("n_prompts", "n_slots"), CASES)
def test_ids_is_the_brute_force_argmin(n_prompts, n_slots, rho2):
    obs = random_obs(np.random.default_rng(13 + n_slots), n_prompts, n_slots)
    pairs = agents.make("ids", rho2=rho2).select(obs)
    for row in range(n_prompts):
        values = ref_pair_values(obs, row, lambda v, i, j: ids_value(v, i, j, rho2), unordered=True)
        chosen = tuple(sorted(pairs[row]))
        assert values[chosen] == pytest.approx(min(values.values()), rel=1e-9)
        assert chosen == min(values, key=values.get)


def test_ids_without_spread_falls_back_to_the_smallest_gap():
    # s = 0 everywhere: every ratio is +inf except pairs with zero gap; with none, argmin of the gap.
    obs = make_obs([[0.0, 3.0, 1.0, 2.0], [5.0, 5.0, 1.0, 0.0]], np.zeros((2, 4)))
    pairs = agents.make("ids").select(obs)
    assert sorted(pairs[0].tolist()) == [1, 3]  # the two largest means: smallest regret
    assert sorted(pairs[1].tolist()) == [0, 1]  # zero gap: ratio 0


def test_ids_trades_gap_for_information():
    # Two equally good pairs by mean, one with spread: IDS prefers the informative one.
    obs = make_obs([[1.0, 1.0, 1.0, 1.0]], [[0.0, 0.0, 0.5, 0.5]])
    assert sorted(agents.make("ids").select(obs)[0].tolist()) == [2, 3]


# --------------------------------------------------------------------------------------------------------------
# MaxMinLCB and RUCB: membership in the tie sets (brute force) and uniform tie-breaking.
# --------------------------------------------------------------------------------------------------------------


def ref_maxminlcb_sets(obs, row, beta=1.0, tol=1e-4):
    """The reference tie sets: all i within tol of max_i min_{j != i} LCB_ij, and per i its argmin set."""
    view = prompt_view(obs, row, beta)
    lcb = {
        (i, j): (view[i][0] - view[j][0]) - beta * (view[i][1] + view[j][1]) for i, j in itertools.permutations(view, 2)
    }
    worst = {i: min(lcb[i, j] for j in view if j != i) for i in view}
    best = max(worst.values())
    firsts = {i for i in view if worst[i] >= best - tol}
    seconds = {i: {j for j in view if j != i and lcb[i, j] <= worst[i] + tol} for i in view}
    return firsts, seconds


@pytest.mark.parametrize("tol", [0.0, 1e-4, 0.3])
@pytest.mark.parametrize(("n_prompts", "n_slots"), CASES)
def test_maxminlcb_matches_the_brute_force_tie_sets(n_prompts, n_slots, tol):
    obs = random_obs(np.random.default_rng(17 + n_slots), n_prompts, n_slots)
    agent = agents.make("maxminlcb", beta=1.3, argmax_tol=tol)
    agent.reset(seed=0)
    pairs = agent.select(obs)
    for row in range(n_prompts):
        firsts, seconds = ref_maxminlcb_sets(obs, row, 1.3, tol + 1e-12)
        i, j = pairs[row]
        assert i in firsts
        assert j in seconds[i]


def test_maxminlcb_breaks_ties_uniformly():
    # Constant inputs: every i ties, and every j != i ties.
    n = 20_000
    obs = make_obs(np.zeros((n, 4)), np.full((n, 4), 0.5))
    agent = agents.make("maxminlcb")
    agent.reset(seed=1)
    pairs = agent.select(obs)
    counts = np.zeros((4, 4))
    np.add.at(counts, (pairs[:, 0], pairs[:, 1]), 1)
    assert np.all(np.diag(counts) == 0)
    expected = n / 12
    off = counts[~np.eye(4, dtype=bool)]
    assert np.all(np.abs(off - expected) < 5 * math.sqrt(expected))


def ref_rucb_sets(obs, row, beta=1.0, tol=1e-4):
    view = prompt_view(obs, row, beta)
    best_lower = max(v[3] for v in view.values())
    candidates = {k for k, v in view.items() if v[2] >= best_lower}
    firsts = {}
    for j in candidates:
        top = max(view[k][2] for k in view if k != j)
        firsts[j] = {k for k in view if k != j and view[k][2] >= top - tol}
    return candidates, firsts


@pytest.mark.parametrize(("n_prompts", "n_slots"), CASES)
def test_rucb_matches_the_brute_force_sets(n_prompts, n_slots):
    obs = random_obs(np.random.default_rng(19 + n_slots), n_prompts, n_slots)
    agent = agents.make("rucb", beta=0.7)
    agent.reset(seed=0)
    pairs = agent.select(obs)
    for row in range(n_prompts):
        candidates, firsts = ref_rucb_sets(obs, row, 0.7, 1e-4 + 1e-12)
        i, j = pairs[row]
        assert j in candidates
        assert i in firsts[j]


def test_rucb_draws_the_second_response_uniformly_from_the_candidates():
    # U = (1.1, 2.1, 2.3, 0.2), L = (0.9, 1.9, 1.7, -0.2): C = {1, 2} (U >= 1.9); i = best other U.
    n = 20_000
    obs = make_obs(np.tile([1.0, 2.0, 2.0, 0.0], (n, 1)), np.tile([0.1, 0.1, 0.3, 0.2], (n, 1)))
    agent = agents.make("rucb")
    agent.reset(seed=2)
    pairs = agent.select(obs)
    assert set(map(tuple, pairs.tolist())) == {(2, 1), (1, 2)}
    share = np.mean(pairs[:, 1] == 1)
    assert abs(share - 0.5) < 5 * math.sqrt(0.25 / n)


# --------------------------------------------------------------------------------------------------------------
# Thompson rules: the exact sampling distribution by numerical integration.
# --------------------------------------------------------------------------------------------------------------


def argmax_probabilities(centres: list[float], half_widths: list[float], grid: int = 200_001) -> np.ndarray:
    """``P(argmax_k X_k = k)`` for independent ``X_k ~ U(c_k - h_k, c_k + h_k)``, ``h_k > 0`` (quadrature)."""
    lo = min(c - h for c, h in zip(centres, half_widths, strict=True))
    hi = max(c + h for c, h in zip(centres, half_widths, strict=True))
    x = np.linspace(lo, hi, grid)
    mid, dx = (x[1:] + x[:-1]) / 2, x[1] - x[0]
    cdfs = [np.clip((mid - (c - h)) / (2 * h), 0.0, 1.0) for c, h in zip(centres, half_widths, strict=True)]
    probs = []
    for k, (c, h) in enumerate(zip(centres, half_widths, strict=True)):
        density = ((mid >= c - h) & (mid <= c + h)) / (2 * h)
        others = np.prod([cdfs[m] for m in range(len(centres)) if m != k], axis=0)
        probs.append(float(np.sum(density * others) * dx))
    return np.array(probs)


def thompson_joint(mean, std, beta, reverse, max_tries=30):
    """Exact ``P(i = a, j = b)`` of DTS (``reverse=False``) or DRTS, with the retry and uniform fallback."""
    n = len(mean)
    half = [beta * s for s in std]
    first = argmax_probabilities(list(mean), half)
    second = argmax_probabilities([-m for m in mean] if reverse else list(mean), half)
    joint = np.zeros((n, n))
    for a in range(n):
        stuck = second[a] ** max_tries
        for b in range(n):
            if b != a:
                retry = second[b] / (1 - second[a]) * (1 - stuck) if second[a] < 1 else 0.0
                joint[a, b] = first[a] * (retry + stuck / (n - 1))
    return joint


def empirical_joint(pairs: np.ndarray, n: int) -> np.ndarray:
    counts = np.zeros((n, n))
    np.add.at(counts, (pairs[:, 0], pairs[:, 1]), 1)
    return counts / len(pairs)


THOMPSON_CASES = [
    ([0.0, 0.9, 1.0], [0.1, 0.1, 0.1], 1.0),  # 2 usually wins: the 30-try fallback has probability ~2%
    ([0.0, 0.5, 1.0, 1.2], [0.6, 0.3, 0.4, 0.2], 1.0),
    ([0.0, 0.5, 1.0, 1.2], [0.3, 0.15, 0.2, 0.1], 2.0),
    ([0.0, 1.0, 5.0], [0.1, 0.1, 0.1], 1.0),  # disjoint supports: j always falls back to uniform
    ([0.0, 1.0, 2.0], [0.25, 0.5, 0.5], 1.0),  # supports of 1 and 2 touch at 1.5: 2 wins surely
]


@pytest.mark.parametrize("name", ["dts", "drts"])
@pytest.mark.parametrize(("mean", "std", "beta"), THOMPSON_CASES)
def test_thompson_sampling_distribution(name, mean, std, beta):
    n_draws = 40_000
    obs = make_obs(np.tile(mean, (n_draws, 1)), np.tile(std, (n_draws, 1)))
    agent = agents.make(name, beta=beta)
    agent.reset(seed=123)
    pairs = agent.select(obs)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    # The reference reads the float32-rounded inputs, as the agent does.
    view = prompt_view(obs, 0)
    expected = thompson_joint([v[0] for v in view.values()], [v[1] for v in view.values()], beta, name == "drts")
    observed = empirical_joint(pairs, len(mean))
    tolerance = 5 * np.sqrt(np.clip(expected * (1 - expected), 0, None) / n_draws) + 2e-3
    assert np.all(np.abs(observed - expected) <= tolerance), (observed, expected)


@pytest.mark.parametrize("name", ["dts", "drts"])
def test_thompson_constant_inputs_fall_back_to_uniform(name):
    # Zero spread: every draw is the lowest-index argmax, so j is uniform over the others.
    n_draws, n_slots = 20_000, 5
    agent = agents.make(name)
    agent.reset(seed=8)
    pairs = agent.select(make_obs(np.ones((n_draws, n_slots)), np.zeros((n_draws, n_slots))))
    assert np.all(pairs[:, 0] == 0)
    share = np.bincount(pairs[:, 1], minlength=n_slots) / n_draws
    assert share[0] == 0
    assert np.all(np.abs(share[1:] - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n_draws))


@pytest.mark.parametrize("max_tries", [1, 2, 7])
def test_thompson_retry_count(max_tries):
    # P(j = 0 | i = 2) = 1 - q^T + q^T / 2 with q = P(2 wins a draw): the number of tries is visible.
    n_draws = 40_000
    obs = make_obs(np.tile([0.0, 0.95, 1.0], (n_draws, 1)), np.full((n_draws, 3), 0.1))
    agent = agents.make("dts", max_tries=max_tries)
    agent.reset(seed=5)
    pairs = agent.select(obs)
    view = prompt_view(obs, 0)
    expected = thompson_joint([v[0] for v in view.values()], [v[1] for v in view.values()], 1.0, False, max_tries)
    observed = empirical_joint(pairs, 3)
    tolerance = 5 * np.sqrt(np.clip(expected * (1 - expected), 0, None) / n_draws) + 2e-3
    assert np.all(np.abs(observed - expected) <= tolerance), (observed, expected)


@pytest.mark.parametrize(("mean", "std", "beta"), THOMPSON_CASES[:3])
def test_infogain_first_is_a_thompson_draw_and_second_the_widest(mean, std, beta):
    n_draws = 40_000
    obs = make_obs(np.tile(mean, (n_draws, 1)), np.tile(std, (n_draws, 1)))
    agent = agents.make("infogain", beta=beta)
    agent.reset(seed=9)
    pairs = agent.select(obs)
    view = prompt_view(obs, 0, beta)
    first = argmax_probabilities([v[0] for v in view.values()], [beta * v[1] for v in view.values()])
    observed = np.bincount(pairs[:, 0], minlength=len(mean)) / n_draws
    assert np.all(np.abs(observed - first) <= 5 * np.sqrt(np.clip(first * (1 - first), 0, None) / n_draws) + 2e-3)
    for i in range(len(mean)):
        widths = {j: sigmoid(view[i][2] - view[j][3]) - sigmoid(view[i][3] - view[j][2]) for j in view if j != i}
        best = max(widths, key=widths.get)
        assert np.all(pairs[pairs[:, 0] == i, 1] == best)


def test_infogain_ignores_padded_responses():
    rng = np.random.default_rng(4)
    obs = random_obs(rng, 64, 9)
    agent = agents.make("infogain")
    agent.reset(seed=0)
    pairs = agent.select(obs)
    for row in range(64):
        view = prompt_view(obs, row)
        i, j = pairs[row]
        widths = {k: sigmoid(view[i][2] - view[k][3]) - sigmoid(view[i][3] - view[k][2]) for k in view if k != i}
        assert j == max(widths, key=widths.get)
