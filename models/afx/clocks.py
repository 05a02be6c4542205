"""The effect's LFO clocks told to the context-frame models (CRAFx, CWAFx, CSAFx): a Leslie's rotor phases.

A Leslie's rotors start at phase 0 at a render's first sample (:func:`models.afx.leslie.rotor_clocks`), so where a
frame lies in its render decides the modulation, and the audio of a random training crop does not show it: under a
waveform loss a phase-blind model learns the phase average, with the rotation averaged away. A model built with
``clocks`` (the records :func:`models.pedals.lfo_tcn.lfo_phase` reads: rate from a knob, phase at the first sample)
is told, for each output frame, the render sample its current frame starts at, and computes each clock's phase
``phi_r(n)`` at every sample of the frame. The features are ``sin h phi_r(n)`` and ``cos h phi_r(n)``,
``h = 1 .. harmonics``, (B, 2 x harmonics x clocks, N). They reach the model in two places:

- the latent space (CRAFx, CSAFx): the features at each latent step's centre sample are appended to the Bi-LSTM's
  input at that step, beside the 2k+1 frames' latents, so the modulators it learns can follow the phase;
- the back-end (:class:`ClockModulation`, CRAFx, CWAFx, CSAFx): a per-sample, per-channel term
  ``sum_f a_cf(k) features_f(n)``, its coefficients affine in the knobs ``k``, added to the upsampled modulators
  that multiply the band decomposition ``R`` (CRAFx, CWAFx: X^2 = (Z^ + term) R; CSAFx: its envelopes Z^1). It
  starts at zero, so a clocked model starts as the phase-blind one with the clock inputs beside.

Every feature is a function of the render sample, so frames rendered in any batch or block give the same output.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.pedals.lfo_tcn import lfo_phase

DEFAULT_HARMONICS = 3


def clock_records(clocks: Any) -> tuple[dict[str, Any], ...]:
    """Clock records as a config keeps them (a tuple of plain dicts; a sidecar's JSON gives a list)."""
    records = tuple(dict(clock) for clock in clocks)
    for clock in records:
        missing = {"rate_index", "rate_min_hz", "rate_max_hz", "rate_scale", "start_phase"} - set(clock)
        if missing:
            raise ValueError(f"a clock record lacks {', '.join(sorted(missing))}")
    return records


def feature_count(clocks: tuple[dict[str, Any], ...], harmonics: int) -> int:
    """Features per sample: a sine and a cosine per harmonic per clock (0 without clocks)."""
    return 2 * harmonics * len(clocks)


def clock_features(
    clocks: tuple[dict[str, Any], ...],
    harmonics: int,
    control: torch.Tensor | None,
    first_sample: torch.Tensor,
    samples: int,
    sample_rate: int,
) -> torch.Tensor:
    """(B, 2 x harmonics x clocks, samples): each clock's phase harmonics at render samples ``first_sample[b] ..``
    (``first_sample`` (B,)), the rates from the knobs ``control`` (B, knobs) (None or no knobs: each clock's lowest
    rate, which is its only one for a task at a fixed speed)."""
    rows = first_sample.shape[0]
    knobs = control if control is not None and control.shape[-1] else torch.zeros(rows, 1, device=first_sample.device)
    phases = torch.stack([lfo_phase(c, knobs, first_sample, samples, sample_rate) for c in clocks], dim=1)
    h = torch.arange(1, harmonics + 1, device=phases.device, dtype=phases.dtype)
    angles = (phases[:, :, None, :] * h[None, None, :, None]).reshape(rows, -1, samples)  # (B, clocks x H, N)
    return torch.cat((torch.sin(angles), torch.cos(angles)), dim=1)


def latent_steps(features: torch.Tensor, latent_samples: int) -> torch.Tensor:
    """Per-sample features (B, F, N) at the centre sample of each of the ``latent_samples`` latent steps:
    (B, F, latent_samples)."""
    pool = features.shape[-1] // latent_samples
    return features[..., pool // 2 :: pool][..., :latent_samples]


class ClockModulation(nn.Module):
    """The back-end's clock term: features (B, F, N) and knobs (B, knobs) -> (B, channels, N), coefficients affine
    in the knobs and starting at zero."""

    def __init__(self, features: int, channels: int, knobs: int):
        super().__init__()
        self.features, self.channels, self.knobs = features, channels, knobs
        self.coefficients = nn.Linear(max(1, knobs), channels * features)
        nn.init.zeros_(self.coefficients.weight)
        nn.init.zeros_(self.coefficients.bias)

    def forward(self, features: torch.Tensor, control: torch.Tensor | None) -> torch.Tensor:
        rows = features.shape[0]
        knobs = control if self.knobs and control is not None else features.new_zeros(rows, 1)
        a = self.coefficients(knobs.to(features)).reshape(rows, self.channels, self.features)
        return torch.bmm(a, features)
