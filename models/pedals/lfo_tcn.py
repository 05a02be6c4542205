"""A conditioned TCN told the phase of the effect's LFO, so a chorus's sweep is not averaged away.

A plain TCN sees only the audio and the knobs. A chorus's output depends on where its LFO is, which the audio
does not reveal, so the best a plain TCN can do is the average over the sweep: no modulation at all (the McCool
paper's LSTM failed the same way). :class:`LFOTCN` computes the LFO's phase at every output sample from the rate
knob (the LFO restarts at the first sample of every render, as the real effect's does when it is reset):

    phase(n) = start_phase + 2 pi rate n / sample_rate

Its inner :class:`~models.tcn.ConditionedTCN` gives ``voices`` signals ``r_v(n)`` (delayed and filtered versions
of the input it learns), and a small network of ``sin k phase(n)``, ``cos k phase(n)`` (k = 1..harmonics) and the
knobs gives each voice's weight ``w_v(n)``; the output is ``sum_v w_v(n) r_v(n)``: a time-varying mix of learnt
filters, moving with the real LFO. Silence in gives silence out (the inner TCN's guarantee; the weights only
scale). With no LFO (``lfo`` None) it is the inner TCN with one voice. An effect with several LFOs (a Leslie's horn and
woofer rotors) lists one clock per LFO under ``lfo["clocks"]``; the mixer then sees every clock's harmonics.

``latency`` declares how many samples the output lags the input: a network trained on an effect whose output lags
(the octave) says so, and renderers compensate it. With ``dry_path`` the input, delayed by the latency, is added to
the output, and the inner TCN's output layer starts at zero: the network starts as the dry sound (as the real
pedals' outputs mostly are, plus something) and learns the difference, which a few hundred CPU steps can do.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from models.effects import ReferenceEffect
from models.stream_history import SampleHistory
from models.tcn import ConditionedTCN, TCNConfig, TCNStream


def lfo_clock(effect: ReferenceEffect) -> dict[str, Any]:
    """The record a network keeps of ``effect``'s LFO clock: which knob sets the rate, its range and scale, and the
    phase at a render's first sample (:func:`lfo_phase` reads it)."""
    if effect.lfo is None:
        raise ValueError(f"the {effect.name} effect has no LFO")
    index = [k.name for k in effect.knobs].index(effect.lfo.rate_knob)
    knob = effect.knobs[index]
    return {
        "rate_index": index,
        "rate_min_hz": knob.minimum,
        "rate_max_hz": knob.maximum,
        "rate_scale": knob.scale,
        "start_phase": effect.lfo.start_phase,
    }


def lfo_rate_hz(lfo: dict[str, Any], control: torch.Tensor) -> torch.Tensor:
    """(B,): the LFO rate of each control vector (B, knobs), from the rate knob's normalised position."""
    position = control[:, int(lfo["rate_index"])]
    low, high = float(lfo["rate_min_hz"]), float(lfo["rate_max_hz"])
    if lfo["rate_scale"] == "log":
        return low * (high / low) ** position
    return low + (high - low) * position


def lfo_clocks(lfo: dict[str, Any]) -> list[dict[str, Any]]:
    """The clock records of an LFO record: its ``clocks`` (one per LFO), or the record itself (one LFO)."""
    return list(lfo["clocks"]) if "clocks" in lfo else [lfo]


def lfo_phase(
    lfo: dict[str, Any], control: torch.Tensor, first_sample: int | torch.Tensor, samples: int, sample_rate: int
) -> torch.Tensor:
    """(B, samples): the LFO phase in radians at render samples ``first_sample ..`` (sample 0: the render's
    first), ``start_phase + 2 pi rate n / sample_rate``. ``first_sample`` is one sample for the batch or one per
    row (B,)."""
    first = torch.as_tensor(first_sample, dtype=torch.float64, device=control.device).reshape(-1, 1)
    n = first + torch.arange(samples, dtype=torch.float64, device=control.device)[None, :]
    rate = lfo_rate_hz(lfo, control.double())[:, None]
    cycles = torch.remainder(rate * n / sample_rate, 1.0)  # float64: no drift over long renders
    return (2 * math.pi * cycles + float(lfo["start_phase"])).float()


class LFOTCN(nn.Module):
    """A :class:`ConditionedTCN` whose voices are mixed by the LFO's phase (see the module docstring)."""

    network_type = "LFOTCN"

    def __init__(
        self,
        tcn: TCNConfig,
        lfo: dict[str, Any] | None = None,
        latency: int = 0,
        sample_rate: int = 44_100,
        dry_path: bool = True,
    ):
        super().__init__()
        self.lfo = dict(lfo) if lfo else None
        self.latency = int(latency)
        self.sample_rate = int(sample_rate)
        self.dry_path = bool(dry_path)
        voices = int(self.lfo["voices"]) if self.lfo else 1
        if tcn.out_channels != voices:
            raise ValueError(f"the inner TCN must give one output per voice ({voices}), not {tcn.out_channels}")
        self.tcn = ConditionedTCN(tcn)
        if tcn.receptive_field <= self.latency:
            raise ValueError(f"the receptive field ({tcn.receptive_field}) must exceed the latency ({self.latency})")
        if self.dry_path:
            nn.init.zeros_(self.tcn.output.weight)  # start as the dry sound
        if self.lfo:
            inputs = 2 * int(self.lfo["harmonics"]) * len(lfo_clocks(self.lfo)) + tcn.cond_dim
            hidden = int(self.lfo["hidden"])
            self.mixer = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, voices))

    @classmethod
    def from_settings(cls, settings: dict) -> LFOTCN:
        return cls(
            TCNConfig(**settings["tcn"]),
            settings.get("lfo"),
            settings.get("latency", 0),
            settings.get("sample_rate", 44_100),
        )

    def settings(self) -> dict[str, Any]:
        return {"tcn": self.tcn.settings(), "lfo": self.lfo, "latency": self.latency, "sample_rate": self.sample_rate}

    @property
    def receptive_field(self) -> int:
        return self.tcn.receptive_field

    @property
    def latency_samples(self) -> int:
        return self.latency

    def rate_hz(self, control: torch.Tensor) -> torch.Tensor:
        """The (first) LFO's rate for each control vector (B, knobs), from the rate knob's normalised position."""
        assert self.lfo is not None
        return lfo_rate_hz(lfo_clocks(self.lfo)[0], control)

    def phase(self, control: torch.Tensor, first_sample: int | torch.Tensor, samples: int) -> torch.Tensor:
        """(B, samples): the (first) LFO's phase at render samples ``first_sample ..`` (sample 0: the render's
        first)."""
        return self.phases(control, first_sample, samples)[:, 0]

    def phases(self, control: torch.Tensor, first_sample: int | torch.Tensor, samples: int) -> torch.Tensor:
        """(B, clocks, samples): every LFO's phase at render samples ``first_sample ..``."""
        assert self.lfo is not None
        return torch.stack(
            [lfo_phase(clock, control, first_sample, samples, self.sample_rate) for clock in lfo_clocks(self.lfo)],
            dim=1,
        )

    def voice_weights(self, control: torch.Tensor, first_sample: int | torch.Tensor, samples: int) -> torch.Tensor:
        """(B, voices, samples): each voice's weight at render samples ``first_sample ..``."""
        assert self.lfo is not None
        phases = self.phases(control, first_sample, samples).transpose(1, 2)  # (B, samples, clocks)
        k = torch.arange(1, int(self.lfo["harmonics"]) + 1, device=control.device, dtype=phases.dtype)
        angles = (phases[..., None] * k).flatten(2)  # (B, samples, clocks x harmonics)
        knobs = control[:, None, :].expand(-1, samples, -1)
        features = torch.cat((torch.sin(angles), torch.cos(angles), knobs.to(phases.dtype)), dim=-1)
        return self.mixer(features).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, control: torch.Tensor, first_input_sample: int | torch.Tensor = 0
    ) -> torch.Tensor:
        """(B, 1, T) and (B, knobs) to (B, 1, T - receptive_field + 1). ``first_input_sample`` is the render
        sample ``x[..., 0]`` is (training crops start the real effect, and its LFO, at their first sample), for
        the batch or per row (B,): crops cut from a long render keep their place in it."""
        voices = self.tcn(x, control)
        if self.lfo:
            first_output = first_input_sample + self.receptive_field - 1
            weights = self.voice_weights(control, first_output, voices.shape[-1])
            voices = (voices * weights).sum(dim=1, keepdim=True)
        if self.dry_path:
            end = x.shape[-1] - self.latency
            voices = voices + x[..., end - voices.shape[-1] : end]
        return voices

    def stream(self, control: torch.Tensor) -> LFOTCNStream:
        return LFOTCNStream(self, control)


class LFOTCNStream:
    """Block renderer of an :class:`LFOTCN`: the inner TCN's stream and a sample counter for the LFO."""

    def __init__(self, model: LFOTCN, control: torch.Tensor):
        self.model = model
        self.control = control.reshape(1, -1).float()
        self.inner: TCNStream = model.tcn.stream(control)
        self.position = 0  # render samples done
        self.history = SampleHistory(model.latency)  # the last ``latency`` input samples, for the dry path

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        voices = self.inner.process(x)
        if self.model.lfo:
            control = self.control.to(voices.device)
            weights = self.model.voice_weights(control, self.position, x.shape[-1])
            voices = (voices * weights).sum(dim=1, keepdim=True)
        self.position += x.shape[-1]
        if self.model.dry_path:
            voices = voices + self.history.join(x)[..., : x.shape[-1]]
        return voices
