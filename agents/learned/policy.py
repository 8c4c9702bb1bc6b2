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
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["FEATURES", "PolicyConfig", "SelectorPolicy", "response_features", "sample_pairs"]

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
    """Each valid entry's rank among its row's valid entries, scaled to ``[0, 1]`` (ties share the lower rank)."""
    below = ((x[:, None, :] < x[:, :, None]) & mask[:, None, :]).sum(dim=2).to(x.dtype)
    n = mask.sum(dim=1, keepdim=True).to(x.dtype)
    return below / (n - 1).clamp(min=1)


def response_features(obs: Mapping[str, Any], round_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``[B, K, len(FEATURES)]`` features of an observation and its ``[B, K]`` bool mask of valid responses.

    Args:
        obs: an ActiveUF observation (``mean``, ``lower``, ``upper``, ``valid``, ``prompt_valid``,
            ``budget_remaining``).
        round_index: rounds played in the episode before this observation (0 at the reset).
    """
    valid = (
        torch.as_tensor(np.asarray(obs["valid"]) != 0) & torch.as_tensor(np.asarray(obs["prompt_valid"]) != 0)[:, None]
    )
    mask = valid.to(torch.float32)
    lower = torch.as_tensor(np.asarray(obs["lower"], dtype=np.float32)) * mask
    upper = torch.as_tensor(np.asarray(obs["upper"], dtype=np.float32)) * mask
    mean = torch.as_tensor(np.asarray(obs["mean"], dtype=np.float32)) * mask
    spread = 0.5 * (upper - lower)
    mu_p, sd_p = _masked_stats(mean, mask, 1)
    s_p, s_sd = _masked_stats(spread, mask, 1)
    scale = sd_p + _EPS
    active = valid.any(dim=1)
    batch_mask = mask * active[:, None]
    mu_b, sd_b = _masked_stats(mean.reshape(1, -1), batch_mask.reshape(1, -1), 1)
    prompt_sd = sd_p[:, 0]
    typical_sd = prompt_sd[active].median() if bool(active.any()) else torch.tensor(1.0)
    b, k = mean.shape
    budget = float(np.asarray(obs["budget_remaining"]).reshape(-1)[0])
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
        torch.full((b, k), budget),
        torch.full((b, k), round_index / _ROUND_SCALE),
        (mask.sum(dim=1, keepdim=True) / 40.0).expand(b, k),
    ]
    features = torch.stack(columns, dim=-1) * mask[:, :, None]
    return features.clamp(-10.0, 10.0), valid


class SelectorPolicy(nn.Module):
    """The policy network (see the module docstring); ``forward(features, valid)`` gives ``[B, K * K + 1]`` logits."""

    def __init__(self, config: PolicyConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.config = config or PolicyConfig()
        h, r = self.config.hidden, self.config.pair_rank
        self.encode = nn.Sequential(nn.Linear(len(FEATURES), h), nn.Tanh(), nn.Linear(h, h), nn.Tanh())
        self.mix = nn.Sequential(nn.Linear(3 * h, h), nn.Tanh())
        self.first = nn.Linear(h, 1 + r)  # a_i and u_i
        self.second = nn.Linear(h, 1 + r)  # b_j and v_j
        self.skip = nn.Sequential(nn.Linear(2 * h, h), nn.Tanh(), nn.Linear(h, 1))
        # nn.Linear's own initialisation draws from torch's global generator; redraw it from a seeded one.
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    bound = layer.in_features**-0.5
                    layer.weight.uniform_(-bound, bound, generator=generator)
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
        mixed = self.mix(torch.cat([hidden, context[..., None, :].expand(*lead, b, k, -1)], dim=-1))
        first, second = self.first(mixed), self.second(mixed)
        rank = self.config.pair_rank
        interaction = torch.einsum("...ir,...jr->...ij", first[..., 1:], second[..., 1:]) / rank**0.5
        pair = first[..., :1] + second[..., None, :, 0] + interaction
        allowed = valid[..., :, None] & valid[..., None, :] & ~torch.eye(k, dtype=torch.bool)
        pair = pair.masked_fill(~allowed, float("-inf")).reshape(*lead, b, k * k)
        return torch.cat([pair, self.skip(context)], dim=-1)


def sample_pairs(logits: torch.Tensor, generator: torch.Generator | None, greedy: bool) -> torch.Tensor:
    """One choice per row of ``[..., K * K + 1]`` logits: sampled (seeded ``generator``) or the argmax.

    Sampling is the Gumbel-max trick (the argmax of logits plus Gumbel noise is a draw from their softmax), one
    vectorised pass instead of ``torch.multinomial``'s per-row CDF search.
    """
    if greedy:
        return logits.argmax(dim=-1)
    uniform = torch.rand(logits.shape, generator=generator).clamp_(min=1e-20)
    return (logits - torch.log(-torch.log(uniform))).argmax(dim=-1)
