"""A gray-box chorus: the input plus one voice read from a delay line whose delay the LFO sweeps.

The network has the shape of a chorus and learns every number of it from the training pairs:

    y[n] = a(k) x[n] + b(k) x[n - d(n)],
    d(n) = c(k) + sum_{h=1..H} (s_h(k) sin h phase(n) + t_h(k) cos h phase(n))      (milliseconds)

where ``phase(n) = start_phase + 2 pi rate n / 44100`` is the effect's LFO phase at render sample ``n``, computed
from the rate knob and the sample count since the render began (:func:`models.pedals.lfo_tcn.lfo_phase`, as the
LFO TCN has it), and the dry gain ``a``, wet gain ``b``, centre delay ``c`` and sweep coefficients ``s_h, t_h`` come
from a :class:`~models.pedals.knob_map.KnobMap` of the knobs (an affine map plus a small MLP's correction). The
voice is read with linear interpolation (:func:`~models.pedals.delay_lines.read_delayed`), so the output is
differentiable in the delay. ``d`` is kept in 1 sample .. ``max_delay_ms``, which sets the receptive field. A sweep
shaped other than a sine is open to it through the harmonics ``h > 1``.

The LFO restarts with every render (``restarts_with_render``: training crops start the real effect, and its LFO,
where the network's input starts).

**The measured start** (:meth:`SweptDelayNetwork.start_from`, before gradient descent; the delay is hundreds of
samples, too far for gradient descent from a wrong start): on ``start_batches`` training batches (random crops at
random knob positions, the real effect's output beside each), every window of ``window`` samples (half-overlapping)
gives the lag of the strongest delayed copy of the input in the output, once the output's least-squares copy of the
input at lag 0 (the dry path) is taken out (plain cross-correlation, :mod:`models.pedals.lag_measure`, lags of 2
samples .. ``max_delay_ms``). Tonal material makes many lags wrong (a copy one period on looks the same), so two
random-sample consensus fits (:func:`~models.pedals.knob_map.fit_affine`) keep only lags that agree: per crop,
those within 3 samples of one sweep ``c + s sin phase + t cos phase`` through the crop's windows (the phase at each
window's centre); over all crops, those within 3 samples of one sweep whose ``c, s, t`` are each affine in the
knobs, drawn through 5 crops at a time and confirmed by at least as many windows of other crops. That sweep is
refitted by least squares on the agreeing windows; with it, each crop's least-squares gains of the input and of the
swept voice give the dry and wet gains, fitted affine in the knobs. These set the knob map's affine part (the higher
harmonics start at zero; a part whose measurements do not agree keeps its starting value, the dry sound), and
gradient descent refines everything. What was measured is kept in ``start_record``. In a check on 64 training
crops of 16384 samples (seed 0) the start was centre 6.93 ms and sweep 0.46 + 4.57 d ms for the depth knob d, each
plus under 0.1 ms from the other knobs (the real chorus: 7 ms and 0.5 + 4.5 d ms); the shipped chorus, after
gradient descent, has centre 6.97..7.00 ms and sweep 0.91, 2.73, 4.55 ms at d = 0.1, 0.5, 0.9 (real 0.95, 2.75,
4.55).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.effects import ReferenceEffect
from models.pedals.delay_lines import read_delayed
from models.pedals.knob_map import KnobMap, fit_affine
from models.pedals.lag_measure import copy_gains, strongest_lag
from models.pedals.lfo_tcn import lfo_clock, lfo_phase
from models.rates import SAMPLE_RATE_HZ
from models.stream_history import SampleHistory

DRY, WET, CENTRE_MS, SWEEP = 0, 1, 2, 3  # the knob map's outputs: then sin h phase and cos h phase, h = 1..H
MIN_MEASURED_LAG = 2  # samples: lags 0 and 1 are the dry path's peak
LAG_TOLERANCE = 3.0  # samples: a window's lag this near a sweep agrees with it
CROPS_PER_DRAW = 5  # crops whose windows give one candidate sweep (each crop shows it at one knob setting)

Batches = Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class SweptDelayConfig:
    """Hyperparameters of a :class:`SweptDelayNetwork`."""

    hidden: int = 32  # of the knob map's MLP
    harmonics: int = 2  # of the LFO phase in the sweep
    max_delay_ms: float = 20.0  # the longest delay the network can read
    start_batches: int = 16  # training batches measured for the start
    window: int = 512  # samples per measured lag

    @property
    def max_delay_samples(self) -> int:
        return round(self.max_delay_ms * SAMPLE_RATE_HZ / 1000)

    @property
    def receptive_field(self) -> int:
        return self.max_delay_samples + 1

    def build(self, effect: ReferenceEffect) -> SweptDelayNetwork:
        return SweptDelayNetwork(self, lfo_clock(effect), len(effect.knobs))


class SweptDelayNetwork(nn.Module):
    """The input and one LFO-swept delayed voice, their parts predicted from the knobs (see the module docstring)."""

    network_type = "SweptDelay"
    latency_samples = 0
    restarts_with_render = True

    def __init__(self, config: SweptDelayConfig, lfo: dict[str, Any], knobs: int):
        super().__init__()
        self.config, self.lfo, self.knobs = config, dict(lfo), int(knobs)
        start = [1.0, 0.0, config.max_delay_ms / 2] + [0.0] * (2 * config.harmonics)  # the dry sound
        self.parts = KnobMap(self.knobs, SWEEP + 2 * config.harmonics, config.hidden, start)
        self.start_record: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> SweptDelayNetwork:
        values = dict(settings)
        lfo, knobs = values.pop("lfo"), values.pop("knobs")
        return cls(SweptDelayConfig(**values), lfo, knobs)

    def settings(self) -> dict[str, Any]:
        return {**asdict(self.config), "lfo": self.lfo, "knobs": self.knobs}

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def delay_and_gains(
        self, control: torch.Tensor, first_sample: int, samples: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For controls (B, knobs): the delay in samples at render samples ``first_sample ..`` (B, samples), and the
        dry and wet gains (B, 1, 1)."""
        parts = self.parts(control)
        phase = lfo_phase(self.lfo, control, first_sample, samples, SAMPLE_RATE_HZ)
        h = torch.arange(1, self.config.harmonics + 1, device=control.device, dtype=phase.dtype)
        angles = phase[:, None, :] * h[None, :, None]  # (B, H, samples)
        sines = parts[:, SWEEP : SWEEP + self.config.harmonics, None]
        cosines = parts[:, SWEEP + self.config.harmonics :, None]
        sweep_ms = (sines * torch.sin(angles) + cosines * torch.cos(angles)).sum(dim=1)
        delay = ((parts[:, CENTRE_MS, None] + sweep_ms) * (SAMPLE_RATE_HZ / 1000)).clamp(
            1.0, float(self.config.max_delay_samples)
        )
        return delay, parts[:, DRY, None, None], parts[:, WET, None, None]

    def forward(self, x: torch.Tensor, control: torch.Tensor, first_input_sample: int = 0) -> torch.Tensor:
        """(B, 1, T) and (B, knobs) to (B, 1, T - receptive_field + 1). ``first_input_sample`` is the render sample
        ``x[..., 0]`` is (training crops start the real effect, and its LFO, at their first sample)."""
        first = self.receptive_field - 1
        delay, dry, wet = self.delay_and_gains(control, first_input_sample + first, x.shape[-1] - first)
        return dry * x[..., first:] + wet * read_delayed(x, delay, first)

    def stream(self, control: torch.Tensor) -> SweptDelayStream:
        return SweptDelayStream(self, control)

    @torch.no_grad()
    def start_from(self, next_batch: Batches) -> None:
        """Set the knob map's affine part from measurements on training batches (see the module docstring)."""
        crops = []
        for step in range(self.config.start_batches):
            dry, control, wet = next_batch(step)
            crops += list(zip(dry[:, 0].double().numpy(), control.float(), wet[:, 0].double().numpy(), strict=True))
        rows = [(crop, *row) for crop, (x, control, y) in enumerate(crops) for row in self._window_lags(x, control, y)]
        record: dict[str, Any] = {"crops": len(crops), "windows": len(rows)}
        try:
            knobs = np.stack([row[1] for row in rows])
            crop_of, lag_ms, phase = (np.array([row[i] for row in rows]) for i in (0, 2, 3))
            sin, cos = np.sin(phase)[:, None], np.cos(phase)[:, None]
            design = np.concatenate([knobs, knobs * sin, knobs * cos, sin, cos], axis=1)
            tolerance = LAG_TOLERANCE * 1000 / SAMPLE_RATE_HZ
            w, b, kept = fit_affine(design, lag_ms, tolerance, groups=crop_of, draw=CROPS_PER_DRAW)
        except ValueError as exc:  # too few windows agree: keep the starting point (a short run on little material)
            self.start_record = {**record, "not_measured": str(exc)}
            return
        count = knobs.shape[1]
        sweep = {
            "centre_ms": (CENTRE_MS, w[:count], b),
            "sin_ms": (SWEEP, w[count : 2 * count], w[3 * count]),
            "cos_ms": (SWEEP + self.config.harmonics, w[2 * count : 3 * count], w[3 * count + 1]),
        }
        for name, (output, weights, bias) in sweep.items():
            self.parts.set_affine(output, weights, bias)
            record[name] = np.round([*weights, bias], 4).tolist()
        record["sweep_fit_windows"] = int(kept.sum())
        gains = np.stack([self._gains(x, control, y) for x, control, y in crops])
        crop_knobs = np.stack([control.numpy() for _, control, _ in crops]).astype(float)
        for output, values, name in ((DRY, gains[:, 0], "dry_gain"), (WET, gains[:, 1], "wet_gain")):
            try:
                weights, bias, _ = fit_affine(crop_knobs, values)
            except ValueError as exc:
                record[f"{name}_not_measured"] = str(exc)
                continue
            self.parts.set_affine(output, weights, bias)
            record[name] = np.round([*weights, bias], 4).tolist()
        self.start_record = record

    def _window_lags(
        self, x: np.ndarray, control: torch.Tensor, y: np.ndarray
    ) -> list[tuple[np.ndarray, float, float]]:
        """The crop's windows whose lag agrees with one sweep over the crop: per window the knobs, the lag of the
        strongest copy of the input in the output (in milliseconds) and the LFO phase at the window's centre."""
        window, max_lag, offset = self.config.window, self.config.max_delay_samples, len(x) - len(y)
        phases = lfo_phase(self.lfo, control[None], offset, len(y), SAMPLE_RATE_HZ)[0].double().numpy()
        lags, centres = [], []
        for start in range(0, len(y) - window + 1, window // 2):
            reference = x[offset + start - max_lag : offset + start + window]
            lags.append(strongest_lag(reference, y[start : start + window], MIN_MEASURED_LAG, max_lag, whiten=False))
            centres.append(float(phases[start + window // 2]))
        phase = np.array(centres)
        try:  # one sweep c + s sin phase + t cos phase through the crop's windows
            _, _, kept = fit_affine(
                np.stack([np.sin(phase), np.cos(phase)], axis=1), np.array(lags, float), LAG_TOLERANCE
            )
        except ValueError:
            return []
        to_ms = 1000 / SAMPLE_RATE_HZ
        knobs = control.double().numpy()
        return [(knobs, lag * to_ms, p) for lag, p, keep in zip(lags, centres, kept, strict=True) if keep]

    def _gains(self, x: np.ndarray, control: torch.Tensor, y: np.ndarray) -> np.ndarray:
        """One crop's least-squares gains of the input and of the voice on the network's (measured) sweep."""
        delay, _, _ = self.delay_and_gains(control[None], len(x) - len(y), len(y))
        return copy_gains(x, y, [np.zeros(len(y)), delay[0].double().numpy()])


class SweptDelayStream:
    """Renders a :class:`SweptDelayNetwork` block by block: the last ``receptive_field - 1`` input samples as
    history and a sample counter for the LFO."""

    def __init__(self, model: SweptDelayNetwork, control: torch.Tensor):
        self.model = model
        self.control = control.reshape(1, -1).float().to(model.parts.affine.weight.device)
        self.position = 0  # render samples done
        self.history = SampleHistory(model.receptive_field - 1)

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        first = self.history.samples
        joined = self.history.join(x)
        delay, dry, wet = self.model.delay_and_gains(self.control, self.position, x.shape[-1])
        self.position += x.shape[-1]
        voice = read_delayed(joined, delay.expand(x.shape[0], -1), first)
        return dry * x + wet * voice
