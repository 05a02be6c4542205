"""Teaching a reverb model the real effect's impulse responses: energy decay curves per band, and the early part.

A reverb is linear and time-invariant at each setting of its knobs, so its impulse response there is all there is to
know about it. Training crops of music are a poor teacher of a long decay: a 0.74 s crop never shows the last
second of a 2.3 s hall, and the MR-STFT of a busy crop hardly weighs how fast the tail falls. Here the model's
response (:meth:`models.reverb_tail.ReverbTail.impulse_response`, its whole tail) is compared with the real
effect's, rendered from a click at the same knob positions:

- **decay curves**: in each of the network's frequency bands and over the whole band, the energy of 10 ms frames is
  integrated backwards (Schroeder's energy decay curve) and compared in dB, frame by frame, wherever the real
  curve is within :data:`RANGE_DB` of its start. Equal curves mean the same level (the curve's start is the band's
  whole energy) and the same decay (its slope), in every band, with the direct sound and early echoes included;
- **early part**: the first ``early_taps`` samples (the direct sound and first echoes, which the network sets tap by
  tap) as a waveform, in each band: the error energy over the real response's energy in that band.

:class:`ResponseSource` draws the knob positions (uniform on 0..1, the training side's draws: nothing here knows the
evaluation grids) and renders the real responses; :class:`DecayCurveLoss` is the distance; :class:`ResponseView`
shows a network to :func:`models.fit.fit` as the map from knobs to impulse responses, so the shared training loop
(budgets, weight averaging, validation on material crops, Ctrl-C) trains it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from models.effects import ReferenceEffect
from models.reverb_tail import ReverbTail, ReverbTailConfig, band_masks

FRAME_SECONDS = 0.01  # energy frames of the decay curves
RANGE_DB = 60.0  # frames where the real curve has fallen less than this from its start are compared
CLICK_LEVEL = 0.5  # peak of the click the real effect is rendered from (its response is divided by it)
_ENERGY_FLOOR = 1e-20  # added to curve energies before the log (a response of float32 audio is far above it)


class DecayCurveLoss(nn.Module):
    """Mean absolute difference, in dB, of the energy decay curves of two batches of impulse responses (per band
    and broadband, equal weight for the bands together and the broadband curve; their starts, the levels, count
    ``level_weight`` more), plus ``early_weight`` times the error energy of their first ``config.early_taps``
    samples relative to the real responses' energy, in each band and broadband (weighed the same way).

    Inputs are (B, samples) responses of the length given at construction.
    """

    masks: torch.Tensor

    def __init__(self, config: ReverbTailConfig, length: int, early_weight: float = 1.0, level_weight: float = 1.0):
        super().__init__()
        self.length = length
        self.frame = max(1, int(round(FRAME_SECONDS * config.sample_rate)))
        self.early = min(config.early_taps, length)
        self.early_weight = early_weight
        self.level_weight = level_weight
        self.register_buffer("masks", torch.from_numpy(band_masks(length, config)).float(), persistent=False)

    def signals(self, responses: torch.Tensor) -> torch.Tensor:
        """(B, bands + 1, samples): each response split into the network's bands, then the whole response."""
        if responses.shape[-1] != self.length:
            raise ValueError(f"responses must be {self.length} samples long, got {responses.shape[-1]}")
        responses = responses.reshape(-1, self.length).float()
        bands = torch.fft.irfft(torch.fft.rfft(responses).unsqueeze(1) * self.masks, self.length)
        return torch.cat((bands, responses.unsqueeze(1)), dim=1)

    def curves_db(self, responses: torch.Tensor) -> torch.Tensor:
        """(B, bands + 1, frames): each band's energy decay curve in dB, then the broadband one."""
        return self._curves_db(self.signals(responses))

    def _curves_db(self, signals: torch.Tensor) -> torch.Tensor:
        frames = self.length // self.frame
        energy = (signals[..., : frames * self.frame] ** 2).reshape(*signals.shape[:2], frames, self.frame).sum(-1)
        remaining = torch.flip(torch.cumsum(torch.flip(energy, (-1,)), -1), (-1,))
        return 10.0 * torch.log10(remaining + _ENERGY_FLOOR)

    def decay_distance_db(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The curves' mean absolute difference in dB over the compared frames, plus ``level_weight`` times that of
        their starts (each curve's whole energy: the level, which is one frame of many in the mean); bands and
        broadband weighed half and half."""
        return self._decay_distance_db(self.signals(estimate), self.signals(target))

    def _decay_distance_db(self, estimated_signals: torch.Tensor, real_signals: torch.Tensor) -> torch.Tensor:
        estimated, real = self._curves_db(estimated_signals), self._curves_db(real_signals)
        compared = (real >= real[..., :1] - RANGE_DB).float()
        error = torch.abs(estimated - real)
        per_curve = torch.sum(error * compared, -1) / torch.clamp(compared.sum(-1), min=1.0)
        per_curve = per_curve + self.level_weight * error[..., 0]
        return _bands_and_broadband(per_curve)

    def early_error(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The error energy of the first ``early_taps`` samples over the real responses' energy, in each band and
        broadband (pooled over the batch; bands and broadband weighed half and half)."""
        return self._early_error(self.signals(estimate), self.signals(target))

    def _early_error(self, estimated_signals: torch.Tensor, real_signals: torch.Tensor) -> torch.Tensor:
        # Per band, so that a band that carries little of the energy (a hall's boom at 50-200 Hz) is still matched
        # as a waveform; over the whole response, not its early part, which may be silent (a fully wet freeverb's
        # first 25 ms are).
        difference = estimated_signals[..., : self.early] - real_signals[..., : self.early]
        error = torch.sum(difference**2, dim=(0, 2)) / (torch.sum(real_signals**2, dim=(0, 2)) + 1e-12)
        return _bands_and_broadband(error.unsqueeze(0))

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        estimated, real = self.signals(estimate), self.signals(target)
        return self._decay_distance_db(estimated, real) + self.early_weight * self._early_error(estimated, real)


def _bands_and_broadband(per_curve: torch.Tensor) -> torch.Tensor:
    """The mean of (B, bands + 1) figures with the bands together and the broadband one weighed half and half."""
    return 0.5 * per_curve[:, :-1].mean() + 0.5 * per_curve[:, -1].mean()


class ResponseSource:
    """Batches of (knob positions (B, knobs) in 0..1, real impulse responses (B, length)) at random positions:
    uniform, except that each knob sits at one of its ends with chance ``edge_share`` (where a fit over the
    inside is weakest)."""

    def __init__(self, effect: ReferenceEffect, length: int, sample_rate: int, seed: int, edge_share: float = 0.0):
        self.effect = effect
        self.edge_share = edge_share
        self.length = length
        self.sample_rate = sample_rate
        self.rng = np.random.default_rng(seed)

    def responses(self, positions: np.ndarray) -> np.ndarray:
        """(B, length) float32: the real effect's response to a unit impulse at each row of knob positions."""
        click = np.zeros((1, self.length), np.float32)
        click[0, 0] = CLICK_LEVEL
        rows = []
        for row in np.atleast_2d(positions):
            values = {k.name: k.value_at(float(p)) for k, p in zip(self.effect.knobs, row, strict=True)}
            rows.append(self.effect.process(click, self.sample_rate, values)[0, : self.length] / CLICK_LEVEL)
        return np.stack(rows).astype(np.float32)

    def batch(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``rows`` uniform knob draws and the real responses there, as tensors."""
        shape = (rows, len(self.effect.knobs))
        positions = self.rng.random(shape)
        at_end = self.rng.random(shape) < self.edge_share  # a knob at one of its ends, even odds
        positions = np.where(at_end, (self.rng.random(shape) < 0.5).astype(float), positions)
        return torch.from_numpy(positions.astype(np.float32)), torch.from_numpy(self.responses(positions))

    def next_batch(self, rows: int) -> Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """A batch function for :func:`models.fit.fit` and a :class:`ResponseView`: an empty input (rows, 1, 0),
        the knob positions and the real responses (rows, 1, length)."""

        def batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            positions, responses = self.batch(rows)
            return torch.zeros(rows, 1, 0), positions, responses.unsqueeze(1)

        return batch


class ResponseView(nn.Module):
    """A :class:`ReverbTail` seen as the map from a control vector to its impulse response: ``forward(_, cond)``
    gives (B, 1, tail_length) whatever the input (training on responses needs no audio)."""

    def __init__(self, network: ReverbTail):
        super().__init__()
        self.network = network

    def forward(self, _x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.network.impulse_response(cond).unsqueeze(1)
