"""A frozen copy of the ensemble reward model as it was before the flat-buffer rewrite (commit f5fba52), the
"before" of ``bench_reward_model.py`` and ``bench_env.py --compare``.

Kept verbatim (only renamed) so that every speed-up is measured side by side with the code it replaces, in the same
process on the same machine; the package's :class:`~activeuf_env.core.reward_model.EnsembleRewardModel` must give
the same floats (``tests/test_reward_model.py`` checks it against this copy). Not part of the package: nothing in
``activeuf_env`` imports it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from activeuf_env.core.reward_model import ReplayBuffer, RewardModelConfig

__all__ = ["LegacyEnsembleRewardModel"]

_PREDICT_CHUNK = 16384


class LegacyEnsembleRewardModel:
    """An ensemble of ``H`` MLP reward heads ``Linear(D,h)–ReLU–Linear(h,h)–ReLU–Linear(h,1, no bias)``.

    Outputs per response: ``mean`` over heads, unbiased ``std`` over heads, ``lower/upper = mean ∓ β_b · std``.
    Training minimises, per minibatch of pairs (c, r), the mean over pairs and heads of
    ``−log sigmoid(f_h(c) − f_h(r))``, plus ``λ_t · mean_h mean((θ_h − θ_h⁰)²)`` (pull toward each head's initial
    weights), plus ``center_weight · mean (f_h(c) + f_h(r))²``, with AdamW and a per-head gradient-norm clip.

    Args:
        feature_dim: ``D``.
        n_heads: ``H`` (default 20).
        hidden_dim: ``h`` (default 128).
        config: the remaining hyperparameters; ``n_heads``/``hidden_dim`` given here override the config's.
        seed: seeds the torch generator used for initialisation (``None``: a fresh nondeterministic seed).
        device: torch device (``"cpu"`` default; ``"cuda"`` when present).

    Example:
        >>> model = EnsembleRewardModel(feature_dim=4, n_heads=3, hidden_dim=8, seed=0)
        >>> mean, lower, upper = model.predict(np.ones((2, 5, 4), np.float32))
        >>> mean.shape, bool(np.all(lower <= upper))
        ((2, 5), True)
        >>> loss = model.train_step(np.ones((6, 4), np.float32), np.zeros((6, 4), np.float32))
        >>> isinstance(loss, float)
        True
    """

    def __init__(
        self,
        feature_dim: int,
        n_heads: int | None = None,
        hidden_dim: int | None = None,
        config: RewardModelConfig | None = None,
        seed: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        base = config or RewardModelConfig()
        overrides = {k: v for k, v in (("n_heads", n_heads), ("hidden_dim", hidden_dim)) if v is not None}
        self.config = dataclasses.replace(base, **overrides)
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be at least 1, got {feature_dim}")
        self.feature_dim = int(feature_dim)
        self.device = torch.device(device)
        self.anchor_weight = self.config.anchor_weight
        self.reset(seed)

    @property
    def n_heads(self) -> int:
        """Ensemble size ``H``."""
        return self.config.n_heads

    def reset(self, seed: int | torch.Generator | None = None) -> None:
        """Re-initialise weights, anchors and optimizer from ``seed`` (an int or a seeded CPU ``torch.Generator``)."""
        if isinstance(seed, torch.Generator):
            generator = seed
        else:
            generator = torch.Generator()
            generator.manual_seed(int(seed) if seed is not None else int(torch.seed()))
        cfg, d, heads, h = self.config, self.feature_dim, self.config.n_heads, self.config.hidden_dim

        def xavier(shape: tuple[int, ...], fan_in: int, fan_out: int) -> torch.Tensor:
            bound = cfg.init_gain * math.sqrt(6.0 / (fan_in + fan_out))
            return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound

        initial = {
            "w1": xavier((d, heads, h), d, h),
            "b1": torch.zeros(heads, h),
            "w2": xavier((heads, h, h), h, h),
            "b2": torch.zeros(heads, h),
            "w3": xavier((heads, h), h, 1),
        }
        self.params = {k: v.to(self.device).requires_grad_(True) for k, v in initial.items()}
        self.anchors = {k: v.detach().clone() for k, v in self.params.items()}
        self._anchor_diff = {k: torch.empty_like(v) for k, v in self.anchors.items()}
        self._n_params = sum(v.numel() for v in self.params.values())
        self.optimizer = torch.optim.AdamW(
            list(self.params.values()), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rewards ``[H, n]`` of features ``x [n, D]`` under every head."""
        p = self.params
        n, (d, heads, h) = x.shape[0], p["w1"].shape
        hidden = (x @ p["w1"].view(d, heads * h)).view(n, heads, h)
        hidden = torch.relu(hidden.transpose(0, 1) + p["b1"].unsqueeze(1))
        hidden = torch.relu(torch.baddbmm(p["b2"].unsqueeze(1), hidden, p["w2"]))
        return torch.bmm(hidden, p["w3"].unsqueeze(-1)).squeeze(-1)

    def _to_tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, dtype=np.float32), device=self.device)

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict ``(mean, lower, upper)``, each a float32 array of shape ``features.shape[:-1]``."""
        features = np.asarray(features)
        if features.shape[-1:] != (self.feature_dim,):
            raise ValueError(f"expected features of shape [..., {self.feature_dim}], got {features.shape}")
        flat = features.reshape(-1, self.feature_dim)
        means, stds = [], []
        with torch.inference_mode():
            for start in range(0, max(flat.shape[0], 1), _PREDICT_CHUNK):
                rewards = self._forward(self._to_tensor(flat[start : start + _PREDICT_CHUNK]))
                std, mean = torch.std_mean(rewards, dim=0)
                means.append(mean.cpu().numpy())
                stds.append(std.cpu().numpy())
        mean, std = np.concatenate(means), np.concatenate(stds)
        shape = features.shape[:-1]
        width = self.config.beta * std
        return mean.reshape(shape), (mean - width).reshape(shape), (mean + width).reshape(shape)

    def data_loss(self, chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
        """The preference and centring terms of the loss on one minibatch of pairs ``[n, D]``."""
        n = chosen.shape[0]
        rewards = self._forward(torch.cat([chosen, rejected]))
        r_chosen, r_rejected = rewards[:, :n], rewards[:, n:]
        preference = F.softplus(r_rejected - r_chosen).mean()
        return preference + self.config.center_weight * ((r_chosen + r_rejected) ** 2).mean()

    def _add_anchor_gradient(self) -> float:
        """Add the gradient of ``λ_t · mean((θ − θ⁰)²)`` to the parameters' gradients; return the term's value.

        Done in place without autograd: through autograd the term costs three times the memory traffic, which at
        D = 2560 (6.5M parameters) is more than the matmuls.
        """
        total = torch.zeros((), device=self.device)
        scale = 2.0 * self.anchor_weight / self._n_params
        with torch.no_grad():
            for key, param in self.params.items():
                diff = torch.sub(param, self.anchors[key], out=self._anchor_diff[key]).view(-1)
                total += torch.dot(diff, diff)
                param.grad.view(-1).add_(diff, alpha=scale)
        return float(total) * self.anchor_weight / self._n_params

    def train_step(self, chosen: np.ndarray, rejected: np.ndarray, lr: float | None = None) -> float:
        """One AdamW step on one minibatch of pairs (``chosen``, ``rejected`` of shape ``[n, D]``); returns the loss."""
        if chosen.shape != rejected.shape or chosen.ndim != 2 or chosen.shape[1] != self.feature_dim:
            raise ValueError(
                f"expected chosen and rejected of shape [n, {self.feature_dim}], got {chosen.shape} and "
                f"{rejected.shape}"
            )
        if lr is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=False)
        loss = self.data_loss(self._to_tensor(chosen), self._to_tensor(rejected))
        loss.backward()
        anchor = self._add_anchor_gradient()
        self._clip_per_head()
        self.optimizer.step()
        return float(loss.detach()) + anchor

    def _clip_per_head(self) -> None:
        grads = {k: p.grad for k, p in self.params.items()}
        squared = (
            grads["w1"].pow(2).sum(dim=(0, 2))
            + grads["b1"].pow(2).sum(dim=1)
            + grads["w2"].pow(2).sum(dim=(1, 2))
            + grads["b2"].pow(2).sum(dim=1)
            + grads["w3"].pow(2).sum(dim=1)
        )
        scale = (self.config.grad_clip / (squared.sqrt() + 1e-6)).clamp(max=1.0)
        if bool((scale == 1.0).all()):
            return
        grads["w1"].mul_(scale.view(1, -1, 1))
        grads["w2"].mul_(scale.view(-1, 1, 1))
        for key in ("b1", "b2", "w3"):
            grads[key].mul_(scale.view(-1, 1))

    def fit_round(self, buffer: ReplayBuffer, rng: np.random.Generator) -> float:
        """One round of training: ``min(len, train_batch × max_steps)`` pairs from ``buffer`` without replacement,
        one epoch, cosine learning rate restarted at the round's start. Returns the mean loss (0.0 if empty)."""
        cfg = self.config
        if len(buffer) == 0:
            return 0.0
        chosen, rejected = buffer.sample(cfg.train_batch * cfg.max_steps, rng)
        n_steps = math.ceil(chosen.shape[0] / cfg.train_batch)
        losses = []
        for step in range(n_steps):
            rows = slice(step * cfg.train_batch, (step + 1) * cfg.train_batch)
            lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / n_steps))
            losses.append(self.train_step(chosen[rows], rejected[rows], lr=lr))
        return float(np.mean(losses))

    def state_dict(self) -> dict[str, Any]:
        """Weights, anchors, optimizer state and the current anchor weight (tensors on CPU)."""
        return {
            "params": {k: v.detach().cpu().clone() for k, v in self.params.items()},
            "anchors": {k: v.cpu().clone() for k, v in self.anchors.items()},
            "optimizer": self.optimizer.state_dict(),
            "anchor_weight": self.anchor_weight,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        with torch.no_grad():
            for k, p in self.params.items():
                p.copy_(state["params"][k])
                self.anchors[k] = state["anchors"][k].to(self.device).clone()
        self.optimizer.load_state_dict(state["optimizer"])
        self.anchor_weight = float(state["anchor_weight"])
