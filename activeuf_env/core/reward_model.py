"""The environment's uncertainty-aware reward model: an ensemble of MLP heads on frozen features (AUF's ENN).

Heads are stored as stacked tensors ``[H, ...]`` and run together: the first layer of all heads is one GEMM
``x @ W1[D, H*h]``, the others batched matmuls. There is no Python loop over heads. The loss head and the opt-in
bf16 matmul path are in :mod:`activeuf_env.core.ensemble_kernels`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from activeuf_env._validation import check_choice, check_int, check_number
from activeuf_env.core.ensemble_kernels import bf16_forward, bf16_loss_and_gradients, loss_head

__all__ = ["MATMUL_DTYPES", "EnsembleRewardModel", "ReplayBuffer", "RewardModelConfig", "anchor_weight_at"]

_PREDICT_CHUNK = 16384
MATMUL_DTYPES = ("float32", "bfloat16")
"""The choices of :attr:`RewardModelConfig.matmul_dtype`."""


@dataclass(frozen=True)
class RewardModelConfig:
    """Hyperparameters of the ensemble reward model and its per-round training (docs/design.md §5).

    Args:
        n_heads: ensemble size ``H``.
        hidden_dim: width ``h`` of both hidden layers.
        init_gain: gain of the xavier-uniform initialisation (honoured, unlike AUF's code).
        beta: bound multiplier ``β_b``: ``lower/upper = mean ∓ β_b · std``.
        lr: AdamW peak learning rate (cosine schedule restarted each round). AUF uses 5e-5 on 4B-backbone
            features; the synthetic features need a larger step to learn within an episode.
        weight_decay: AdamW weight decay.
        train_batch: pairs per optimizer step.
        max_steps: most optimizer steps per round.
        grad_clip: per-head gradient-norm clip (each head is clipped on its own, as if trained alone).
        anchor_weight: ``λ0`` of the pull toward each head's initial weights.
        anchor_decay: ``b``: ``λ_t = λ0 · b^(S · n_done / N)``.
        anchor_decay_steps: ``S``; ``None`` uses the number of rounds in the episode (λ decays by ``b`` per round).
            AUF hard-coded 4308.
        center_weight: weight of the centring term ``mean (f(c) + f(r))²``.
        replay_factor: replay capacity in batches of prompts (capacity = batch size × replay_factor).
        matmul_dtype: ``"float32"`` (default, bit-identical to the earlier implementations) or ``"bfloat16"``: the
            hidden layers' matmuls, forward and backward, on bf16 operands (fp32 master weights, fp32 AdamW, anchor,
            clip, last layer, loss and every reduction; :mod:`~activeuf_env.core.ensemble_kernels`). Faster where
            the hardware has bf16 matmuls (AVX512-BF16, AMX, tensor cores), changes the floats: measured effect in
            docs/ensemble_speed.md. Left out of the env fingerprint at its default, so earlier states still load.

    Example:
        >>> RewardModelConfig(n_heads=1)
        Traceback (most recent call last):
        ...
        ValueError: n_heads must be at least 2 (the std over heads needs two), got 1
    """

    n_heads: int = 20
    hidden_dim: int = 128
    init_gain: float = 1.0
    beta: float = 1.0
    lr: float = 1e-3
    weight_decay: float = 0.01
    train_batch: int = 64
    max_steps: int = 100
    grad_clip: float = 1.0
    anchor_weight: float = 1.0
    anchor_decay: float = 0.9
    anchor_decay_steps: float | None = None
    center_weight: float = 0.01
    replay_factor: int = 100
    matmul_dtype: str = field(default="float32", metadata={"fingerprint": "omit_at_default"})

    def __post_init__(self) -> None:
        if isinstance(self.n_heads, int) and not isinstance(self.n_heads, bool) and self.n_heads == 1:
            raise ValueError("n_heads must be at least 2 (the std over heads needs two), got 1")
        check_int("n_heads", self.n_heads, low=2)
        for name in ("hidden_dim", "train_batch", "max_steps", "replay_factor"):
            check_int(name, getattr(self, name), low=1)
        for name in ("init_gain", "lr", "grad_clip"):
            check_number(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("beta", "weight_decay", "anchor_weight", "center_weight"):
            check_number(name, getattr(self, name), low=0.0)
        check_number("anchor_decay", self.anchor_decay, low=0.0, high=1.0, low_open=True)
        check_number("anchor_decay_steps", self.anchor_decay_steps, low=0.0, low_open=True, optional=True)
        check_choice("matmul_dtype", self.matmul_dtype, MATMUL_DTYPES)


def anchor_weight_at(lambda0: float, decay: float, decay_steps: float, n_done: int, n_total: int) -> float:
    """The anchor weight ``λ_t = λ0 · decay^(decay_steps · n_done / n_total)``.

    Example:
        >>> round(anchor_weight_at(1.0, 0.5, 4, n_done=50, n_total=100), 6)
        0.25
    """
    return float(lambda0 * decay ** (decay_steps * n_done / max(n_total, 1)))


class ReplayBuffer:
    """A ring buffer of (chosen, rejected) feature pairs; the oldest pairs are overwritten when full.

    Args:
        capacity: most pairs held.
        feature_dim: ``D``.

    Example:
        >>> buffer = ReplayBuffer(capacity=3, feature_dim=2)
        >>> buffer.add(np.arange(8.0).reshape(4, 2), -np.arange(8.0).reshape(4, 2))
        >>> len(buffer), buffer.chosen[:3, 0].tolist()
        (3, [6.0, 2.0, 4.0])
    """

    def __init__(self, capacity: int, feature_dim: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self.chosen = np.zeros((self.capacity, feature_dim), dtype=np.float32)
        self.rejected = np.zeros((self.capacity, feature_dim), dtype=np.float32)
        self._size = 0
        self._next = 0

    def __len__(self) -> int:
        return self._size

    def add(self, chosen: np.ndarray, rejected: np.ndarray) -> None:
        """Append pairs ``[n, D]``; if ``n`` exceeds the capacity only the last ``capacity`` pairs are kept."""
        if chosen.shape != rejected.shape or chosen.ndim != 2 or chosen.shape[1] != self.chosen.shape[1]:
            raise ValueError(
                f"expected chosen and rejected of shape [n, {self.chosen.shape[1]}], got {chosen.shape} and "
                f"{rejected.shape}"
            )
        n = chosen.shape[0]
        keep = min(n, self.capacity)
        slots = (self._next + np.arange(n - keep, n)) % self.capacity
        self.chosen[slots] = chosen[n - keep :]
        self.rejected[slots] = rejected[n - keep :]
        self._next = int((self._next + n) % self.capacity)
        self._size = min(self._size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``min(n, len)`` pairs without replacement."""
        idx = rng.choice(self._size, size=min(n, self._size), replace=False)
        return self.chosen[idx], self.rejected[idx]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the buffer."""
        return {
            "chosen": self.chosen[: self._size].copy(),
            "rejected": self.rejected[: self._size].copy(),
            "size": self._size,
            "next": self._next,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        size = int(state["size"])
        self.chosen[:size] = state["chosen"][:size]
        self.rejected[:size] = state["rejected"][:size]
        self._size, self._next = size, int(state["next"])


_SEGMENTS = ("w1", "b1", "w2", "b2", "w3")
"""The parameter tensors, in their order in the flat buffer (the order of the per-tensor optimizer's state)."""


class FlatAdamW:
    """AdamW over one flat parameter buffer: torch's fused AdamW kernel, called once per step on the whole buffer.

    Element for element this is ``torch.optim.AdamW(fused=True)`` over the five parameter tensors (the same kernel;
    the buffer's segments keep the tensors' vector alignment when ``H·h`` is a multiple of 16, the default), without
    the per-tensor Python and dispatch work, which at D = 64 cost about as much as the update. State dicts keep
    ``torch.optim.AdamW``'s per-parameter layout, so states saved before the flat buffer still load.
    """

    def __init__(self, flat: torch.Tensor, shapes: dict[str, tuple[int, ...]], lr: float, weight_decay: float) -> None:
        self.shapes = shapes
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat)
        self.step_count = torch.zeros((), dtype=torch.float32, device=flat.device)
        self.group: dict[str, Any] = {
            "lr": lr, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": weight_decay, "amsgrad": False,
            "maximize": False, "foreach": None, "capturable": False, "differentiable": False, "fused": True,
            "decoupled_weight_decay": True,
        }  # fmt: skip

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        return float(self.group["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self.group["lr"] = value

    def step(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """One AdamW update of the flat ``param`` with the flat ``grad``."""
        self.step_count += 1
        beta1, beta2 = self.group["betas"]
        torch._fused_adamw_(
            [param], [grad], [self.exp_avg], [self.exp_avg_sq], [], [self.step_count], lr=self.lr, beta1=beta1,
            beta2=beta2, weight_decay=self.group["weight_decay"], eps=self.group["eps"], amsgrad=False,
            maximize=False,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.AdamW``'s state dict of the five parameters (copies, on the CPU)."""
        state: dict[int, dict[str, torch.Tensor]] = {}
        if float(self.step_count) > 0:  # torch creates the per-parameter state on the first step
            moments = zip(_split(self.exp_avg, self.shapes), _split(self.exp_avg_sq, self.shapes), strict=True)
            for index, (avg, avg_sq) in enumerate(moments):
                state[index] = {"step": self.step_count.cpu().clone(), "exp_avg": avg.cpu().clone(),
                                "exp_avg_sq": avg_sq.cpu().clone()}  # fmt: skip
        return {"state": state, "param_groups": [{**self.group, "params": list(range(len(self.shapes)))}]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s (or ``torch.optim.AdamW``'s, for the same five parameters) state."""
        self.group["lr"] = float(state["param_groups"][0]["lr"])
        saved = state["state"]
        self.step_count.fill_(float(saved[0]["step"]) if saved else 0.0)
        if not saved:  # saved before the first step
            self.exp_avg.zero_()
            self.exp_avg_sq.zero_()
            return
        moments = zip(_split(self.exp_avg, self.shapes), _split(self.exp_avg_sq, self.shapes), strict=True)
        for index, (avg, avg_sq) in enumerate(moments):
            avg.copy_(saved[index]["exp_avg"])
            avg_sq.copy_(saved[index]["exp_avg_sq"])


def _split(flat: torch.Tensor, shapes: dict[str, tuple[int, ...]]) -> list[torch.Tensor]:
    """Views of ``flat`` with the given shapes, one after another."""
    sizes = [math.prod(shape) for shape in shapes.values()]
    return [part.view(shape) for part, shape in zip(flat.split(sizes), shapes.values(), strict=True)]


class EnsembleRewardModel:
    """An ensemble of ``H`` MLP reward heads ``Linear(D,h)–ReLU–Linear(h,h)–ReLU–Linear(h,1, no bias)``.

    Outputs per response: ``mean`` over heads, unbiased ``std`` over heads, ``lower/upper = mean ∓ β_b · std``.
    Training minimises, per minibatch of pairs (c, r), the mean over pairs and heads of
    ``−log sigmoid(f_h(c) − f_h(r))``, plus ``λ_t · mean_h mean((θ_h − θ_h⁰)²)`` (pull toward each head's initial
    weights), plus ``center_weight · mean (f_h(c) + f_h(r))²``, with AdamW and a per-head gradient-norm clip.

    The parameters, their gradients and the optimizer's moments are each one flat buffer (``params`` holds views
    into it), so the anchor, clip and AdamW passes are one operation each over all heads, and the backward pass is
    written out (the ops autograd would run, in its order and layouts, so the results are bit for bit autograd's)
    with every weight gradient written straight into the flat gradient buffer: no zeroing, no accumulation pass.

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
        self._shapes = {key: tuple(initial[key].shape) for key in _SEGMENTS}
        self._flat = torch.cat([initial[key].reshape(-1) for key in _SEGMENTS]).to(self.device)
        self._anchor_flat = self._flat.clone()
        self._grad_flat = torch.zeros_like(self._flat)
        self._scratch = torch.empty_like(self._flat)  # the anchor difference, then the squared gradients
        self._n_params = self._flat.numel()
        self.optimizer = FlatAdamW(self._flat, self._shapes, lr=cfg.lr, weight_decay=cfg.weight_decay)
        # bf16 path: a bf16 copy of the weights (refreshed before each use) and bf16 outputs of the w1/w2 gradients.
        self._low_dtype = torch.bfloat16 if cfg.matmul_dtype == "bfloat16" else None
        self._low_flat = None if self._low_dtype is None else torch.empty_like(self._flat, dtype=self._low_dtype)
        self._low_grad_flat = None if self._low_flat is None else torch.empty_like(self._low_flat)
        self._make_views()

    def _make_views(self) -> None:
        """``params``, ``anchors`` and ``grads``: per-tensor views into the flat buffers."""
        self.params = dict(zip(_SEGMENTS, _split(self._flat, self._shapes), strict=True))
        self.anchors = dict(zip(_SEGMENTS, _split(self._anchor_flat, self._shapes), strict=True))
        self.grads = dict(zip(_SEGMENTS, _split(self._grad_flat, self._shapes), strict=True))
        self._low: dict[str, torch.Tensor] = {}
        self._low_grads: dict[str, torch.Tensor] = {}
        if self._low_flat is not None and self._low_grad_flat is not None:
            self._low = dict(zip(_SEGMENTS, _split(self._low_flat, self._shapes), strict=True))
            self._low_grads = dict(zip(_SEGMENTS, _split(self._low_grad_flat, self._shapes), strict=True))

    def __getstate__(self) -> dict[str, Any]:
        # Pickle stores each view's storage on its own, so the views would come back detached from the flat buffers:
        # pickle the buffers alone and rebuild the views.
        return {k: v for k, v in self.__dict__.items() if k not in ("params", "anchors", "grads", "_low", "_low_grads")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._make_views()

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rewards ``[H, n]`` of features ``x [n, D]`` under every head, and both hidden layers ``[H, n, h]``."""
        p = self.params
        n, (d, heads, h) = x.shape[0], p["w1"].shape
        hidden1 = (x @ p["w1"].view(d, heads * h)).view(n, heads, h)
        # In place: the same kernel on the same layout as an out-of-place ReLU, one allocation and pass fewer.
        hidden1 = torch.relu_(hidden1.transpose(0, 1) + p["b1"].unsqueeze(1))
        hidden2 = torch.relu_(torch.baddbmm(p["b2"].unsqueeze(1), hidden1, p["w2"]))
        return torch.bmm(hidden2, p["w3"].unsqueeze(-1)).squeeze(-1), hidden1, hidden2

    def _to_tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, dtype=np.float32), device=self.device)

    def _to_inputs(self, array: np.ndarray) -> torch.Tensor:
        """Features as the matmuls take them: fp32, or bf16 in the bf16 path."""
        tensor = self._to_tensor(array)
        return tensor if self._low_dtype is None else tensor.to(self._low_dtype)

    def _refresh_low(self) -> None:
        """Bring the bf16 weight copy up to date with the fp32 weights (one cast pass; bf16 path only)."""
        if self._low_flat is not None:
            self._low_flat.copy_(self._flat)

    def _rewards(self, x: torch.Tensor) -> torch.Tensor:
        """Rewards ``[H, n]`` of inputs from :meth:`_to_inputs` (the bf16 copy must be fresh)."""
        if self._low_dtype is None:
            return self._forward(x)[0]
        return bf16_forward(x, self._low, self.params["w3"])[0]

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict ``(mean, lower, upper)``, each a float32 array of shape ``features.shape[:-1]``."""
        features = np.asarray(features)
        if features.shape[-1:] != (self.feature_dim,):
            raise ValueError(f"expected features of shape [..., {self.feature_dim}], got {features.shape}")
        flat = features.reshape(-1, self.feature_dim)
        means, stds = [], []
        with torch.inference_mode():
            self._refresh_low()
            for start in range(0, max(flat.shape[0], 1), _PREDICT_CHUNK):
                rewards = self._rewards(self._to_inputs(flat[start : start + _PREDICT_CHUNK]))
                std, mean = torch.std_mean(rewards, dim=0)
                means.append(mean.cpu().numpy())
                stds.append(std.cpu().numpy())
        mean, std = np.concatenate(means), np.concatenate(stds)
        shape = features.shape[:-1]
        width = self.config.beta * std
        return mean.reshape(shape), (mean - width).reshape(shape), (mean + width).reshape(shape)

    def data_loss_and_gradients(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """The preference and centring terms of the loss on pairs ``x = [chosen; rejected]`` (``[2n, D]``); their
        gradients are written into :attr:`grads`.

        The backward pass runs the ops autograd runs for the forward below, in its order, on tensors of the same
        layouts, so it gives autograd's gradients bit for bit; each weight gradient's matmul writes straight into
        the flat gradient buffer (autograd would allocate it, then add it to a zeroed ``.grad``: two more passes
        over the parameters, which at D = 2560 cost more than the matmuls' own output).

        With ``matmul_dtype="bfloat16"``, ``x`` is bf16 (:meth:`_to_inputs`) and the bf16 kernels of
        :mod:`~activeuf_env.core.ensemble_kernels` run instead, on a freshly cast copy of the weights.
        """
        g, w2, w3 = self.grads, self.params["w2"], self.params["w3"].unsqueeze(-1)
        with torch.no_grad():
            if self._low_dtype is not None:
                self._refresh_low()
                return bf16_loss_and_gradients(
                    x, n, self.config.center_weight, self._low, self.params["w3"], g, self._low_grads
                )
            rewards, hidden1, hidden2 = self._forward(x)
            heads, rows, hidden = hidden1.shape
            loss, g_rewards = loss_head(rewards, n, self.config.center_weight)
            torch.bmm(hidden2.transpose(1, 2), g_rewards, out=g["w3"].unsqueeze(-1))
            # A product with one term: broadcasting gives bmm's bits without its per-head matmul calls.
            g_hidden = torch.ops.aten.threshold_backward(g_rewards * w3.transpose(1, 2), hidden2, 0)
            torch.sum(g_hidden, dim=1, keepdim=True, out=g["b2"].unsqueeze(1))
            torch.bmm(hidden1.transpose(1, 2), g_hidden, out=g["w2"])
            g_hidden = torch.ops.aten.threshold_backward(g_hidden.bmm(w2.transpose(1, 2)), hidden1, 0)
            torch.sum(g_hidden, dim=1, keepdim=True, out=g["b1"].unsqueeze(1))
            g_first = g_hidden.transpose(0, 1).reshape(rows, heads * hidden)
            torch.mm(x.t(), g_first, out=g["w1"].view(-1, heads * hidden))
        return loss

    def _add_anchor_gradient(self) -> torch.Tensor:
        """Add the gradient of ``λ_t · mean((θ − θ⁰)²)`` to the gradients; return ``Σ (θ − θ⁰)²`` (a tensor).

        Done in place on the flat buffers: through autograd the term costs three times the memory traffic, which
        at D = 2560 (6.5M parameters) is more than the matmuls. The sum of squares is summed tensor by tensor, in the
        parameters' order, as the per-tensor implementation did (so the reported loss is unchanged to the bit).
        """
        diff = torch.sub(self._flat, self._anchor_flat, out=self._scratch)
        total = torch.zeros((), device=self.device)
        for part in _split(diff, self._shapes):
            total += torch.dot(part.view(-1), part.view(-1))
        self._grad_flat.add_(diff, alpha=2.0 * self.anchor_weight / self._n_params)
        return total

    def _clip_per_head(self) -> None:
        """Scale each head's gradient (every tensor's slice of that head) to norm at most ``grad_clip``."""
        g, clip, on_cpu = self.grads, self.config.grad_clip, self.device.type == "cpu"
        # No head's norm exceeds the norm of all heads together: when that is clearly below the clip (the margin is
        # far beyond float32 rounding), every scale below would be exactly 1.0, and one pass of one dot replaces the
        # per-head reductions. Usual on the synthetic pools (no step of an ActiveUF/Synthetic-v0 episode clips).
        if on_cpu and math.sqrt(float(torch.dot(self._grad_flat, self._grad_flat))) < 0.9 * clip - 1e-6:
            return
        squared_flat = torch.pow(self._grad_flat, 2, out=self._scratch)
        squares = dict(zip(_SEGMENTS, _split(squared_flat, self._shapes), strict=True))
        squared = (
            squares["w1"].sum(dim=(0, 2))
            + squares["b1"].sum(dim=1)
            + squares["w2"].sum(dim=(1, 2))
            + squares["b2"].sum(dim=1)
            + squares["w3"].sum(dim=1)
        )
        scale = (clip / (squared.sqrt() + 1e-6)).clamp(max=1.0)
        if on_cpu and bool((scale == 1.0).all()):
            return  # a multiplication by 1.0 changes nothing; on a GPU, checking would cost a synchronisation
        g["w1"].mul_(scale.view(1, -1, 1))
        g["w2"].mul_(scale.view(-1, 1, 1))
        for key in ("b1", "b2", "w3"):
            g[key].mul_(scale.view(-1, 1))

    def _step(self, x: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One AdamW step on pairs ``x = [chosen; rejected]``; returns the data loss and ``Σ (θ − θ⁰)²`` before it."""
        loss = self.data_loss_and_gradients(x, n)
        anchor = self._add_anchor_gradient()
        self._clip_per_head()
        self.optimizer.step(self._flat, self._grad_flat)
        return loss, anchor

    def _anchor_term(self, squares: np.ndarray | float) -> Any:
        """``λ_t · mean((θ − θ⁰)²)`` from ``Σ (θ − θ⁰)²`` (float64, as the loss is reported)."""
        return squares * self.anchor_weight / self._n_params

    def train_step(self, chosen: np.ndarray, rejected: np.ndarray, lr: float | None = None) -> float:
        """One AdamW step on one minibatch of pairs (``chosen``, ``rejected`` of shape ``[n, D]``); returns the loss.

        ``lr`` sets the learning rate of this and later steps (``None``: keep the last one).
        """
        if chosen.shape != rejected.shape or chosen.ndim != 2 or chosen.shape[1] != self.feature_dim:
            raise ValueError(
                f"expected chosen and rejected of shape [n, {self.feature_dim}], got {chosen.shape} and "
                f"{rejected.shape}"
            )
        if lr is not None:
            self.optimizer.lr = lr
        x = torch.cat([self._to_inputs(chosen), self._to_inputs(rejected)])
        loss, anchor = self._step(x, chosen.shape[0])
        return float(loss) + self._anchor_term(float(anchor))

    def fit_round(self, buffer: ReplayBuffer, rng: np.random.Generator) -> float:
        """One round of training: ``min(len, train_batch × max_steps)`` pairs from ``buffer`` without replacement,
        one epoch, cosine learning rate restarted at the round's start. Returns the mean loss (0.0 if empty).

        The round's pairs go to the device once, and the losses come back once, at the end (the same floats as one
        :meth:`train_step` per minibatch).
        """
        cfg = self.config
        if len(buffer) == 0:
            return 0.0
        chosen, rejected = (self._to_inputs(a) for a in buffer.sample(cfg.train_batch * cfg.max_steps, rng))
        n_steps = math.ceil(chosen.shape[0] / cfg.train_batch)
        losses, anchors = [], []
        for step in range(n_steps):
            rows = slice(step * cfg.train_batch, (step + 1) * cfg.train_batch)
            self.optimizer.lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / n_steps))
            loss, anchor = self._step(torch.cat([chosen[rows], rejected[rows]]), chosen[rows].shape[0])
            losses.append(loss)
            anchors.append(anchor)
        data = torch.stack(losses).cpu().numpy().astype(np.float64)
        return float(np.mean(data + self._anchor_term(torch.stack(anchors).cpu().numpy().astype(np.float64))))

    def state_dict(self) -> dict[str, Any]:
        """Weights, anchors, optimizer state (``torch.optim.AdamW``'s layout) and the anchor weight (on the CPU)."""
        return {
            "params": {k: v.cpu().clone() for k, v in self.params.items()},
            "anchors": {k: v.cpu().clone() for k, v in self.anchors.items()},
            "optimizer": self.optimizer.state_dict(),
            "anchor_weight": self.anchor_weight,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (also one saved before the flat buffers: the layout is the same)."""
        for key in _SEGMENTS:
            self.params[key].copy_(state["params"][key])
            self.anchors[key].copy_(state["anchors"][key])
        self.optimizer.load_state_dict(state["optimizer"])
        self.anchor_weight = float(state["anchor_weight"])
