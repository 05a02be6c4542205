"""Smooth adaptive activation functions (SAAF), thesis Eqs. 3.8-3.11 (Hou et al. 2017).

Each channel has its own function ``f(x) = w0 * x + sum_k wk * b_k(x)`` over ``n`` equal segments
``[a_k, a_{k+1})`` of a range (``[-1, 1]`` in the thesis). The basis ``b_k`` is the double integral of the boxcar of
segment ``k``: zero left of the segment, ``(x - a_k)**2 / 2`` inside it and the straight line
``w * (x - a_{k+1}) + w**2 / 2`` (``w`` the segment width) right of it, so ``f`` is continuous with a continuous first
derivative everywhere, its second derivative inside segment ``k`` is ``wk``, and outside the range it is linear
(bounded slope: a Lipschitz function). "Locally connected": the weights differ per channel.
"""

from __future__ import annotations

import torch
from torch import nn

CHUNK_ELEMENTS = 1 << 17  # samples per chunk when rendering: a few of its float tensors fit in a core's L2 cache


class SAAF(nn.Module):
    """Per-channel piecewise-quadratic activation over the last axis's ``channels``: (..., channels) in and out.

    It starts as the identity (``w0 = 1``, every ``wk = 0``). Parameters per channel: ``segments + 1``.
    """

    starts: torch.Tensor  # a buffer: the left edge of each segment

    def __init__(self, channels: int, segments: int = 12, low: float = -1.0, high: float = 1.0):
        super().__init__()
        if segments < 1 or not high > low:
            raise ValueError(
                f"SAAF needs at least one segment over a non-empty range, got {segments} on [{low}, {high}]"
            )
        breakpoints = torch.linspace(low, high, segments + 1)
        self.register_buffer("starts", breakpoints[:-1].clone(), persistent=False)
        self.segment_width = (high - low) / segments
        self.linear = nn.Parameter(torch.ones(channels))  # w0
        self.curvature = nn.Parameter(torch.zeros(channels, segments))  # wk, the second derivative per segment

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """``b_k(x)`` for every segment: (..., channels, segments)."""
        offset = x.unsqueeze(-1) - self.starts
        inside = offset.clamp(0.0, self.segment_width)
        return 0.5 * inside.square() + self.segment_width * (offset - self.segment_width).clamp(min=0.0)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 3.8 term by term (a basis tensor ``segments`` times the input's size): what :meth:`forward` equals."""
        return self.linear * x + (self.basis(x) * self.curvature).sum(-1)

    def tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per channel and "segment index + 1" (0: left of the range, segments + 1: right of it), each
        (channels, segments + 2): the slope ``w0 + sum of the whole segments left``, the offset, the curvature
        of the segment and its left edge, so that ``f(x) = slope x + offset + curvature / 2 (x - edge)**2``."""
        width = self.segment_width
        ends = self.starts + width
        zero = self.curvature.new_zeros(self.curvature.shape[0], 1)
        slope = torch.cat((zero, zero, self.curvature.cumsum(-1)), -1) * width + self.linear[:, None]
        offset = torch.cat((zero, zero, (self.curvature * (0.5 * width**2 - width * ends)).cumsum(-1)), -1)
        curvature = torch.cat((zero, self.curvature, zero), -1)
        start = torch.cat((self.starts[:1], self.starts, self.starts[:1])).expand_as(curvature)
        return slope, offset, curvature, start

    def flat_index(self, x: torch.Tensor) -> torch.Tensor:
        """Each sample's position in the flattened (channels, segments + 2) tables (int64, ``x``'s shape)."""
        columns = self.curvature.shape[-1] + 2
        row_starts = torch.arange(x.shape[-1], device=x.device, dtype=x.dtype) * columns + 1
        segment = ((x.detach() - self.starts[0]) / self.segment_width).floor_().clamp_(-1, columns - 2)
        return (segment + row_starts).long()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 3.8 through the segment each sample falls in: the segments left of it are straight lines (their
        slopes and offsets summed in advance), the one it is in is a parabola, those right of it are zero.

        The tables are read with one flat index per sample (``torch.take``). Without autograd (rendering) the
        same arithmetic runs over chunks of :data:`CHUNK_ELEMENTS` samples that stay in the CPU's cache, several
        times faster on the (frames, samples, channels) tensors of the thesis's back-ends; the result is equal."""
        slope, offset, curvature, start = self.tables()
        if not torch.is_grad_enabled():
            return self._chunked(x, slope, offset, curvature, start)
        flat = self.flat_index(x)
        inside = x - torch.take(start, flat)
        shaped = torch.take(slope, flat) * x + torch.take(offset, flat)
        return shaped + 0.5 * torch.take(curvature, flat) * inside.square()

    def _chunked(
        self, x: torch.Tensor, slope: torch.Tensor, offset: torch.Tensor, curvature: torch.Tensor, start: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`forward`'s arithmetic, in place, chunk by chunk (no autograd)."""
        channels = x.shape[-1]
        rows = x.reshape(-1, channels)
        out = torch.empty_like(rows)
        step = max(1, CHUNK_ELEMENTS // max(channels, 1))
        start, half = start.contiguous(), 0.5 * curvature
        for first in range(0, rows.shape[0], step):
            chunk, result = rows[first : first + step], out[first : first + step]
            flat = self.flat_index(chunk)
            inside = torch.take(start, flat).neg_().add_(chunk).square_()
            torch.mul(torch.take(slope, flat), chunk, out=result)
            result.add_(torch.take(offset, flat)).add_(inside.mul_(torch.take(half, flat)))
        return out.reshape(x.shape)
