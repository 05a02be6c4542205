"""A knob-conditioned waveshaper and tone filter: a memoryless curve, then a linear filter, both set by the knobs.

Many drive effects are a static nonlinearity followed by a tone filter (the shipped overdrive: gain into a clipper,
then a low-pass). A TCN has to rebuild such a curve from piecewise-linear pieces at every input level and knob
setting, and on sampled instruments it stayed only 2.6 times closer to the real effect than the dry input. Here the
network has the effect's shape (a Hammerstein model) and learns both parts from the training pairs:

- **curve**: ``f(x) = a x + sum_i v_i (tanh(g_i x + b_i) - tanh(b_i))`` over ``units`` tanh units, where the
  slope ``a``, each unit's gain ``g_i = exp(s_i)`` (so a drive of tens of dB is a small step in ``s_i``), offset
  ``b_i`` (asymmetric clipping) and weight ``v_i`` come from a small MLP over the knobs. ``f(0) = 0``: silence
  in gives exact silence out;
- **filter**: ``taps`` causal FIR taps, also from the MLP (a tone control, a cabinet's short response).

It starts as the identity (``a = 1``, ``v = 0``, tap 0 = 1), is causal with no latency, and its receptive field is
``taps`` samples. :class:`WaveshaperStream` renders block by block with the last ``taps - 1`` shaped samples as
history, so the output equals one pass over the whole signal with ``taps - 1`` samples of silence in front.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.stream_history import SampleHistory
from models.tcn import knob_embedding

UNIT_GAIN_RANGE = (0.25, 64.0)  # the tanh units' starting gains, spread evenly in dB over this range


@dataclass(frozen=True)
class WaveshaperConfig:
    """Hyperparameters of a :class:`ConditionedWaveshaper`."""

    cond_dim: int = 2
    cond_hidden: int = 32
    units: int = 16  # tanh units of the curve
    taps: int = 128  # FIR taps of the filter (its receptive field)

    def __post_init__(self) -> None:
        if self.units < 1 or self.taps < 1 or self.cond_dim < 1 or self.cond_hidden < 1:
            raise ValueError("cond_dim, cond_hidden, units and taps must be positive")

    @property
    def receptive_field(self) -> int:
        return self.taps

    def to_dict(self) -> dict:
        return asdict(self)

    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 per output sample: the curve (a gain, offset, tanh and weight per unit) and the FIR."""
        return 2 + 8 * self.units + 2 * self.taps


def curve_head(hidden: int, units: int, gain_range: tuple[float, float] = UNIT_GAIN_RANGE) -> nn.Linear:
    """The curve's head over a knob embedding of ``hidden`` features: slope, then per unit log gain, offset and
    weight (``1 + 3 units`` outputs). It starts as the identity curve (slope 1, every unit's weight 0) with the
    units' gains spread evenly in dB over ``gain_range``."""
    head = nn.Linear(hidden, 1 + 3 * units)
    low, high = (math.log(g) for g in gain_range)
    with torch.no_grad():
        head.weight.mul_(0.1)
        head.bias.zero_()
        head.weight[0].zero_()
        head.bias[0] = 1.0  # slope 1: the identity
        head.bias[1 : 1 + units] = torch.linspace(low, high, units)
        head.weight[1 + 2 * units :].zero_()  # weights 0: the units start silent
    return head


def curve_coefficients(curve: torch.Tensor, units: int) -> tuple[torch.Tensor, ...]:
    """A :func:`curve_head`'s output (B, 1 + 3 units) as slope (B, 1, 1) and unit gains, offsets and weights
    (B, units, 1) each, the arguments of :meth:`ConditionedWaveshaper.shape`."""
    curve = curve.unsqueeze(-1)
    slope, log_gain = curve[:, :1], curve[:, 1 : 1 + units]
    offset, weight = curve[:, 1 + units : 1 + 2 * units], curve[:, 1 + 2 * units :]
    return slope, log_gain.exp(), offset, weight


class ConditionedWaveshaper(nn.Module):
    """A memoryless curve and an FIR filter, both predicted from the control vector (the knobs)."""

    network_type = "ConditionedWaveshaper"  # the sidecar's architecture type (models.networks)
    latency_samples = 0  # causal: the output lines up with the input

    def __init__(self, config: WaveshaperConfig | None = None):
        super().__init__()
        self.config = config or WaveshaperConfig()
        c = self.config
        self.cond_mlp = knob_embedding(c.cond_dim, c.cond_hidden)
        # One head for the curve: slope, then per unit log gain, offset and weight.
        self.curve = curve_head(c.cond_hidden, c.units)
        self.filter = nn.Linear(c.cond_hidden, c.taps)
        with torch.no_grad():
            self.filter.weight.zero_()
            self.filter.bias.zero_()
            self.filter.bias[0] = 1.0  # tap 0 = 1: the identity

    @classmethod
    def from_settings(cls, settings: dict) -> ConditionedWaveshaper:
        """The network a sidecar's architecture settings describe (``type`` removed)."""
        return cls(WaveshaperConfig(**settings))

    def settings(self) -> dict:
        """The architecture settings a sidecar records."""
        return self.config.to_dict()

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def coefficients(self, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For controls (B, cond_dim): slope (B, 1, 1), unit gains, offsets and weights (B, units, 1) each, and the
        filter's taps (B, taps), tap 0 acting on the current sample."""
        embedding = self.cond_mlp(cond)
        return (*curve_coefficients(self.curve(embedding), self.config.units), self.filter(embedding))

    @staticmethod
    def shape(
        x: torch.Tensor, slope: torch.Tensor, gain: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """The curve on (B, 1, T) audio: ``a x + sum_i v_i (tanh(g_i x + b_i) - tanh(b_i))``, (B, 1, T)."""
        units = torch.tanh(gain * x + offset) - torch.tanh(offset)
        return slope * x + torch.sum(weight * units, dim=1, keepdim=True)

    @staticmethod
    def filtered(shaped: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) through each row's causal FIR ``taps`` (B, K): (B, 1, T - K + 1)."""
        batch, length = shaped.shape[0], shaped.shape[-1]
        kernel = taps.flip(-1).unsqueeze(1)  # conv1d correlates: flip so tap 0 meets the newest sample
        return F.conv1d(shaped.reshape(1, batch, length), kernel, groups=batch).reshape(batch, 1, -1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Map input (B, 1, T) and control (B, cond_dim) to (B, 1, T - taps + 1)."""
        slope, gain, offset, weight, taps = self.coefficients(cond)
        return self.filtered(self.shape(x, slope, gain, offset, weight), taps)

    def stream(self, cond: torch.Tensor) -> WaveshaperStream:
        """A block-by-block renderer for one fixed control vector ``cond`` of shape (cond_dim,)."""
        return WaveshaperStream(self, cond)


class WaveshaperStream:
    """Renders a :class:`ConditionedWaveshaper` block by block; the batch (audio channels) is fixed by the first
    block."""

    def __init__(self, model: ConditionedWaveshaper, cond: torch.Tensor):
        device = model.curve.weight.device
        with torch.inference_mode():
            self._slope, self._gain, self._offset, self._weight, taps = model.coefficients(
                cond.reshape(1, -1).float().to(device)
            )
        self._taps = taps
        self._history = SampleHistory(taps.shape[-1] - 1)  # the last taps - 1 shaped samples

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Render the next block: (B, 1, L) in, (B, 1, L) out."""
        batch = x.shape[0]
        shaped = ConditionedWaveshaper.shape(x, self._slope, self._gain, self._offset, self._weight)
        return ConditionedWaveshaper.filtered(self._history.join(shaped), self._taps.expand(batch, -1))
