"""An octave-down as a gray-box network: a measured divider, a learnt knob-conditioned sub filter and dry gain.

A network cannot learn a frequency divider from samples in minutes (the conditioned TCN reached only half the dry
input's distance to the real octave pedal after eight CPU minutes). Here a flip-flop divider is a fixed primitive,
as the chorus network is given its LFO's phase, and what surrounds it is taken from the training pairs:

    d(n)   = H_detect(x)(n)                                   detection low-pass (measured)
    s(n)   = +-1, flipping on each rising crossing of d        the divider (fixed; its hysteresis measured)
    out(n) = g_dry x(n - latency) + H_sub(s d)(n)             sub filter and dry gain (from the knobs, learnt)

- **detection low-pass** ``H_detect``: a one-pole low-pass ``(1 - p) / (1 - p z^-1)``, unit gain at DC,
  ``p = exp(-2 pi f / sample_rate)`` at ``detect_cutoff_hz``. ``s d`` is a full-wave "folded" copy of ``d`` whose
  fundamental is half the input's;
- **divider** ``s``: starts at +1 and flips at the first sample above ``+h`` after a sample below ``-h``, ``h`` =
  ``hysteresis_db`` dBFS. Its toggling is not differentiable (a constant in the backward pass);
- **sub filter** ``H_sub``: a sum of ``sub_poles`` one-pole low-passes, each with its own cutoff (log-scaled within
  ``min_cutoff_hz`` .. ``max_cutoff_hz``) and gain (either sign: a low-pass, or a band-pass from two sections of
  opposite signs) from the knobs; its gains also set the sub voice's level (the mix);
- **dry path**: the input delayed by the declared latency (the real effect's, from its record, as
  :class:`~models.pedals.lfo_tcn.LFOTCN` declares it: 18 samples for the octave), times a gain from the knobs.

The sub filter's cutoffs and gains and the dry gain come from one small MLP over the knobs
(:func:`models.tcn.knob_embedding`) and one linear head, learnt by gradient descent on the MR-STFT of training
crops. Before it, :meth:`OctaveDivider.start_from` measures a starting point on training pairs
(:mod:`models.pedals.divider_start`): the detection cutoff and the hysteresis, whose least-squares fit of the real
output has a sharp minimum that gradient descent cannot see (the square is a constant to it; trained through ``s d``
alone, the detection cutoff drifted from the measured 396 Hz to 150..310 Hz and the held-out ratio rose from 0.22 to
0.47, worse than dry at one grid point, in two minutes of training), and the sub filter's first section and the dry
gain at each training pair's knobs, to which the head is fitted. The measured values are recorded in the
architecture settings (``detect_cutoff_hz``, ``hysteresis_db``, ``measured``); gradient descent leaves the detection
low-pass and the hysteresis as measured. An unmeasured network starts as the dry sound (dry gain 1, sub gains 0)
with its sub cutoffs spread log-evenly over 80 Hz .. 3.2 kHz and its detection at 500 Hz (generic starts, not the
real effect's values).

The divider's parity depends on every sample since the render began, so the network has
``restarts_with_render = True``: training crops start the real effect where the network's input starts, and both
start from silence. :meth:`OctaveDivider.forward` runs the one-pole sections as FFT convolutions with their
impulse responses over the whole crop (exact for a crop that starts from silence) and gives the last
``T - receptive_field + 1`` samples; ``receptive_field`` (``context_samples``) is how much of the crop settles the
filters and the divider before the loss looks. :class:`DividerStream` runs the same sections as recursions in
float64 and carries every state across blocks: the filters', the divider's (its parity and the sign of the last
sample outside the hysteresis band) and the dry path's last ``latency`` samples, so block by block equals one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import signal
from torch import nn

from models.rates import SAMPLE_RATE_HZ
from models.tcn import knob_embedding

if TYPE_CHECKING:
    from models.effects import ReferenceEffect

START_CUTOFFS_HZ = (80.0, 3200.0)  # the sub sections start at cutoffs spread log-evenly over this band
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # dry (B, 1, T), knobs (B, K), wet (B, 1, segment)


@dataclass(frozen=True)
class DividerConfig:
    """Hyperparameters of an :class:`OctaveDivider`; ``build`` fills in the effect's knob count and latency."""

    cond_dim: int = 2
    cond_hidden: int = 32
    sub_poles: int = 3  # one-pole sections of the sub filter
    context_samples: int = 2048  # the receptive field: input that settles filters and divider before the output
    detect_cutoff_hz: float = 500.0  # the detection low-pass (start_from measures it on the training pairs)
    hysteresis_db: float = -60.0  # the divider ignores crossings within +-this level, dBFS (start_from measures it)
    min_cutoff_hz: float = 20.0
    max_cutoff_hz: float = 20_000.0
    latency: int = 0  # samples the dry path is delayed by: the latency the network declares
    sample_rate: int = SAMPLE_RATE_HZ
    measured: bool = False  # whether start_from measured the detection cutoff and the hysteresis

    def __post_init__(self) -> None:
        if min(self.cond_dim, self.cond_hidden, self.sub_poles) < 1:
            raise ValueError("cond_dim, cond_hidden and sub_poles must be positive")
        if not 0 <= self.latency < self.context_samples:
            raise ValueError(f"the latency ({self.latency}) must be below the context ({self.context_samples})")
        if not 0 < self.min_cutoff_hz <= self.detect_cutoff_hz <= self.max_cutoff_hz < self.sample_rate / 2:
            raise ValueError("the cutoffs must lie within min_cutoff_hz..max_cutoff_hz, below the Nyquist frequency")

    @property
    def receptive_field(self) -> int:
        return self.context_samples

    @property
    def head_size(self) -> int:
        return 2 * self.sub_poles + 1

    def build(self, effect: ReferenceEffect) -> OctaveDivider:
        """The network for ``effect``: its knob count, and its latency on the dry path."""
        return OctaveDivider(replace(self, cond_dim=len(effect.knobs), latency=effect.latency_samples))


@dataclass(frozen=True)
class DividerParts:
    """The knob-dependent parts for a batch of controls: the sub filter's poles and gains (B, sections) and the dry
    gain (B,)."""

    sub_poles: torch.Tensor
    sub_gains: torch.Tensor
    dry_gain: torch.Tensor


class OctaveDivider(nn.Module):
    """A measured detection low-pass and flip-flop divider, a learnt sub filter and dry gain (module docstring)."""

    network_type = "OctaveDivider"  # the sidecar's architecture type (models.networks)
    restarts_with_render = True  # the divider's parity depends on the whole render

    def __init__(self, config: DividerConfig | None = None):
        super().__init__()
        self.config = config or DividerConfig()
        c = self.config
        self.cond_mlp = knob_embedding(c.cond_dim, c.cond_hidden)
        self.head = nn.Linear(c.cond_hidden, c.head_size)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            self.head.bias[: c.sub_poles] = self._cutoff_logits(c.sub_poles)
            self.head.weight[c.sub_poles : 2 * c.sub_poles].zero_()  # the sub voice starts silent
            self.head.weight[-1].zero_()
            self.head.bias[-1] = 1.0  # the dry path starts at unit gain: the network starts as the dry sound

    def _cutoff_logits(self, count: int) -> torch.Tensor:
        """Logits whose cutoffs spread log-evenly over :data:`START_CUTOFFS_HZ`."""
        c = self.config
        span = math.log(c.max_cutoff_hz / c.min_cutoff_hz)
        low, high = (math.log(f / c.min_cutoff_hz) / span for f in START_CUTOFFS_HZ)
        share = torch.linspace(low, high, count) if count > 1 else torch.tensor([(low + high) / 2])
        return torch.log(share / (1 - share))

    @classmethod
    def from_settings(cls, settings: dict) -> OctaveDivider:
        """The network a sidecar's architecture settings describe (``type`` removed)."""
        return cls(DividerConfig(**settings))

    def settings(self) -> dict[str, Any]:
        """The architecture settings a sidecar records."""
        return asdict(self.config)

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    @property
    def latency_samples(self) -> int:
        return self.config.latency

    @property
    def hysteresis(self) -> float:
        """The divider's threshold, linear."""
        return 10 ** (self.config.hysteresis_db / 20)

    @property
    def detect_pole(self) -> float:
        """The detection low-pass's one-pole coefficient."""
        return math.exp(-2 * math.pi * self.config.detect_cutoff_hz / self.config.sample_rate)

    def parts(self, control: torch.Tensor) -> DividerParts:
        """The sub filter's poles and gains and the dry gain, for controls (B, knobs)."""
        c = self.config
        head = self.head(self.cond_mlp(control))
        s = c.sub_poles
        return DividerParts(sub_poles=self._poles(head[:, :s]), sub_gains=head[:, s : 2 * s], dry_gain=head[:, -1])

    def _poles(self, logits: torch.Tensor) -> torch.Tensor:
        """One-pole coefficients ``exp(-2 pi f / sample_rate)`` for cutoffs ``f`` log-scaled within the range."""
        c = self.config
        cutoff_hz = c.min_cutoff_hz * (c.max_cutoff_hz / c.min_cutoff_hz) ** torch.sigmoid(logits)
        return torch.exp(-2 * math.pi * cutoff_hz / c.sample_rate)

    def detect(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) through the detection low-pass, from silence."""
        return _filtered(x, torch.full((x.shape[0], 1), self.detect_pole, dtype=x.dtype, device=x.device), _ones(x))

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) and (B, knobs) to (B, 1, T - receptive_field + 1): one render from silence, its end."""
        parts = self.parts(control)
        length = x.shape[-1]
        detected = self.detect(x)
        square, _ = divide(detected, self.hysteresis, _fresh_state(x.shape[0], x.device))
        sub = _filtered(square * detected, parts.sub_poles, parts.sub_gains)
        delayed = nn.functional.pad(x, (self.config.latency, 0))[..., :length]
        out = parts.dry_gain[:, None, None] * delayed + sub
        return out[..., self.receptive_field - 1 :]

    def stream(self, control: torch.Tensor) -> DividerStream:
        """A block renderer for one fixed control vector (knobs,)."""
        return DividerStream(self, control)

    @torch.no_grad()
    def start_from(self, next_batch: Callable[[int], Batch]) -> None:
        """Measure the starting point on training pairs before gradient descent (:mod:`models.pedals.divider_start`):
        the detection cutoff and the hysteresis, then the sub filter's first section and the dry gain."""
        from models.pedals.divider_start import start_divider  # it builds on this module's parts

        start_divider(self, next_batch)


def _ones(x: torch.Tensor) -> torch.Tensor:
    return torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)


def _filtered(x: torch.Tensor, poles: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """(B, 1, T) through the sum of one-pole low-passes ``gain (1 - p) / (1 - p z^-1)`` (poles, gains (B, R)),
    from silence: an FFT convolution with the sum's impulse response over the whole length (exact, no truncation)."""
    length = x.shape[-1]
    n = torch.arange(length, device=x.device, dtype=x.dtype)
    responses = (1 - poles)[..., None] * torch.exp(n * torch.log(poles)[..., None])  # (B, R, T)
    kernel = torch.sum(gains[..., None] * responses, dim=1, keepdim=True)  # (B, 1, T)
    size = 1 << (2 * length - 1).bit_length()
    spectrum = torch.fft.rfft(x, size) * torch.fft.rfft(kernel, size)
    return torch.fft.irfft(spectrum, size)[..., :length]


@dataclass
class DividerState:
    """Where a divider stands after a block, per batch row: its parity (0: the square is +1) and the sign of the
    last sample outside the hysteresis band (-1 arms a flip, 0 before any)."""

    parity: torch.Tensor  # (B,) int64
    last_sign: torch.Tensor  # (B,) int64


def _fresh_state(batch: int, device: torch.device) -> DividerState:
    zeros = torch.zeros(batch, dtype=torch.int64, device=device)
    return DividerState(parity=zeros, last_sign=zeros.clone())


def divide(detected: torch.Tensor, hysteresis: float, state: DividerState) -> tuple[torch.Tensor, DividerState]:
    """The flip-flop on (B, 1, T) ``detected``: +-1 of the same shape, flipping at each sample above
    ``+hysteresis`` whose last earlier sample outside the band was below ``-hysteresis`` (a rising crossing), and
    the state after the block. Vectorised: the sign of the last out-of-band sample is carried forward by a
    running maximum of its index."""
    if detected.shape[-1] == 0:
        return torch.ones_like(detected), state
    rows = detected[:, 0]
    sign = (rows > hysteresis).long() - (rows < -hysteresis).long()  # (B, T): +1, -1 or 0 (inside the band)
    length = rows.shape[-1]
    index = torch.arange(length, device=rows.device).expand_as(sign)
    last_index = torch.cummax(torch.where(sign != 0, index, -1), dim=-1).values
    carried = torch.where(
        last_index >= 0, torch.gather(sign, -1, last_index.clamp(min=0)), state.last_sign[:, None]
    )  # the sign of the last out-of-band sample at or before each sample
    before = torch.cat((state.last_sign[:, None], carried[:, :-1]), dim=-1)
    flips = (sign == 1) & (before == -1)
    parity = (state.parity[:, None] + torch.cumsum(flips.long(), dim=-1)) % 2
    square = (1 - 2 * parity).to(detected.dtype)[:, None, :]
    return square, DividerState(parity=parity[:, -1].clone(), last_sign=carried[:, -1].clone())


class DividerStream:
    """Block renderer of an :class:`OctaveDivider`: the one-pole sections as float64 recursions, the divider's
    state and the dry path's history carried across blocks; the batch (audio channels) is fixed by the first block."""

    def __init__(self, model: OctaveDivider, control: torch.Tensor):
        self.model = model
        device = next(model.parameters()).device
        with torch.inference_mode():
            parts = model.parts(control.reshape(1, -1).float().to(device))
        self.detect = _Bank(torch.tensor([model.detect_pole]), torch.ones(1))
        self.sub = _Bank(parts.sub_poles[0], parts.sub_gains[0])
        self.dry_gain = float(parts.dry_gain[0])
        self.state: DividerState | None = None
        self.history: np.ndarray | None = None  # the dry path's last ``latency`` input samples

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Render the next block: (B, 1, L) in, (B, 1, L) out."""
        if x.shape[-1] == 0:
            return x.clone()
        audio = x[:, 0].detach().cpu().numpy().astype(np.float64)
        batch, latency = audio.shape[0], self.model.config.latency
        if self.state is None or self.history is None:
            self.state = _fresh_state(batch, torch.device("cpu"))
            self.history = np.zeros((batch, latency))
        detected = self.detect(audio)
        square, self.state = divide(torch.from_numpy(detected)[:, None], self.model.hysteresis, self.state)
        sub = self.sub(square[:, 0].numpy() * detected)
        joined = np.concatenate((self.history, audio), axis=-1)
        self.history = joined[:, joined.shape[-1] - latency :]
        out = self.dry_gain * joined[:, : audio.shape[-1]] + sub
        return torch.from_numpy(out).to(dtype=x.dtype, device=x.device)[:, None, :]


class _Bank:
    """A sum of one-pole low-passes as recursions (float64), their states carried across blocks."""

    def __init__(self, poles: torch.Tensor, gains: torch.Tensor):
        self.poles = poles.double().cpu().numpy()
        self.gains = gains.double().cpu().numpy()
        self.states: list[np.ndarray] | None = None

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        if self.states is None:
            self.states = [np.zeros((audio.shape[0], 1)) for _ in self.poles]
        out = np.zeros_like(audio)
        for r, (pole, gain) in enumerate(zip(self.poles, self.gains, strict=True)):
            y, self.states[r] = signal.lfilter([1 - pole], [1, -pole], audio, axis=-1, zi=self.states[r])
            out += gain * y
        return out
