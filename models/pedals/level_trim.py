"""A level trim over the knobs, measured on training pairs after gradient descent.

A gray-box network can miss the real effect's level at some knob settings for a reason its shape cannot express:
the filter pedal's ladder has a resonant peak that falls as the input gets louder (16.4 dB at -40 dBFS, 14.3 dB at
-1 dBFS at 223 Hz / resonance 0.81), and a linear cascade settles between the levels, 1 dB quiet at high resonance
and low cut-off on played material. What a loudness meter sees there is an output level, and it can be measured:

- the trim is a grid of ``points`` values per knob (knob positions 0, 1/(points-1), ..., 1), in dB, interpolated
  multilinearly between them, applied as a gain on the network's output (the same in training and streaming);
- :func:`measure_trim_db` takes training crops at random knob positions, the network's output energy and the real
  effect's for each, and fits the grid by least squares so that the interpolated trim at each crop's position
  matches that crop's level error in dB (a grid point that no crop reaches stays at 0 dB), every value limited to
  +-``limit_db``.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

RIDGE = 0.1  # the least-squares fit's pull of every grid point towards 0 dB (a crop's worth is 1)
MIN_ENERGY = 1e-12


def corner_weights(positions: torch.Tensor, points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For knob positions (B, K) in 0..1: the flat grid indices (B, 2^K) of the grid points around each and their
    multilinear weights (B, 2^K), which sum to 1 per row."""
    scaled = torch.clamp(positions, 0.0, 1.0) * (points - 1)
    low = torch.clamp(torch.floor(scaled), max=points - 2).long()
    fraction = scaled - low
    knobs = positions.shape[-1]
    indices, weights = [], []
    for corner in itertools.product((0, 1), repeat=knobs):
        offset = torch.tensor(corner, device=positions.device)
        index = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        weight = torch.ones(positions.shape[0], dtype=positions.dtype, device=positions.device)
        for k in range(knobs):
            index = index * points + low[:, k] + offset[k]
            weight = weight * (fraction[:, k] if corner[k] else 1 - fraction[:, k])
        indices.append(index)
        weights.append(weight)
    return torch.stack(indices, dim=-1), torch.stack(weights, dim=-1)


class KnobLevelTrim(nn.Module):
    """An output gain from a grid of ``points`` per knob over ``knobs`` knobs (a buffer ``trim_db``, 0 dB at first)."""

    trim_db: torch.Tensor

    def __init__(self, knobs: int, points: int):
        super().__init__()
        if knobs < 1 or points < 2:
            raise ValueError("a level trim needs at least one knob and two grid points per knob")
        self.knobs, self.points = knobs, points
        self.register_buffer("trim_db", torch.zeros(points**knobs))

    def gain(self, positions: torch.Tensor) -> torch.Tensor:
        """The linear gain (B,) at knob positions (B, K)."""
        indices, weights = corner_weights(positions.float(), self.points)
        trim_db = torch.sum(self.trim_db[indices] * weights, dim=-1)
        return 10.0 ** (trim_db / 20.0)


def measure_trim_db(
    positions: np.ndarray, model_energy: np.ndarray, target_energy: np.ndarray, points: int, limit_db: float = 6.0
) -> np.ndarray:
    """The trim grid (points^K,) in dB from crops at knob ``positions`` (N, K) with the model's and the real effect's
    output energies (N,): the least-squares fit of the interpolated trim to each crop's level error in dB (crops
    more than 60 dB below the loudest left out), with a small pull towards 0 dB (``RIDGE``) so that a grid point no
    crop reaches stays at 0 dB; limited to +-``limit_db``."""
    audible = np.maximum(model_energy, target_energy) > 1e-6 * float(np.max(target_energy))
    error_db = 10 * np.log10(
        np.maximum(target_energy[audible], MIN_ENERGY) / np.maximum(model_energy[audible], MIN_ENERGY)
    )
    indices, weights = corner_weights(torch.from_numpy(positions[audible]).double(), points)
    size = points ** positions.shape[-1]
    design = np.zeros((len(error_db), size))
    np.add.at(design, (np.arange(len(error_db))[:, None], indices.numpy()), weights.numpy())
    system = np.vstack([design, np.sqrt(RIDGE) * np.eye(size)])
    wanted = np.concatenate([np.clip(error_db, -limit_db, limit_db), np.zeros(size)])
    trim, *_ = np.linalg.lstsq(system, wanted, rcond=None)
    return np.clip(trim, -limit_db, limit_db)
