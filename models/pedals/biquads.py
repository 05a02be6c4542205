"""A knob-conditioned cascade of second-order sections between two memoryless curves: a gray-box resonant filter.

The filter pedal is a resonant ladder low-pass (``pedalboard.LadderFilter``, JUCE's ladder). Measured on noise
(``python -m models.pedals.biquads`` prints the table) it is a linear filter at low levels and saturates at high
ones: the part of its output that a scaled low-level response does not explain is -63 dB at -40 dBFS peak, -44 dB
at -10 dBFS and -27 dB at -1 dBFS with no resonance, and at resonance 0.9 and an 8 kHz cutoff -31 dB at -20 dBFS,
-16 dB at -10 dBFS and -6 dB at -1 dBFS (its input and its resonance feedback pass through ``tanh``). A network
with the shape of such an effect is a Wiener-Hammerstein model, every part of it predicted from the knobs by a small
MLP (:func:`models.tcn.knob_embedding`) and learnt end to end from the training pairs:

- **input curve** ``f_in`` and **output curve** ``f_out``: memoryless, each
  ``a x + sum_i v_i (tanh(g_i x + b_i) - tanh(b_i))`` over ``units`` tanh units (the curve of
  :class:`models.waveshaper.ConditionedWaveshaper`); both start as the identity, and ``f(0) = 0``;
- **filter**: ``sections`` second-order sections in cascade, ``H(z) = G prod_k B_k(z) A(1)_k / (A_k(z) B_k(1))``
  (each section at unit gain at 0 Hz, ``G`` the cascade's gain). Each section's poles are those of an analogue
  second-order section of natural frequency ``w0`` (radians per sample) and damping ``zeta`` mapped to the z-plane:
  radius ``r = exp(-(sigma_min + w0 zeta))``, angle ``w0 sqrt(1 - zeta^2)``, with ``w0`` at
  ``min_hz (max_hz / min_hz)^sigmoid(u)`` and ``zeta = sigmoid(v)``: every pole lies inside the circle of radius
  ``exp(-sigma_min)`` < 1 for every knob position (stable by construction), ``zeta`` near 1 gives a double real
  pole (a filter without resonance), near 0 a sharp resonance. ``sigma_min`` is set by the receptive field: a
  pole's ring decays by at least ``ring_decay_db`` within ``receptive_field`` samples. Each section's zeros are
  ``rho e^(+-j phi)`` with ``rho = 2 sigmoid(p)`` and ``phi = pi sigmoid(q)``. The network starts as a low-pass
  (zeros near z = -1, poles near 450 Hz, the log-middle of ``min_hz..max_hz``, damping 0.7): what cutoff,
  resonance, slope and level each knob position gives is learnt.

Training (``forward``) filters each crop in the frequency domain: the FFT of the shaped crop, zero-padded by at
least a receptive field (so what wraps around is only the ring left after that long), times the cascade's response
at the FFT's bins: the crop filtered from a silent state at its start.
That equals the streaming IIR wherever the response to what came before the crop has decayed, which is what the
receptive field (16384 samples in the recipe) is for: the real ladder at a 150 Hz cutoff and resonance 0.9 rings
down by 36 dB in 8192 samples and by 70 dB in 16384. Streaming (:class:`BiquadStream`) runs the cascade as an IIR
with state (``scipy.signal.sosfilt`` in float64 with its ``zi`` carried from block to block), so a render block by
block equals one pass over the whole signal. The network is causal with no latency.

What one linear cascade cannot do is the ladder's level-dependent resonance: at cutoff 223 Hz / resonance 0.81 the
real peak (steady response on noise) is 16.4 dB at -40 dBFS, 15.5 dB at -6 dBFS and 14.3 dB at -1 dBFS, and a
cascade's peak settles between the levels it is trained on. The shipped model (``models/weights/filter.json``:
``reatimbre train-effect --effect filter --minutes 10 --threads 1``, then ``--resume --minutes 10`` four times as
the recipe gained per-crop ESR, an 8192-point STFT and quieter crops, each stage's recipe in the sidecar's
``training.resumed_from`` chain) was 1.02 dB quiet at 223 Hz / 0.81 on guitar strums (its linear peak there 1.6 dB
under the real one at -40 dBFS; 5.6 dB at resonance 0.9): the fit trades the quiet peak for the loud one and for its
neighbours on the knobs. So the network has a **level trim over the knobs** (``level_trim_points``; see
``models.pedals.level_trim``): an output gain interpolated from a 5x5 grid over the knob positions, measured after
gradient descent (:meth:`ConditionedBiquads.finish_from`, on 128 batches of 16,384-sample training crops) as the
least-squares fit of each crop's level error in dB. Measured on the shipped weights (``--resume --steps 1``), it is
within +-0.85 dB everywhere but at the top of the resonance knob (+0.3 to +1.5 dB, most at the lowest cut-off), and
the judgement on guitar strums, a synth bass and speech of another origin at -6 dBFS peak, over the 3x3 grid, is:
MR-STFT 0.025 of the dry input's (geometric mean; worst point 0.055), never worse than dry, every segment nearer the
real effect, loudness within 0.45 dB at every point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from scipy.signal import sosfilt
from torch import nn

from models.effects import ReferenceEffect
from models.pedals.level_trim import KnobLevelTrim, measure_trim_db
from models.rates import SAMPLE_RATE_HZ
from models.tcn import knob_embedding
from models.waveshaper import UNIT_GAIN_RANGE, ConditionedWaveshaper

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # dry (B, 1, T), knobs (B, K), wet (B, 1, segment)
START_DAMPING = 0.7  # the sections' damping at the start (a smooth low-pass, no resonance)
START_ZERO_ANGLE_LOGIT = 3.0  # zeros at pi * sigmoid(3) = 0.95 pi: near z = -1, a low-pass at the start
DC_FLOOR = 1e-6  # a section's zeros' gain at 0 Hz is at least this when the section is normalised to unit DC gain
FFT_SIZE_STEP = 4096  # the training path's FFT sizes are multiples of this
DIRECT_SCALE = 10.0  # the direct knob path's weights act this many times over (Adam moves them that much faster)


@dataclass(frozen=True)
class BiquadConfig:
    """Hyperparameters of a :class:`ConditionedBiquads` (a ``PedalNetworkConfig`` of the pedal recipes)."""

    sections: int = 3  # second-order sections in cascade (poles = zeros = 2 x sections)
    units: int = 8  # tanh units of each memoryless curve
    cond_hidden: int = 32
    receptive_field: int = 16_384  # samples of warm-up each training crop gets; bounds the poles' ring
    ring_decay_db: float = 60.0  # every pole's ring decays at least this much within the receptive field
    min_hz: float = 10.0  # the poles' natural frequencies span min_hz..max_hz
    max_hz: float = 20_000.0
    level_trim_points: int = 0  # an output level trim over the knobs, measured after training (0: none)

    def __post_init__(self) -> None:
        if self.level_trim_points not in (0,) and self.level_trim_points < 2:
            raise ValueError("level_trim_points must be 0 (none) or at least 2")
        if min(self.sections, self.units, self.cond_hidden, self.receptive_field) < 1:
            raise ValueError("sections, units, cond_hidden and receptive_field must be positive")
        if not 0 < self.min_hz < self.max_hz < SAMPLE_RATE_HZ / 2 or self.ring_decay_db <= 0:
            raise ValueError("need 0 < min_hz < max_hz < Nyquist and a positive ring_decay_db")

    def build(self, effect: ReferenceEffect) -> ConditionedBiquads:
        """The network for ``effect``'s knobs."""
        return ConditionedBiquads(self, knobs=len(effect.knobs), sample_rate=SAMPLE_RATE_HZ)


class ConditionedBiquads(nn.Module):
    """Input curve, cascade of second-order sections, gain and output curve, all from the knobs (module docstring)."""

    network_type = "ConditionedBiquads"  # the sidecar's architecture type (models.networks)
    latency_samples = 0  # causal: the output lines up with the input

    def __init__(self, config: BiquadConfig, knobs: int, sample_rate: int = SAMPLE_RATE_HZ):
        super().__init__()
        self.config, self.knobs, self.sample_rate = config, int(knobs), int(sample_rate)
        c = config
        self.cond_mlp = knob_embedding(self.knobs, c.cond_hidden)
        self.poles = nn.Linear(c.cond_hidden, 2 * c.sections)  # per section: frequency logit, damping logit
        self.zeros = nn.Linear(c.cond_hidden, 2 * c.sections)  # per section: radius logit, angle logit
        self.gain = nn.Linear(c.cond_hidden, 1)  # the cascade's log gain (nepers)
        # A linear path from the knobs straight to the filter's logits, beside the MLP's: at the start the MLP's
        # output hardly depends on the knobs, and a filter whose cutoff follows a knob needs that dependence first.
        self.direct = nn.Linear(self.knobs, 4 * c.sections + 1, bias=False)
        self.curve_in = nn.Linear(c.cond_hidden, 1 + 3 * c.units)
        self.curve_out = nn.Linear(c.cond_hidden, 1 + 3 * c.units)
        self.level_trim = KnobLevelTrim(knobs, c.level_trim_points) if c.level_trim_points else None
        low, high = (math.log(g) for g in UNIT_GAIN_RANGE)
        damping_logit = math.log(START_DAMPING / (1 - START_DAMPING))
        with torch.no_grad():
            for head in (self.poles, self.zeros, self.gain, self.curve_in, self.curve_out):
                head.weight.mul_(0.1)
                head.bias.zero_()
            self.poles.bias[0::2] = torch.linspace(-0.3, 0.3, c.sections)
            self.poles.bias[1::2] = damping_logit
            self.zeros.bias[1::2] = START_ZERO_ANGLE_LOGIT
            self.gain.weight.zero_()
            self.direct.weight.zero_()
            for curve in (self.curve_in, self.curve_out):
                curve.weight[0].zero_()
                curve.bias[0] = 1.0  # slope 1: the identity
                curve.bias[1 : 1 + c.units] = torch.linspace(low, high, c.units)
                curve.weight[1 + 2 * c.units :].zero_()  # weights 0: the units start silent

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> ConditionedBiquads:
        """The network a sidecar's architecture settings describe (``type`` removed)."""
        return cls(BiquadConfig(**settings["config"]), settings["knobs"], settings.get("sample_rate", SAMPLE_RATE_HZ))

    def settings(self) -> dict[str, Any]:
        """The architecture settings a sidecar records."""
        return {"config": asdict(self.config), "knobs": self.knobs, "sample_rate": self.sample_rate}

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    @property
    def min_decay_per_sample(self) -> float:
        """``sigma_min``: nepers per sample every pole decays by at least (its radius is at most exp(-sigma_min))."""
        return self.config.ring_decay_db / (20 * math.log10(math.e)) / self.config.receptive_field

    def sections(self, control: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For controls (B, knobs): numerators (B, sections, 3) and denominators (B, sections, 3), each section at unit
        gain at 0 Hz, and the cascade's gain (B,), all float64."""
        embedding = self.cond_mlp(control.float())
        c = self.config
        direct = DIRECT_SCALE * self.direct(control.float())
        poles = (self.poles(embedding) + direct[:, : 2 * c.sections]).double().reshape(-1, c.sections, 2)
        zeros = (self.zeros(embedding) + direct[:, 2 * c.sections : -1]).double().reshape(-1, c.sections, 2)
        nyquist_scale = 2 * math.pi / self.sample_rate
        log_low, log_high = math.log(c.min_hz), math.log(c.max_hz)
        natural = nyquist_scale * torch.exp(log_low + (log_high - log_low) * torch.sigmoid(poles[..., 0]))
        damping = torch.sigmoid(poles[..., 1])
        radius = torch.exp(-(self.min_decay_per_sample + natural * damping))
        angle = natural * torch.sqrt(torch.clamp(1 - damping**2, min=1e-12))
        one = torch.ones_like(radius)
        denominator = torch.stack((one, -2 * radius * torch.cos(angle), radius**2), dim=-1)
        zero_radius = 2 * torch.sigmoid(zeros[..., 0])
        zero_angle = math.pi * torch.sigmoid(zeros[..., 1])
        numerator = torch.stack((one, -2 * zero_radius * torch.cos(zero_angle), zero_radius**2), dim=-1)
        dc = denominator.sum(-1, keepdim=True) / torch.clamp(numerator.sum(-1, keepdim=True), min=DC_FLOOR)
        gain = torch.exp((self.gain(embedding) + direct[:, -1:]).double()[:, 0])
        return numerator * dc, denominator, gain

    def curves(self, control: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """The input and output curves' (slope, unit gains, offsets, weights) for controls (B, knobs), each (B, n, 1)
        as :meth:`models.waveshaper.ConditionedWaveshaper.shape` takes them."""
        embedding = self.cond_mlp(control.float())
        n = self.config.units
        result = []
        for head in (self.curve_in, self.curve_out):
            curve = head(embedding).unsqueeze(-1)
            result.append((curve[:, :1], curve[:, 1 : 1 + n].exp(), curve[:, 1 + n : 1 + 2 * n], curve[:, 1 + 2 * n :]))
        return result[0], result[1]

    def frequency_response(self, control: torch.Tensor, fft_size: int) -> torch.Tensor:
        """The cascade's response times its gain at the ``fft_size // 2 + 1`` bins of a real FFT: (B, bins),
        complex128."""
        numerator, denominator, gain = self.sections(control)
        omega = torch.linspace(0, math.pi, fft_size // 2 + 1, dtype=torch.float64, device=numerator.device)
        powers = torch.exp(-1j * omega[:, None] * torch.arange(3, device=numerator.device))  # (bins, 3)
        top = torch.einsum("bsk,fk->bsf", numerator.to(powers.dtype), powers)
        bottom = torch.einsum("bsk,fk->bsf", denominator.to(powers.dtype), powers)
        return gain[:, None] * torch.prod(top / bottom, dim=1)

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) and (B, knobs) to (B, 1, T - receptive_field + 1): the crop filtered from a silent state (in the
        frequency domain), its first ``receptive_field - 1`` samples dropped as warm-up."""
        curve_in, curve_out = self.curves(control)
        shaped = ConditionedWaveshaper.shape(x, *curve_in)
        length = x.shape[-1]
        # Circular convolution equals the linear one up to the response's tail beyond the receptive field: at least
        # length + receptive_field bins (a multiple of 4096, a fast size for the FFT).
        fft_size = -(-(length + self.receptive_field) // FFT_SIZE_STEP) * FFT_SIZE_STEP
        response = self.frequency_response(control, fft_size)[:, None, :].to(torch.complex64)
        filtered = torch.fft.irfft(torch.fft.rfft(shaped, fft_size) * response, fft_size)
        out = ConditionedWaveshaper.shape(filtered[..., self.receptive_field - 1 : length], *curve_out)
        return out if self.level_trim is None else out * self.level_trim.gain(control)[:, None, None]

    @torch.no_grad()
    def finish_from(self, next_batch: Callable[[int], Batch], batches: int = 128) -> None:
        """Measure the level trim (``models.pedals.level_trim``) on ``batches`` training batches; a no-op without
        one."""
        if self.level_trim is None:
            return
        self.level_trim.trim_db.zero_()
        device = self.poles.weight.device
        positions, model_energy, target_energy = [], [], []
        for step in range(batches):
            x, control, wet = next_batch(step)
            out = self(x.to(device), control.to(device))[:, 0].cpu().double()
            target = wet[:, 0, -out.shape[-1] :].double()
            positions.append(control.double().numpy())
            model_energy.append(torch.sum(out**2, dim=-1).numpy())
            target_energy.append(torch.sum(target**2, dim=-1).numpy())
        trim = measure_trim_db(
            np.concatenate(positions),
            np.concatenate(model_energy),
            np.concatenate(target_energy),
            self.level_trim.points,
        )
        self.level_trim.trim_db.copy_(torch.from_numpy(trim))

    def takes_weights_of(self, saved: nn.Module) -> bool:
        """Load a saved network that differs from this one only in its level trim (``finish_from`` measures it
        afresh): True when it did."""
        if not isinstance(saved, ConditionedBiquads) or saved.knobs != self.knobs:
            return False
        if replace(saved.config, level_trim_points=self.config.level_trim_points) != self.config:
            return False
        state = {k: v for k, v in saved.state_dict().items() if not k.startswith("level_trim.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("level_trim.") for k in missing):
            raise ValueError(f"a filter's weights did not fit: missing {missing}, unexpected {unexpected}")
        return True

    def stream(self, control: torch.Tensor) -> BiquadStream:
        """A block-by-block renderer for one fixed control vector ``control`` of shape (knobs,)."""
        return BiquadStream(self, control)


class BiquadStream:
    """Renders a :class:`ConditionedBiquads` block by block as an IIR with state; the batch (audio channels) is fixed
    by the first block."""

    def __init__(self, model: ConditionedBiquads, control: torch.Tensor):
        device = model.poles.weight.device
        with torch.inference_mode():
            cond = control.reshape(1, -1).float().to(device)
            numerator, denominator, gain = model.sections(cond)
            self._curve_in, self._curve_out = model.curves(cond)
            self._trim = 1.0 if model.level_trim is None else float(model.level_trim.gain(cond)[0])
        zeros = numerator[0].cpu().numpy().copy()
        zeros[0] *= float(gain[0])  # the cascade's gain, on the first section's numerator
        self._sos = np.concatenate((zeros, denominator[0].cpu().numpy()), axis=-1)  # (sections, 6)
        self._state: np.ndarray | None = None  # (sections, batch, 2)

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Render the next block: (B, 1, L) in, (B, 1, L) out."""
        shaped = ConditionedWaveshaper.shape(x, *(part.to(x.device) for part in self._curve_in))
        if self._state is None:
            self._state = np.zeros((self._sos.shape[0], x.shape[0], 2))
        filtered, self._state = sosfilt(self._sos, shaped[:, 0].cpu().double().numpy(), zi=self._state)
        out = torch.from_numpy(filtered).to(x.device, x.dtype)[:, None, :]
        return ConditionedWaveshaper.shape(out, *(part.to(x.device) for part in self._curve_out)) * self._trim


def ladder_nonlinearity_db(
    levels_dbfs: tuple[float, ...] = (-40, -20, -10, -6, -1), seconds: float = 1.0
) -> list[dict[str, float]]:
    """How far the real filter is from a linear one: white noise at each peak level through the real effect, the
    part of the output its response at -60 dBFS (scaled) does not explain, in dB of the output, at the knob grid's
    corners and middle."""
    from models.effects import reference_effect

    effect = reference_effect("filter")
    noise = np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE_HZ)).astype(np.float32)
    noise /= np.max(np.abs(noise))
    rows = []
    for cutoff, resonance in ((150.0, 0.0), (150.0, 0.9), (1000.0, 0.4), (8000.0, 0.0), (8000.0, 0.9)):
        knobs = {"cutoff": cutoff, "resonance": resonance}
        quiet = 1e-3
        linear = effect.process((noise * quiet)[None], SAMPLE_RATE_HZ, knobs)[0] / quiet
        for level in levels_dbfs:
            gain = 10 ** (level / 20)
            out = effect.process((noise * gain)[None], SAMPLE_RATE_HZ, knobs)[0] / gain
            residual = float(np.sum((out - linear) ** 2) / np.sum(linear**2))
            rows.append({**knobs, "peak_dbfs": level, "nonlinear_db": 10 * math.log10(residual + 1e-20)})
    return rows


if __name__ == "__main__":
    for row in ladder_nonlinearity_db():
        print(
            f"cutoff {row['cutoff']:6.0f} Hz  resonance {row['resonance']:.1f}  noise peak {row['peak_dbfs']:4.0f} dBFS"
            f"  nonlinear part {row['nonlinear_db']:6.1f} dB"
        )
