"""Learned sparse FIR filters (SFIR, thesis Sec. 8.1) and the FFT convolution that applies them.

From a per-channel latent (B, C, L) two dense layers over the L samples give, for each of ``taps`` intervals of
``interval`` samples, a coefficient in (-1, 1) (tanh) and a position in [0, interval) (sigmoid x interval, rounded
down): one nonzero tap per interval, as in velvet-noise reverberators but with continuous values. Rounding has no
gradient, so the backward pass takes it as the identity (Athalye et al. 2018, as the thesis does): the filter is built
as ``c * ((1 - f) * delta[p] + f * delta[p + 1])`` where ``f`` is zero in value and has a unit gradient, so a change
of position is felt as moving weight to the next sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SparseFIR(nn.Module):
    """(B, C, latent_samples) -> (B, C, taps * interval) sparse filters, one tap per interval."""

    def __init__(self, latent_samples: int, taps: int, interval: int):
        super().__init__()
        self.taps, self.interval = taps, interval
        self.coefficients = nn.Linear(latent_samples, taps)
        self.positions = nn.Linear(latent_samples, taps)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        coefficients = torch.tanh(self.coefficients(latent))  # (B, C, taps)
        place = torch.sigmoid(self.positions(latent)) * self.interval
        index = place.detach().floor().clamp(max=self.interval - 1)
        fraction = place - place.detach()  # 0 in value, identity gradient
        slots = F.one_hot(index.long(), self.interval + 1).to(latent)  # (B, C, taps, interval + 1)
        slots = slots * (1 - fraction).unsqueeze(-1) + F.one_hot(index.long() + 1, self.interval + 1).to(latent) * (
            fraction.unsqueeze(-1)
        )
        slots = slots * coefficients.unsqueeze(-1)
        overflow = F.pad(slots[..., :-1, self.interval], (1, 0))  # into the next interval's first sample
        main = slots[..., : self.interval].clone()
        main[..., 0] = main[..., 0] + overflow
        return main.flatten(-2)


def fft_convolve(signal: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Causal per-channel convolution ``signal * filters`` (..., N) and (..., M), truncated to the signal's N."""
    n = signal.shape[-1]
    size = n + filters.shape[-1] - 1
    spectrum = torch.fft.rfft(signal, size) * torch.fft.rfft(filters, size)
    return torch.fft.irfft(spectrum, size)[..., :n]
