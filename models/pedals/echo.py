"""A gray-box echo: the input, plus a feedback delay line, each part predicted from the knobs.

The network has the shape of a tape or digital echo and learns every number of it from the training pairs:

    y[n] = a(k) x[n] + b(k) w[n],    w[n] = x[n - D(k)] + g(k) w[n - D(k)]

with the dry gain ``a``, the wet gain ``b``, the delay ``D`` (in milliseconds, turned into whole samples) and the
feedback ``g`` given by a :class:`~models.pedals.knob_map.KnobMap` of the knobs (an affine map plus a small MLP's
correction). The delay is rounded to whole samples on the way forward, with the gradient of the unrounded delay
(straight through): a delay line without interpolation, whose echoes stay as sharp as the input. Training runs
the recursion in the frequency domain (:func:`~models.pedals.delay_lines.comb_response`: echoes at ``k D`` with
amplitudes ``g^(k-1)``), a render runs it block by block in chunks of at most ``D`` samples (each chunk's echoes
come from samples already rendered), and the two agree.

The echo never forgets (feedback), so the network's state runs from the first sample of a render
(``restarts_with_render``: training crops start the real effect where the network's input starts), and its
``receptive_field`` is the context a training crop gives before its output: one longest delay (``max_delay_ms``)
of input, so every output sample of a crop can hold its first echo. ``D`` is kept in ``min_delay_ms .. max_delay_ms``
and ``g`` in -0.95 .. 0.95 (a bounded echo).

**The measured start** (:meth:`EchoNetwork.start_from`, before gradient descent). Gradient descent cannot move a
delay by thousands of samples, so on ``start_batches`` training batches (random crops at random knob positions,
the real effect's output beside each) the network measures, per crop, the lag of the strongest delayed copy of
the input in the output once its least-squares copy at lag 0 (the dry path) is taken out (GCC-PHAT,
:mod:`models.pedals.lag_measure`, lags of ``min_delay_ms .. max_delay_ms``), and the least-squares gains of the
input at lags 0, D and 2 D (the dry gain, the first echo's, and the second's, whose ratio to the first is the
feedback). The delay is fitted affine in the knobs by random-sample consensus (the crops within 1.5 samples of one
fit through 4 crops, confirmed by as many others; tonal crops give wrong lags), the gains and the feedback affine
in the knobs on the agreeing crops (the feedback only where the first echo is heard), and all four set the knob
map's affine part (a part whose measurements do not agree keeps its starting value); gradient descent then refines
everything. What was measured is kept in ``start_record``. In a check on 64 training crops (seed 0) 36 agreed and
the start was the real chain's to a sample: delay 340.006 t + 59.990 ms for the time knob t (real: 340 t + 60),
dry gain 0.900 - 0.500 m and wet gain 0.101 + 0.498 m for the mix knob m (real: 1 - mix and mix, mix = 0.1 + 0.5 m),
feedback 0.604 f (real: 0.6 f). Training the shipped delay, gradient descent did not better it on validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.effects import ReferenceEffect
from models.pedals.delay_lines import comb_response, fft_convolve, rounded
from models.pedals.knob_map import KnobMap, fit_affine
from models.pedals.lag_measure import copy_gains, strongest_lag
from models.rates import SAMPLE_RATE_HZ

DRY, WET, DELAY_MS, FEEDBACK = range(4)  # the knob map's outputs
MAX_FEEDBACK = 0.95
LAG_TOLERANCE = 1.5  # samples: a measured lag this near the fit agrees with it
MEASURABLE_ECHO = 0.05  # an echo's gain below which its crop tells nothing about the feedback

Batches = Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class EchoConfig:
    """Hyperparameters of an :class:`EchoNetwork`."""

    hidden: int = 32  # of the knob map's MLP
    min_delay_ms: float = 10.0  # the shortest echo the network can learn (a render runs in chunks of the delay)
    max_delay_ms: float = 1000.0  # the longest delay the network can learn (and the training crops' context)
    start_batches: int = 16  # training batches measured for the start

    @property
    def min_delay_samples(self) -> int:
        return max(1, round(self.min_delay_ms * SAMPLE_RATE_HZ / 1000))

    @property
    def max_delay_samples(self) -> int:
        return round(self.max_delay_ms * SAMPLE_RATE_HZ / 1000)

    @property
    def receptive_field(self) -> int:
        return self.max_delay_samples + 1

    def build(self, effect: ReferenceEffect) -> EchoNetwork:
        return EchoNetwork(self, len(effect.knobs))


class EchoNetwork(nn.Module):
    """A feedback delay line mixed with the input, its parts predicted from the knobs (see the module docstring)."""

    network_type = "EchoDelay"
    latency_samples = 0
    restarts_with_render = True

    def __init__(self, config: EchoConfig, knobs: int):
        super().__init__()
        self.config, self.knobs = config, int(knobs)
        start = [1.0, 0.0, config.max_delay_ms / 2, 0.0]  # the dry sound, an echo not yet heard
        self.parts = KnobMap(self.knobs, 4, config.hidden, start)
        self.start_record: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> EchoNetwork:
        values = dict(settings)
        knobs = values.pop("knobs")
        return cls(EchoConfig(**values), knobs)

    def settings(self) -> dict[str, Any]:
        return {**asdict(self.config), "knobs": self.knobs}

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def coefficients(self, control: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For controls (B, knobs): dry gain, wet gain, delay in samples (unrounded) and feedback, each (B,)."""
        parts = self.parts(control)
        delay = (parts[:, DELAY_MS] * (SAMPLE_RATE_HZ / 1000)).clamp(
            float(self.config.min_delay_samples), float(self.config.max_delay_samples)
        )
        return parts[:, DRY], parts[:, WET], delay, parts[:, FEEDBACK].clamp(-MAX_FEEDBACK, MAX_FEEDBACK)

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) and (B, knobs) to (B, 1, T - receptive_field + 1); the echo runs from ``x``'s first sample."""
        dry, wet, delay, feedback = self.coefficients(control)
        echoes = fft_convolve(x, comb_response(rounded(delay), feedback, x.shape[-1]))
        y = dry[:, None, None] * x + wet[:, None, None] * echoes
        return y[..., self.receptive_field - 1 :]

    def stream(self, control: torch.Tensor) -> EchoStream:
        return EchoStream(self, control)

    @torch.no_grad()
    def start_from(self, next_batch: Batches) -> None:
        """Set the knob map's affine part from measurements on training batches (see the module docstring)."""
        knob_rows, lags, gains = [], [], []
        for step in range(self.config.start_batches):
            dry, control, wet = next_batch(step)
            for x, y, knobs in zip(
                dry[:, 0].double().numpy(), wet[:, 0].double().numpy(), control.numpy(), strict=True
            ):
                max_lag = min(self.config.max_delay_samples, len(x) - len(y))
                lag = strongest_lag(x[len(x) - len(y) - max_lag :], y, self.config.min_delay_samples, max_lag)
                steps = np.ones(len(y))
                knob_rows.append(knobs)
                lags.append(lag)
                gains.append(copy_gains(x, y, [0 * steps, lag * steps, 2 * lag * steps]))
        knobs, measured, lag_ms = (
            np.stack(knob_rows).astype(float),
            np.stack(gains),
            np.array(lags) * 1000 / SAMPLE_RATE_HZ,
        )
        record: dict[str, Any] = {"crops": len(lags)}
        try:
            w, b, kept = fit_affine(knobs, lag_ms, tolerance=LAG_TOLERANCE * 1000 / SAMPLE_RATE_HZ)
        except ValueError as exc:  # too few crops agree: keep the starting point (a short run on little material)
            self.start_record = {**record, "not_measured": str(exc)}
            return
        fits = [(DELAY_MS, "delay_ms", w, b)]
        echoing = kept & (np.abs(measured[:, 1]) > MEASURABLE_ECHO)
        ratio = np.clip(measured[:, 2] / np.where(echoing, measured[:, 1], 1.0), -MAX_FEEDBACK, MAX_FEEDBACK)
        for output, name, rows, values in (
            (DRY, "dry_gain", kept, measured[:, 0]),
            (WET, "wet_gain", kept, measured[:, 1]),
            (FEEDBACK, "feedback", echoing, ratio),
        ):
            try:
                fits.append((output, name, *fit_affine(knobs[rows], values[rows])[:2]))
            except ValueError as exc:
                record[f"{name}_not_measured"] = str(exc)
        for output, name, weights, bias in fits:
            self.parts.set_affine(output, weights, bias)
            record[name] = np.round([*weights, bias], 4).tolist()
        self.start_record = {**record, "delay_fit_crops": int(kept.sum())}


class EchoStream:
    """Renders an :class:`EchoNetwork` block by block: the last ``max_delay`` input and echo samples as history, and
    the recursion in chunks of at most ``D`` samples."""

    def __init__(self, model: EchoNetwork, control: torch.Tensor):
        with torch.inference_mode():
            dry, wet, delay, feedback = model.coefficients(
                control.reshape(1, -1).float().to(model.parts.affine.weight.device)
            )
        self.dry, self.wet, self.feedback = float(dry), float(wet), float(feedback)
        self.delay = int(torch.round(delay).item())
        self.history = model.config.max_delay_samples
        self.inputs: torch.Tensor | None = None  # (B, 1, history): the last input samples
        self.echoes: torch.Tensor | None = None  # (B, 1, history): the last w samples

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        if self.inputs is None or self.echoes is None:
            self.inputs = x.new_zeros(x.shape[0], 1, self.history)
            self.echoes = x.new_zeros(x.shape[0], 1, self.history)
        out = []
        for start in range(0, x.shape[-1], self.delay):
            chunk = x[..., start : start + self.delay]
            size = chunk.shape[-1]
            first = self.history - self.delay  # w[n] reads x and w D samples back: all in the history
            echo = self.inputs[..., first : first + size] + self.feedback * self.echoes[..., first : first + size]
            self.inputs = torch.cat((self.inputs[..., size:], chunk), dim=-1)
            self.echoes = torch.cat((self.echoes[..., size:], echo), dim=-1)
            out.append(self.dry * chunk + self.wet * echo)
        return torch.cat(out, dim=-1) if out else x.clone()
