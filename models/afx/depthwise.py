"""The front-end's locally connected convolution (one long kernel per channel) with a faster weight gradient.

``F.conv1d(x, weight, groups=channels)`` with 128-tap kernels over frames of 4,096 samples is the largest cost of
training the frame models, nearly all of it in the backward pass's weight gradient: oneDNN's depthwise kernel took
about 0.45 s of a 0.92 s CRAFx step on one core (batch 8, 9 context frames each: 72 frames of 32 x 4,096).
:func:`depthwise_conv1d` keeps oneDNN for the forward pass and the input gradient (both plain depthwise
convolutions) and computes the weight gradient as two batched matrix products (:func:`depthwise_weight_grad`): the
same sums in another order, equal within float rounding. The convolution's forward and backward went from 0.55 s
to 0.28 s, a CRAFx step from 0.92 s to 0.70 s, a CSAFx step to 0.75 s (docs/afx.md, "The context-frame models on
an idle core").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BLOCK_SAMPLES = 128  # output samples per block of the weight gradient's matrix product (fastest of 32..256 here)


def depthwise_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, groups=C)`` for x (B, C, L) and weight (C, 1, K) ('valid': (B, C, L - K + 1)),
    with the weight gradient by :func:`depthwise_weight_grad` when autograd needs it."""
    if not torch.is_grad_enabled() or not weight.requires_grad:
        return F.conv1d(x, weight, bias, groups=weight.shape[0])
    return _DepthwiseConv1d.apply(x, weight, bias)


def depthwise_weight_grad(x: torch.Tensor, grad: torch.Tensor, taps: int) -> torch.Tensor:
    """The weight gradient (C, 1, taps) of a 'valid' depthwise convolution of x (B, C, L) with output gradient
    grad (B, C, L - taps + 1): ``sum over b, t of grad[b, c, t] * x[b, c, t + k]``, as two batched matrix products.

    Both signals are cut into rows of ``block`` samples, per channel, each example padded to ``blocks + 1`` rows
    (the output gradient's last row zero): a row of the output gradient reads its own row of the input and the
    first ``taps - 1`` samples of the next, so the products of every gradient row with the same input row and with
    the next one hold, summed over rows, every ``grad[t] * x[t + j]`` with ``t`` and ``j`` within a block's reach.
    """
    batch, channels, out_samples = grad.shape
    block = max(BLOCK_SAMPLES, taps - 1)
    blocks = -(-out_samples // block)
    rows = batch * (blocks + 1)
    padded_grad = F.pad(grad, (0, (blocks + 1) * block - out_samples)).transpose(0, 1).reshape(channels, rows, block)
    padded_x = F.pad(x, (0, (blocks + 1) * block - x.shape[-1])).transpose(0, 1).reshape(channels, rows, block)
    grads = padded_grad.transpose(1, 2)  # (C, block, rows)
    same_row = torch.bmm(grads, padded_x)  # [c, p, j] = sum over rows of grad[p] * x[j]
    next_row = torch.bmm(grads[..., :-1], padded_x[:, 1:, : taps - 1])  # [c, p, j] = ... grad[p] * x[block + j]
    reach = block + taps - 1
    products = torch.cat((same_row, next_row), dim=-1)  # (C, block, reach)
    diagonals = products.as_strided((channels, block, taps), (block * reach, reach + 1, 1))  # [c, p, k] at j = p + k
    return diagonals.sum(1)[:, None]


class _DepthwiseConv1d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv1d(x, weight, bias, groups=weight.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = F.conv_transpose1d(grad, weight, groups=weight.shape[0]) if ctx.needs_input_grad[0] else None
        grad_weight = depthwise_weight_grad(x, grad, weight.shape[-1]) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum((0, 2)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias
