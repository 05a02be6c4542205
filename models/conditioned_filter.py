"""A knob-conditioned linear filter: a cascade of biquads and a short free FIR, rendered as one long causal FIR.

A gray-box network's filters (a drive's input high-pass, its tone control, a cabinet) are long in samples but
simple in shape. Learning thousands of free FIR taps by gradient descent is slow and leaves noise in the far taps;
here a small head over the knob embedding predicts, per biquad section, a complex-conjugate pole pair (radius and
angle) and three numerator coefficients, plus ``fir_taps`` free taps (short echoes such as a cabinet's
reflections, which biquads cannot make). The cascade's frequency response, sampled at ``taps // 2 + 1`` bins and
multiplied by the free FIR's, is turned back into ``taps`` causal FIR taps (frequency sampling): that FIR is the
filter, in training and in streaming alike, so both render exactly the same thing.

- **poles**: radius ``r = r_max ** (1 + exp(beta))``, where ``r_max = 0.001 ** (1 / taps)`` (every pole's
  response has decayed by 60 dB within the taps, so truncating the response there costs nothing audible), and
  angle ``theta = theta_min * (pi / theta_min) ** sigmoid(phi)``, log-spaced from ``MIN_POLE_HZ`` to Nyquist
  (a low pole moves as easily as a high one). Both are unconstrained parameters of the head, so every pole stays
  inside the unit circle: the filter is stable whatever the weights.
- **zeros**: the numerator ``b0 + b1 z^-1 + b2 z^-2`` is free (a high-pass's zero at DC, a shelf, a notch).
  Both come from the head's outputs times ``POLE_RATE``, so that a pole crosses the band in a few hundred steps.
- **start**: every section's numerator equals its denominator (poles log-spaced from 50 Hz to 10 kHz at radius
  0.9, cancelled by its zeros) and the free FIR is one unit tap: the filter starts as
  the identity, with gradients flowing to every pole and zero.

:func:`fir_convolve` runs a (B, T) signal through per-row taps with an FFT (or a direct convolution for a short
filter): the valid part, ``T - taps + 1`` samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.rates import SAMPLE_RATE_HZ

MIN_POLE_HZ = 10.0  # the lowest pole angle a section can take
START_BAND_HZ = (50.0, 10_000.0)  # the sections' poles start log-spaced over this band,
START_RADIUS = 0.9  # at this radius (at most r_max ** 2): broad, so that a numerator's step is a small change
POLE_RATE = 4.0  # the pole parameters are the head's outputs times this: they learn this much faster
DIRECT_TAPS = 64  # up to this many taps a filter runs as a direct convolution, above it as an FFT


class ConditionedFilter(nn.Module):
    """``sections`` biquads and ``fir_taps`` free taps from a knob embedding of ``hidden`` features, as ``taps``
    causal FIR taps."""

    def __init__(self, hidden: int, sections: int, fir_taps: int, taps: int):
        super().__init__()
        if sections < 0 or fir_taps < 1 or taps < fir_taps:
            raise ValueError("a conditioned filter needs sections >= 0 and 1 <= fir_taps <= taps")
        self.sections, self.fir_taps, self.taps = sections, fir_taps, taps
        self.head = nn.Linear(hidden, 5 * sections + fir_taps)
        self.log_max_radius = math.log(0.001) / taps
        self.log_min_angle = math.log(2 * math.pi * MIN_POLE_HZ / SAMPLE_RATE_HZ)
        with torch.no_grad():
            self.head.weight.zero_()  # the knobs' influence is learnt; the start is the same at every setting
            self.head.bias.zero_()
            if sections:
                low, high = (math.log10(2 * math.pi * f / SAMPLE_RATE_HZ) for f in START_BAND_HZ)
                angle = torch.logspace(low, high, sections, dtype=torch.float64)
                radius = torch.full_like(angle, min(START_RADIUS, math.exp(2 * self.log_max_radius)))
                span = math.log(math.pi) - self.log_min_angle
                fraction = (angle.log() - self.log_min_angle) / span
                bias = self.head.bias[: 5 * sections].view(sections, 5)
                bias[:, 0] = torch.log(radius.log() / self.log_max_radius - 1) / POLE_RATE  # beta
                bias[:, 1] = torch.log(fraction / (1 - fraction)) / POLE_RATE  # phi
                bias[:, 2] = 1.0  # b0 = 1, b1 = a1, b2 = a2: zeros on the poles
                bias[:, 3] = -2 * radius * torch.cos(angle)
                bias[:, 4] = radius**2
            self.head.bias[5 * sections] = 1.0  # the free FIR's tap 0

    def biquads(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Numerators and denominators (B, sections, 3) for an embedding (B, hidden)."""
        out = self.head(embedding)[:, : 5 * self.sections].reshape(-1, self.sections, 5)
        radius = torch.exp(self.log_max_radius * (1 + torch.exp(POLE_RATE * out[..., 0])))
        span = math.log(math.pi) - self.log_min_angle
        angle = torch.exp(self.log_min_angle + span * torch.sigmoid(POLE_RATE * out[..., 1]))
        denominator = torch.stack((torch.ones_like(radius), -2 * radius * torch.cos(angle), radius**2), dim=-1)
        return out[..., 2:], denominator

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """The filter's ``taps`` causal taps (B, taps) for an embedding (B, hidden); tap 0 meets the newest sample."""
        fir = self.head(embedding)[:, 5 * self.sections :]
        spectrum = torch.fft.rfft(fir, self.taps)
        if self.sections:
            numerator, denominator = self.biquads(embedding)
            # (B, sections, 3) coefficients -> (B, sections, taps // 2 + 1) responses, at z^-k = exp(-i w k).
            response = torch.fft.rfft(numerator, self.taps) / torch.fft.rfft(denominator, self.taps)
            spectrum = spectrum * torch.prod(response, dim=1)
        return torch.fft.irfft(spectrum, self.taps)


def fir_convolve(signal: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """(B, 1, T) through each row's causal FIR ``taps`` (B, K), tap 0 on the newest sample: the valid part,
    (B, 1, T - K + 1). A direct convolution up to :data:`DIRECT_TAPS` taps, an FFT above."""
    batch, length = signal.shape[0], signal.shape[-1]
    count = taps.shape[-1]
    if count <= DIRECT_TAPS:
        kernel = taps.flip(-1).unsqueeze(1)  # conv1d correlates: flip so tap 0 meets the newest sample
        return F.conv1d(signal.reshape(1, batch, length), kernel, groups=batch).reshape(batch, 1, -1)
    size = 1 << (length + count - 2).bit_length()
    spectrum = torch.fft.rfft(signal[:, 0], size) * torch.fft.rfft(taps, size)
    return torch.fft.irfft(spectrum, size)[:, count - 1 : length].unsqueeze(1)
