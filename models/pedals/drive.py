"""A gray-box drive chain for the fuzz and the amp: filter, curve, filter (a Wiener-Hammerstein network).

Both pedals are a linear filter into a gain and a memoryless clipper, then linear filters (the fuzz: a high-pass,
an asymmetric clipper, a DC blocker and a tone low-pass; the amp: a high-pass, a tanh drive, a presence shelf, a
mid cut and a cabinet). A TCN must rebuild that curve at every level and knob setting from piecewise-linear pieces,
and after 8 minutes on a loaded CPU the fuzz TCN stayed worse than the dry input at 4 of 9 knob-grid points and the
amp TCN 14 dB off in loudness. Here the network has the chain's shape, and every part of it is predicted from the
knobs by one small MLP (``models.tcn.knob_embedding``; all but the amp's input high-pass and output equaliser,
below) and learnt or measured from the training pairs; nothing of the real chain's numbers (cut-offs, gains, bias,
cabinet) is written into it:

- **input high-pass** (``pre_highpass``, the amp): a first-order high-pass whose cut-off is one learnt number,
  the same at every knob position; it starts at 20 Hz (all but open);
- **pre-filter**: ``pre_taps`` causal FIR taps from ``pre_sections`` biquads and ``pre_fir`` free taps
  (``models.conditioned_filter``): what the clipper hears (a high-pass, a tilt, the drive's level);
- **curve**: the waveshaper's memoryless curve (``models.waveshaper.curve_head``),
  ``f(x) = a x + sum_i v_i (tanh(g_i x + b_i) - tanh(b_i))`` over ``units`` tanh units; the units' starting
  gains are spread evenly in dB over ``unit_gain_db`` (-12..+48 dB by default: with the pre-filter's own gain a
  fuzz's 46 dB is in reach), the offsets ``b_i`` make asymmetric clipping, ``f(0) = 0``;
- **post-filter**: ``post_taps`` taps from ``post_sections`` biquads and ``post_fir`` free taps: a DC blocker, a
  tone control, a cabinet (2048 taps = 46 ms at 44.1 kHz, longer than a 20 ms cabinet response), the output level;
- **output equaliser** (``output_eq_taps``, the amp): a knob-independent minimum-phase FIR measured, not learnt:
  after gradient descent, :meth:`DriveChain.finish_from` runs the chain on training crops of 16,384 samples and
  makes it the matching equaliser of ``models.pedals.matching_eq`` (the long-term spectrum of the real effect's
  output over the chain's, 1/6-octave smoothed). It is a buffer saved with the weights.

It starts as the identity (both filters one unit tap, the curve ``f(x) = x``, the equaliser one unit tap), is
causal with no latency, and its receptive field is ``pre_taps + post_taps - 1`` samples plus
``output_eq_taps - 1``. Silence in gives exact silence out whatever the knobs. The filters run as FFT convolutions
in training and in streaming alike; :class:`DriveStream` keeps the last ``pre_taps - 1`` input samples and the
last shaped samples between blocks, so block-by-block output equals one pass over the whole signal with silence in
front.

Why the amp has the two extra parts. Trained without them (10 minutes, then resumed twice for 8 with the band-level
term), the amp came out 3 to 4 dB short at 90 to 200 Hz and 5 to 8 dB too loud at 40 to 60 Hz on every clip and
knob setting, 2.3 dB of loudness on a synth bass line: its cabinet's low resonance, which short STFT frames barely
resolve. The measured equaliser fixed that part (geometric mean 0.287 -> 0.175) but left the bass 3 dB short at
130 to 200 Hz when driven hard (loudness 1.47 dB): the learnt pre-filter had no high-pass at all, so the clipper
heard the bass's fundamental at full level where the real amp's 90 Hz input high-pass takes it down, a difference
that only shows on driven bass. Gradient descent did not put a zero at 0 Hz into a biquad; given a high-pass
whose cut-off is a single parameter, it moved it from 20 Hz to 83 Hz in one resumed run of 8 minutes, and the amp
met every goal: 0.109 of the dry input's MR-STFT (worst point 0.165), loudness within 0.45 dB. Trained afresh
with both parts from the first step (``--minutes 10``, then ``--resume --minutes 8`` twice), the high-pass moved
early (to 108-136 Hz) while the rest was far off and the chain settled elsewhere (0.353 of dry). So a fresh run
follows that path in one command (``settle_fraction``, ``hold_late_parts``; ``train_pedal`` runs the stages): 70 %
of the budget with the high-pass held at its start, then the equaliser measured, then the rest at a quarter of the
learning rate with the high-pass free, then the equaliser measured again. Shipped: ``reatimbre train-effect
--effect amp --threads 1`` (the recipe's 30 minutes or 20,000 steps; 14,000 + 6,000 steps in 1,294 s at load
2-5): cut-off 85 Hz (real 90), 0.074 of the dry input's MR-STFT (worst point 0.114), loudness within 0.23 dB, every
segment nearer the real amp. The fuzz keeps neither: it meets its goals without them
(``reatimbre train-effect --effect fuzz --minutes 10``, then ``--resume --minutes 8``: 0.184, loudness 0.41 dB).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from models.conditioned_filter import ConditionedFilter, fir_convolve
from models.effects import ReferenceEffect
from models.errors import ReaTimbreError
from models.pedals.matching_eq import SpectrumPair, matching_magnitude, minimum_phase_fir
from models.rates import SAMPLE_RATE_HZ
from models.stream_history import SampleHistory
from models.tcn import knob_embedding
from models.waveshaper import ConditionedWaveshaper, curve_coefficients, curve_head

HIGHPASS_START_HZ = 20.0  # the input high-pass starts here (all but open for music) and is learnt from there
HIGHPASS_RATE = 4.0  # its log cut-off is a parameter times this

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # dry (B, 1, T), knobs (B, K), wet (B, 1, segment)


def unit_taps(count: int) -> torch.Tensor:
    """``count`` FIR taps that pass a signal unchanged."""
    taps = torch.zeros(count)
    taps[0] = 1.0
    return taps


def first_order_highpass(taps: torch.Tensor, log_cutoff_hz: torch.Tensor) -> torch.Tensor:
    """Each row of ``taps`` (B, K) followed by a first-order high-pass (unit gain at Nyquist, zero at 0 Hz) of
    cut-off ``exp(log_cutoff_hz)`` Hz (at most a quarter of the sample rate): (B, K) taps, the combined response
    truncated to K. No lower bound, so that the gradient never stops: a cut-off so low that its response outlasts
    the taps is a slightly different high-pass, rendered the same way in training and streaming."""
    count = taps.shape[-1]
    cutoff = torch.clamp(torch.exp(log_cutoff_hz), max=SAMPLE_RATE_HZ / 4)
    pole = torch.exp(-2 * math.pi * cutoff / SAMPLE_RATE_HZ)
    n = torch.arange(count - 1, dtype=taps.dtype, device=taps.device)
    highpass = torch.cat([((1 + pole) / 2).reshape(1), -(1 + pole) / 2 * (1 - pole) * pole**n])
    size = 2 * count
    return torch.fft.irfft(torch.fft.rfft(taps, size) * torch.fft.rfft(highpass, size), size)[..., :count]


def full_convolution(taps: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Each row of ``taps`` (B, K) convolved with ``other`` (L,): (B, K + L - 1) taps, one filter after the other."""
    size = taps.shape[-1] + other.shape[-1] - 1
    return torch.fft.irfft(torch.fft.rfft(taps, size) * torch.fft.rfft(other, size), size)


@dataclass(frozen=True)
class DriveConfig:
    """Hyperparameters of a :class:`DriveChain`."""

    cond_dim: int = 2
    cond_hidden: int = 32
    units: int = 16  # tanh units of the curve
    unit_gain_db: tuple[float, float] = (-12.0, 48.0)  # the units' starting gains, spread evenly in dB
    pre_taps: int = 1024
    pre_sections: int = 2
    pre_fir: int = 16
    post_taps: int = 2048
    post_sections: int = 8
    post_fir: int = 64
    output_eq_taps: int = 0  # a matching equaliser after the post-filter, measured after training (0: none)
    output_eq_fft: int = 4096  # the FFT that measures it (at most the training crops' length)
    pre_highpass: bool = False  # an input coupling high-pass (first order, learnt cut-off) before the pre-filter
    settle_fraction: float = 0.0  # share of a fresh run trained before the high-pass is freed and the EQ measured

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit_gain_db", tuple(float(g) for g in self.unit_gain_db))  # JSON gives a list
        if not 0.0 <= self.settle_fraction < 1.0:
            raise ValueError("settle_fraction must be in [0, 1)")
        if self.output_eq_taps < 0 or self.output_eq_fft < 2:
            raise ValueError("output_eq_taps must be >= 0 and output_eq_fft >= 2")
        if min(self.cond_dim, self.cond_hidden, self.units, self.pre_fir, self.post_fir) < 1:
            raise ValueError("cond_dim, cond_hidden, units, pre_fir and post_fir must be positive")
        if (
            self.pre_taps < self.pre_fir
            or self.post_taps < self.post_fir
            or min(self.pre_sections, self.post_sections) < 0
        ):
            raise ValueError("a filter needs at least its free taps and no negative section count")

    @property
    def receptive_field(self) -> int:
        return self.pre_taps + self.post_taps - 1 + max(0, self.output_eq_taps - 1)

    def to_dict(self) -> dict:
        return asdict(self)

    def build(self, effect: ReferenceEffect) -> DriveChain:
        """The network for ``effect``: its knobs are the control vector; a drive chain has no latency."""
        if len(effect.knobs) != self.cond_dim:
            raise ReaTimbreError(
                f"the {effect.name} effect has {len(effect.knobs)} knobs, the drive chain {self.cond_dim}"
            )
        if effect.latency_samples or effect.lfo is not None:
            raise ReaTimbreError(f"a drive chain has no latency and no LFO, which the {effect.name} effect has")
        return DriveChain(self)


class DriveChain(nn.Module):
    """Pre-filter, memoryless curve, post-filter, each predicted from the control vector (the knobs)."""

    network_type = "DriveChain"  # the sidecar's architecture type (models.networks)
    latency_samples = 0  # causal: the output lines up with the input
    output_eq: torch.Tensor  # a buffer, when the config has an output equaliser

    def __init__(self, config: DriveConfig | None = None):
        super().__init__()
        self.config = config or DriveConfig()
        c = self.config
        self.cond_mlp = knob_embedding(c.cond_dim, c.cond_hidden)
        self.pre = ConditionedFilter(c.cond_hidden, c.pre_sections, c.pre_fir, c.pre_taps)
        gains = tuple(10 ** (g / 20) for g in c.unit_gain_db)
        self.curve = curve_head(c.cond_hidden, c.units, (gains[0], gains[1]))
        self.post = ConditionedFilter(c.cond_hidden, c.post_sections, c.post_fir, c.post_taps)
        if c.output_eq_taps:  # a buffer, not a parameter: measured by finish_from, saved with the weights
            self.register_buffer("output_eq", unit_taps(c.output_eq_taps))
        if c.pre_highpass:  # the cut-off's log, over HIGHPASS_RATE (Adam moves it that much faster)
            start = math.log(HIGHPASS_START_HZ) / HIGHPASS_RATE
            self.pre_highpass_log_hz = nn.Parameter(torch.tensor(start))

    @classmethod
    def from_settings(cls, settings: dict) -> DriveChain:
        """The network a sidecar's architecture settings describe (``type`` removed)."""
        return cls(DriveConfig(**settings))

    def settings(self) -> dict:
        """The architecture settings a sidecar records."""
        return self.config.to_dict()

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def coefficients(self, cond: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
        """For controls (B, cond_dim): the pre-filter's taps (B, pre_taps), the curve's slope, unit gains, offsets
        and weights (``ConditionedWaveshaper.shape``'s arguments), and the post-filter's taps (B, post_taps)."""
        embedding = self.cond_mlp(cond)
        curve = curve_coefficients(self.curve(embedding), self.config.units)
        pre, post = self.pre(embedding), self.post(embedding)
        if self.config.pre_highpass:
            pre = first_order_highpass(pre, HIGHPASS_RATE * self.pre_highpass_log_hz)
        if self.config.output_eq_taps:
            post = full_convolution(post, self.output_eq)
        return pre, curve, post

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Map input (B, 1, T) and control (B, cond_dim) to (B, 1, T - receptive_field + 1)."""
        pre, curve, post = self.coefficients(cond)
        return fir_convolve(ConditionedWaveshaper.shape(fir_convolve(x, pre), *curve), post)

    @torch.no_grad()
    def finish_from(self, next_batch: Callable[[int], Batch], batches: int = 48) -> None:
        """Measure the output equaliser (``models.pedals.matching_eq``) on ``batches`` training batches: the
        minimum-phase filter that gives this chain's output the long-term spectrum of the real effect's. A no-op
        without one (``output_eq_taps`` 0)."""
        if not self.config.output_eq_taps:
            return
        self.output_eq.copy_(unit_taps(self.config.output_eq_taps))
        device = self.curve.weight.device
        pair: SpectrumPair | None = None
        for step in range(batches):
            x, control, wet = next_batch(step)
            out = self(x.to(device), control.to(device))[:, 0].cpu().numpy()
            target = wet[:, 0, -out.shape[-1] :].numpy()
            if pair is None:
                pair = SpectrumPair(min(self.config.output_eq_fft, 1 << (out.shape[-1].bit_length() - 1)))
            pair.add(out, target)
        assert pair is not None
        taps = minimum_phase_fir(matching_magnitude(pair), self.config.output_eq_taps)
        self.output_eq.copy_(torch.from_numpy(taps).to(self.output_eq))

    @property
    def settle_fraction(self) -> float:
        """The share of a fresh training run trained with the input high-pass held (``hold_late_parts``)."""
        return self.config.settle_fraction

    def hold_late_parts(self, held: bool) -> None:
        """Hold the input high-pass at its start (gradient descent leaves it) or free it; the output equaliser is
        measured, never learnt."""
        if self.config.pre_highpass:
            self.pre_highpass_log_hz.requires_grad_(not held)

    def takes_weights_of(self, saved: nn.Module) -> bool:
        """Load a saved chain that differs from this one only in its output equaliser's settings (``finish_from``
        measures the equaliser afresh) or by having no input high-pass (this one's starts at
        :data:`HIGHPASS_START_HZ`): True when it did."""
        if not isinstance(saved, DriveChain):
            return False
        own = self.config
        expected = replace(
            saved.config,
            output_eq_taps=own.output_eq_taps,
            output_eq_fft=own.output_eq_fft,
            settle_fraction=own.settle_fraction,
            pre_highpass=saved.config.pre_highpass or own.pre_highpass,  # one added starts all but open
        )
        if expected != own:
            return False
        state = {k: v for k, v in saved.state_dict().items() if k != "output_eq"}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"output_eq", "pre_highpass_log_hz"}:
            raise ValueError(f"a drive chain's weights did not fit: missing {missing}, unexpected {unexpected}")
        return True

    def stream(self, cond: torch.Tensor) -> DriveStream:
        """A block-by-block renderer for one fixed control vector ``cond`` of shape (cond_dim,)."""
        return DriveStream(self, cond)


class DriveStream:
    """Renders a :class:`DriveChain` block by block; the batch (audio channels) is fixed by the first block."""

    def __init__(self, model: DriveChain, cond: torch.Tensor):
        device = model.curve.weight.device
        with torch.inference_mode():
            self._pre, self._curve, self._post = model.coefficients(cond.reshape(1, -1).float().to(device))
        self._inputs = SampleHistory(self._pre.shape[-1] - 1)  # the last pre-filter taps - 1 input samples
        self._shaped = SampleHistory(self._post.shape[-1] - 1)  # the last post-filter taps - 1 shaped samples

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Render the next block: (B, 1, L) in, (B, 1, L) out."""
        batch = x.shape[0]
        inputs = self._inputs.join(x)
        shaped = ConditionedWaveshaper.shape(fir_convolve(inputs, self._pre.expand(batch, -1)), *self._curve)
        return fir_convolve(self._shaped.join(shaped), self._post.expand(batch, -1))
