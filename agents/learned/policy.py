"""The learned selector's network: a permutation-equivariant policy over the pairs of every prompt, plus a skip.

One set of weights works for any number of prompts ``B`` and response slots ``K``:

1. **Per-response features** (:func:`response_features`, :data:`FEATURES`): the ensemble's mean and spread, their
   z-scores and ranks within the prompt, the mean's z-score within the batch, the spread relative to the prompt's
   spread of means, the budget left, the round and the prompt's number of responses. Everything is relative (ranks,
   z-scores, ratios), so the policy does not depend on the reward model's scale, and nothing names a slot or a model.
2. **Encoder**: a shared MLP per response; the masked mean over a prompt's responses and over the batch's prompts is
   appended and mixed by a second MLP (DeepSets), so each response's embedding knows its prompt and its batch.
3. **Pair head**: ``logit(i, j) = a_i + b_j + <u_i, v_j>`` for every ordered pair ``i != j`` of valid responses
   (DeltaUCB's rule ``(μ_i + β s_i) - (μ_j - β s_j)`` is the special case ``u = v = 0``), and a **skip** logit per
   prompt from its pooled embedding and the batch's; padded responses and ``i == j`` are masked out.
4. A categorical over the ``K (K - 1)`` pairs and the skip, per prompt (:meth:`SelectorPolicy.forward` returns the
   ``[B, K * K + 1]`` logits, ``-inf`` where masked; index ``K * K`` is the skip).

Permuting a prompt's responses permutes its pair logits the same way; permuting the prompts permutes the rows.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch
from torch import nn

from agents.base import ENN_KEYS, Batch, Observation

__all__ = ["FEATURES", "PolicyConfig", "SelectorPolicy", "observation_features", "response_features", "sample_pairs"]

FEATURES: tuple[str, ...] = (
    "mean_z_prompt",
    "spread_z_prompt",
    "mean_rank_prompt",
    "spread_rank_prompt",
    "mean_z_batch",
    "spread_over_prompt_sd",
    "log_prompt_sd_over_batch",
    "upper_z_prompt",
    "lower_z_prompt",
    "budget_remaining",
    "round",
    "n_valid",
)
"""The per-response input features, in order (see the module docstring)."""

_EPS = 1e-6
_ROUND_SCALE = 20.0  # rounds are reported as round / 20: tasks have about 5 to 20 rounds


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """The network's architecture (saved in every checkpoint's JSON)."""

    hidden: int = 32
    pair_rank: int = 8

    def __post_init__(self) -> None:
        for name in ("hidden", "pair_rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _masked_stats(x: torch.Tensor, mask: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of ``x`` over ``dim`` where ``mask`` (0 where nothing is masked in)."""
    count = mask.sum(dim=dim, keepdim=True).clamp(min=1)
    mean = (x * mask).sum(dim=dim, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(dim=dim, keepdim=True) / count
    return mean, var.sqrt()


def _masked_rank(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each valid entry's rank among its row's valid entries, scaled to ``[0, 1]`` (0 for the smallest).

    Two sorts of K entries per row (``O(K log K)``) instead of the ``K^2`` comparisons; invalid entries sort last.
    """
    order = torch.where(mask, x, torch.inf).argsort(dim=1).argsort(dim=1).to(x.dtype)
    n = mask.sum(dim=1, keepdim=True).to(x.dtype)
    return order / (n - 1).clamp(min=1)


def response_features(batch: Batch, budget_remaining: float, round_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``[B, K, len(FEATURES)]`` features of a checked batch and its ``[B, K]`` bool mask of valid responses.

    Args:
        batch: the agent's view of an observation (:meth:`agents.base.Batch.from_obs` with the ENN keys: padded
            entries zero-filled, inactive prompts all-invalid).
        budget_remaining: the observation's fraction of the label budget left.
        round_index: rounds played in the episode before this observation (0 at the reset).
    """
    valid = torch.as_tensor(batch.valid)
    mask = valid.to(torch.float32)
    mean = torch.as_tensor(batch.mean, dtype=torch.float32)
    lower = torch.as_tensor(batch.lower, dtype=torch.float32)
    upper = torch.as_tensor(batch.upper, dtype=torch.float32)
    spread = 0.5 * (upper - lower)
    mu_p, sd_p = _masked_stats(mean, mask, 1)
    s_p, s_sd = _masked_stats(spread, mask, 1)
    scale = sd_p + _EPS
    active = valid.any(dim=1)
    mu_b, sd_b = _masked_stats(mean.reshape(1, -1), mask.reshape(1, -1), 1)
    prompt_sd = sd_p[:, 0]
    typical_sd = prompt_sd[active].median() if bool(active.any()) else torch.tensor(1.0)
    b, k = mean.shape
    columns = [
        (mean - mu_p) / scale,
        (spread - s_p) / (s_sd + _EPS),
        _masked_rank(mean, valid),
        _masked_rank(spread, valid),
        (mean - mu_b) / (sd_b + _EPS),
        spread / scale,
        torch.log((prompt_sd + _EPS) / (typical_sd + _EPS))[:, None].expand(b, k),
        (upper - mu_p) / scale,
        (lower - mu_p) / scale,
        torch.full((b, k), float(budget_remaining)),
        torch.full((b, k), round_index / _ROUND_SCALE),
        (mask.sum(dim=1, keepdim=True) / 40.0).expand(b, k),
    ]
    features = torch.stack(columns, dim=-1) * mask[:, :, None]
    return features.clamp(-10.0, 10.0), valid


def observation_features(
    obs: Observation, round_index: int, agent: str = "learned"
) -> tuple[Batch, torch.Tensor, torch.Tensor]:
    """Check an observation (the errors every agent raises) and return its batch, features and valid mask.

    ``budget_remaining`` is 1.0 when the observation has none (a batch built outside an env).
    """
    batch = Batch.from_obs(obs, ENN_KEYS, agent)
    budget = float(np.asarray(obs.get("budget_remaining", 1.0), dtype=np.float64).reshape(-1)[0])
    features, valid = response_features(batch, budget, round_index)
    return batch, features, valid


@functools.lru_cache(maxsize=8)
def _diagonal_mask(k: int) -> torch.Tensor:
    """``[K, K]``: ``-inf`` on the diagonal (a pair needs two different responses), 0 elsewhere; cached per K."""
    return torch.zeros(k, k).fill_diagonal_(float("-inf"))


class _Tanh(nn.Module):
    """``tanh`` as ``2 sigmoid(2x) - 1`` (equal to 2e-7): the CPU wheel's ``torch.tanh`` is about 3x slower than its
    ``sigmoid`` (172 vs 53 µs on a 64 x 30 x 32 tensor), and it was a third of ``select``'s time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * torch.sigmoid(2.0 * x) - 1.0  # out of place: autograd needs the sigmoid's output


class SelectorPolicy(nn.Module):
    """The policy network (see the module docstring); ``forward(features, valid)`` gives ``[B, K * K + 1]`` logits."""

    def __init__(self, config: PolicyConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.config = config or PolicyConfig()
        h, r = self.config.hidden, self.config.pair_rank
        self.encode = nn.Sequential(nn.Linear(len(FEATURES), h), _Tanh(), nn.Linear(h, h), _Tanh())
        # The mixing layer on [response, prompt pool, batch pool], split so that the pooled part is computed once per
        # prompt rather than once per response.
        self.mix_response = nn.Linear(h, h)
        self.mix_context = nn.Linear(2 * h, h, bias=False)
        self.mix_activation = _Tanh()
        self.pair_heads = nn.Linear(h, 2 * (1 + r))  # a_i, u_i, b_j, v_j
        self.skip = nn.Sequential(nn.Linear(2 * h, h), _Tanh(), nn.Linear(h, 1))
        # nn.Linear's own initialisation draws from torch's global generator; redraw it from a seeded one.
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    bound = layer.in_features**-0.5
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    if layer.bias is not None:
                        layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The pair-and-skip logits ``[..., B, K * K + 1]`` of ``[..., B, K, F]`` features (leading dims: rounds).

        ``-inf`` marks ``i == j``, padded responses and every pair of an inactive prompt (which keeps only its skip).
        """
        *lead, b, k, _ = features.shape
        mask = valid.to(features.dtype)[..., None]
        hidden = self.encode(features)
        per_prompt = (hidden * mask).sum(dim=-2) / mask.sum(dim=-2).clamp(min=1)
        active = valid.any(dim=-1).to(features.dtype)[..., None]
        per_batch = (per_prompt * active).sum(dim=-2, keepdim=True) / active.sum(dim=-2, keepdim=True).clamp(min=1)
        context = torch.cat([per_prompt, per_batch.expand(*lead, b, -1)], dim=-1)
        mixed = self.mix_activation(self.mix_response(hidden) + self.mix_context(context)[..., None, :])
        rank = self.config.pair_rank
        heads = self.pair_heads(mixed)  # a_i, u_i (rank), b_j, v_j (rank)
        # Masks as additive -inf (padded responses, then the diagonal): cheaper than boolean masks and masked_fill.
        padded = torch.zeros_like(heads[..., 0]).masked_fill_(~valid, float("-inf"))
        first = (heads[..., 0] + padded)[..., :, None]
        second = (heads[..., rank + 1] + padded)[..., None, :]
        u, v = heads[..., 1 : rank + 1], heads[..., rank + 2 :]
        base = (first + second + _diagonal_mask(k)).reshape(-1, k, k)
        pair = torch.baddbmm(base, u.reshape(-1, k, rank), v.reshape(-1, k, rank).transpose(1, 2), alpha=rank**-0.5)
        return torch.cat([pair.reshape(*lead, b, k * k), self.skip(context)], dim=-1)


def sample_pairs(logits: torch.Tensor, generator: torch.Generator | None, greedy: bool) -> torch.Tensor:
    """One choice per row of ``[B, K * K + 1]`` logits: sampled (seeded ``generator``) or the argmax.

    Sampling inverts each row's CDF at one uniform draw: one draw per prompt instead of one per pair (the Gumbel-max
    trick's ``K^2`` draws and logs were most of ``select``'s time). Masked choices have probability 0 and are never
    drawn (the search returns the first entry whose CDF exceeds the draw).
    """
    if greedy:
        return logits.argmax(dim=-1)
    cdf = torch.softmax(logits, dim=-1).cumsum_(dim=-1)
    draw = torch.rand((logits.shape[0], 1), generator=generator) * cdf[:, -1:]
    return torch.searchsorted(cdf, draw, right=True)[:, 0].clamp_(max=logits.shape[-1] - 1)
