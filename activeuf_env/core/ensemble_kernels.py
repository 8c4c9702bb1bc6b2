"""The ensemble's loss head and its bf16 forward and backward (``RewardModelConfig(matmul_dtype="bfloat16")``).

Split out of :mod:`activeuf_env.core.reward_model` to keep that module under the layout's line limit.

In the bf16 path every matmul of the two hidden layers (forward, weight gradients and input gradients) takes bf16
operands: the features (cast once per round), a bf16 copy of the weights (one cast pass per step, from the fp32
master weights) and the bf16 hidden activations. The last layer (a matrix–vector product per head), the rewards,
the loss, every bias-gradient sum and the weight gradients the optimizer sees stay fp32, and so do AdamW, the anchor
term and the clip, which run on the fp32 buffers exactly as in the fp32 path.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["bf16_forward", "bf16_loss_and_gradients", "loss_head"]


def loss_head(rewards: torch.Tensor, n: int, center_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The preference and centring loss of rewards ``[H, 2n]`` (chosen then rejected) and its gradient ``[H, 2n, 1]``.

    The backward of the two means (``grad.expand / numel``), softplus, ``pow(2)`` and the centring weight are the
    ops autograd runs, in its order, so the fp32 path keeps autograd's bits.
    """
    heads = rewards.shape[0]
    r_chosen, r_rejected = rewards[:, :n], rewards[:, n:]
    margin, total = r_rejected - r_chosen, r_chosen + r_rejected
    loss = F.softplus(margin).mean() + center_weight * (total**2).mean()
    one = torch.ones((), device=rewards.device)
    g_margin = torch.ops.aten.softplus_backward(one.expand(heads, n) / (heads * n), margin, 1.0, 20.0)
    g_total = (one * center_weight).expand(heads, n) / (heads * n) * (2.0 * total)
    return loss, torch.cat([g_total - g_margin, g_total + g_margin], dim=1).unsqueeze(-1)


def bf16_forward(
    x: torch.Tensor, low: dict[str, torch.Tensor], w3: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rewards ``[H, n]`` (fp32) of bf16 features ``x [n, D]``, the bf16 first hidden layer and the fp32 second.

    Args:
        x: bf16 features.
        low: bf16 copies of ``w1 [D, H, h]``, ``b1 [H, h]``, ``w2 [H, h, h]``, ``b2 [H, h]``.
        w3: the fp32 last layer ``[H, h]``.
    """
    n, (d, heads, h) = x.shape[0], low["w1"].shape
    first = (x @ low["w1"].view(d, heads * h)).view(n, heads, h).transpose(0, 1)
    # The bias add writes head-major [H, n, h] (one pass either way), so the later ops run on contiguous tensors.
    hidden1 = torch.relu_(
        torch.add(first, low["b1"].unsqueeze(1), out=torch.empty_like(first, memory_format=torch.contiguous_format))
    )
    hidden2 = torch.relu_(torch.baddbmm(low["b2"].unsqueeze(1), hidden1, low["w2"])).float()
    # The last layer (a matrix-vector product per head) as multiply-and-sum: a batched bmm with n = 1 is slower.
    return (hidden2 * w3.unsqueeze(1)).sum(-1), hidden1, hidden2


def bf16_loss_and_gradients(
    x: torch.Tensor,
    n: int,
    center_weight: float,
    low: dict[str, torch.Tensor],
    w3: torch.Tensor,
    grads: dict[str, torch.Tensor],
    low_grads: dict[str, torch.Tensor],
) -> torch.Tensor:
    """The data loss of bf16 pairs ``x = [chosen; rejected]``; its fp32 gradients are written into ``grads``.

    ``low_grads`` holds bf16 buffers for the ``w1`` and ``w2`` gradients (the matmuls' outputs), copied into the
    fp32 ``grads``; the bias gradients are summed in fp32 straight into ``grads``.
    """
    rewards, hidden1, hidden2 = bf16_forward(x, low, w3)
    heads, rows, hidden = hidden1.shape
    loss, g_rewards = loss_head(rewards, n, center_weight)
    torch.sum(hidden2 * g_rewards, dim=1, out=grads["w3"])
    g_hidden = torch.ops.aten.threshold_backward(g_rewards * w3.unsqueeze(1), hidden2, 0)
    torch.sum(g_hidden, dim=1, keepdim=True, out=grads["b2"].unsqueeze(1))
    g_hidden = g_hidden.to(torch.bfloat16)
    torch.bmm(hidden1.transpose(1, 2), g_hidden, out=low_grads["w2"])
    g_hidden = torch.ops.aten.threshold_backward(g_hidden.bmm(low["w2"].transpose(1, 2)), hidden1, 0)
    torch.sum(g_hidden, dim=1, keepdim=True, dtype=torch.float32, out=grads["b1"].unsqueeze(1))
    g_first = g_hidden.transpose(0, 1).reshape(rows, heads * hidden)
    torch.mm(x.t(), g_first, out=low_grads["w1"].view(-1, heads * hidden))
    grads["w1"].copy_(low_grads["w1"])
    grads["w2"].copy_(low_grads["w2"])
    return loss
