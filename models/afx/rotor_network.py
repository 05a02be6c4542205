"""A gray-box rotating speaker: band filters, each read at a delay and scaled by a gain that its rotor's phase sweeps.

The network has the shape of a Leslie (a crossover, then per rotor an amplitude modulation and a Doppler delay) and
learns every number of it from the training pairs:

    y[n] = sum_r g_r(n) v_r[n - d_r(n)],    v_r = f_r * x    (a causal FIR of ``taps`` taps per rotor)
    g_r(n) = a_r(k) + sum_{h=1..H} (p_rh(k) sin h phi_r(n) + q_rh(k) cos h phi_r(n))
    d_r(n) = c_r(k) + sum_{h=1..H} (s_rh(k) sin h phi_r(n) + t_rh(k) cos h phi_r(n))    (samples, 0 .. max_delay)

where ``phi_r(n)`` is rotor r's phase at render sample ``n`` from its clock (:func:`models.pedals.lfo_tcn.lfo_phase`:
the rate from the speed knob, phase 0 at a render's first sample, as :func:`models.afx.leslie.rotor_clocks` records
them), and every coefficient is affine in the knobs ``k``. It starts as the dry sound delayed by ``start_delay``
samples, split equally between the rotors' filters (each a unit impulse over the rotor count), with no modulation:
the filters (the crossover), the modulation depths and shapes and the Doppler sweeps are all learned. Delays are
read with linear interpolation (:func:`models.pedals.delay_lines.read_delayed`), so the output is differentiable in
them; a delay coefficient of 1 is ``delay_unit`` samples, so the optimiser moves delays at a useful pace.

Like the pedals' LFO networks it is told where a crop starts in its render (``forward``'s ``first_input_sample``),
and its stream counts the samples since the render began.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.pedals.delay_lines import read_delayed
from models.pedals.lfo_tcn import lfo_phase
from models.stream_history import SampleHistory


class RotorNetwork(nn.Module):
    """Per rotor: a learned FIR band, read at a swept delay, times a swept gain (see the module docstring)."""

    network_type = "Rotors"
    latency_samples = 0

    def __init__(
        self,
        clocks: list[dict[str, Any]],
        knobs: int,
        taps: int = 96,
        max_delay: int = 24,
        harmonics: int = 3,
        sample_rate: int = 16_000,
        start_delay: float = 8.0,
        delay_unit: float = 8.0,
    ):
        super().__init__()
        if not clocks:
            raise ValueError("a rotor network needs at least one rotor clock")
        if not 0 <= start_delay <= max_delay:
            raise ValueError(f"start_delay must lie in 0 .. max_delay ({max_delay}), got {start_delay}")
        self.clocks = [dict(clock) for clock in clocks]
        self.knobs, self.taps, self.max_delay = int(knobs), int(taps), int(max_delay)
        self.harmonics, self.sample_rate = int(harmonics), int(sample_rate)
        self.start_delay, self.delay_unit = float(start_delay), float(delay_unit)
        rotors = len(self.clocks)
        self.bands = nn.Conv1d(1, rotors, self.taps, bias=False)
        self.per_rotor = 2 + 4 * self.harmonics  # gain, delay, then gain sin/cos and delay sin/cos per harmonic
        self.parts = nn.Linear(max(1, self.knobs), rotors * self.per_rotor)
        with torch.no_grad():
            self.bands.weight.zero_()
            self.bands.weight[:, 0, -1] = 1.0 / rotors  # each band passes its share of the input
            self.parts.weight.zero_()
            start = torch.zeros(rotors, self.per_rotor)
            start[:, 0] = 1.0
            start[:, 1] = self.start_delay / self.delay_unit
            self.parts.bias.copy_(start.flatten())

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> RotorNetwork:
        return cls(**settings)

    def settings(self) -> dict[str, Any]:
        return {
            "clocks": self.clocks, "knobs": self.knobs, "taps": self.taps, "max_delay": self.max_delay,
            "harmonics": self.harmonics, "sample_rate": self.sample_rate, "start_delay": self.start_delay,
            "delay_unit": self.delay_unit,
        }  # fmt: skip

    @property
    def receptive_field(self) -> int:
        return self.taps + self.max_delay

    def gains_and_delays(
        self, control: torch.Tensor, first_sample: int | torch.Tensor, samples: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For controls (B, knobs): each rotor's gain and delay (samples) at render samples ``first_sample ..``,
        both (B, rotors, samples)."""
        knobs = control if control.shape[-1] else torch.zeros(control.shape[0], 1, device=control.device)
        parts = self.parts(knobs).reshape(control.shape[0], len(self.clocks), self.per_rotor, 1)
        phases = torch.stack(
            [lfo_phase(clock, control, first_sample, samples, self.sample_rate) for clock in self.clocks], dim=1
        )  # (B, rotors, samples)
        h = torch.arange(1, self.harmonics + 1, device=control.device, dtype=phases.dtype)
        angles = phases[:, :, None, :] * h[None, None, :, None]  # (B, rotors, H, samples)
        sin, cos = torch.sin(angles), torch.cos(angles)
        H = self.harmonics
        gain = parts[:, :, 0] + (parts[:, :, 2 : 2 + H] * sin + parts[:, :, 2 + H : 2 + 2 * H] * cos).sum(dim=2)
        sweep = (parts[:, :, 2 + 2 * H : 2 + 3 * H] * sin + parts[:, :, 2 + 3 * H :] * cos).sum(dim=2)
        delay = ((parts[:, :, 1] + sweep) * self.delay_unit).clamp(0.0, float(self.max_delay))
        return gain, delay

    def _render(self, x: torch.Tensor, control: torch.Tensor, first_output_sample: int | torch.Tensor) -> torch.Tensor:
        """(B, 1, T) to (B, 1, T - receptive_field + 1), the first output being render sample
        ``first_output_sample``."""
        bands = self.bands(x)  # band sample j is input sample j + taps - 1
        samples = x.shape[-1] - self.receptive_field + 1
        gain, delay = self.gains_and_delays(control, first_output_sample, samples)
        out = x.new_zeros(x.shape[0], 1, samples)
        for r in range(len(self.clocks)):
            out = out + gain[:, r : r + 1] * read_delayed(bands[:, r : r + 1], delay[:, r], self.max_delay)
        return out

    def forward(
        self, x: torch.Tensor, control: torch.Tensor, first_input_sample: int | torch.Tensor = 0
    ) -> torch.Tensor:
        """(B, 1, T) and (B, knobs) to (B, 1, T - receptive_field + 1). ``first_input_sample`` is the render sample
        ``x[..., 0]`` is, for the batch or per row (B,)."""
        return self._render(x, control, first_input_sample + self.receptive_field - 1)

    def stream(self, control: torch.Tensor) -> RotorStream:
        return RotorStream(self, control)


class RotorStream:
    """Renders a :class:`RotorNetwork` block by block: the last ``receptive_field - 1`` input samples as history and
    a sample counter for the rotors."""

    def __init__(self, model: RotorNetwork, control: torch.Tensor):
        self.model = model
        self.control = control.reshape(1, -1).float().to(model.parts.weight.device)
        self.position = 0  # render samples done
        self.history = SampleHistory(model.receptive_field - 1)

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        joined = self.history.join(x)
        out = self.model._render(joined, self.control.expand(x.shape[0], -1), self.position)
        self.position += x.shape[-1]
        return out
