"""The samples a block-by-block renderer keeps in front of each new block.

A causal network with a receptive field of ``R`` samples needs the ``R - 1`` samples before a block to render it
exactly as one pass over the whole signal would. :class:`SampleHistory` holds them between blocks: silence before
the first block, then the last samples of everything seen.
"""

from __future__ import annotations

import torch


class SampleHistory:
    """The last ``samples`` samples of a signal that arrives block by block (silence before the first block)."""

    def __init__(self, samples: int):
        if samples < 0:
            raise ValueError(f"a sample history cannot hold {samples} samples")
        self.samples = samples
        self._last: torch.Tensor | None = None

    def join(self, block: torch.Tensor) -> torch.Tensor:
        """The history, then ``block`` (..., L): (..., samples + L). The leading dimensions are fixed by the first
        block; the last ``samples`` samples of the result become the history for the next block."""
        if self._last is None:
            self._last = block.new_zeros(*block.shape[:-1], self.samples)
        joined = torch.cat((self._last, block), dim=-1)
        self._last = joined[..., joined.shape[-1] - self.samples :].clone()
        return joined
