"""A knob-conditioned reverb: a learned early response and a late tail of decaying noise per frequency band.

A reverb is (very nearly) a linear, time-invariant filter: for one setting of its knobs its output is the input
convolved with one impulse response. :class:`ReverbTail` predicts that impulse response from the control vector and
renders by convolution, so its memory is as long as the tail it is given, at the cost of an FFT rather than of
dilated convolutions over seconds of context:

- **early part**: ``early_taps`` free FIR taps from a small MLP over the control (the direct sound, whose gain is
  tap 0, and the first reflections; a freeverb's first comb echo comes 25 ms after the direct sound);
- **late tail**: for each of ``bands`` frequency bands (raised-cosine bands on a log-frequency axis that add up to
  white noise), a fixed noise (seeded, so the model is deterministic) times ``gain_b * exp(-ln(1000) t / T60_b)``,
  faded in over the early part (or over its last ``fade_samples``). The MLP predicts each band's gain and T60; the
  T60 stays within ``min_t60_seconds .. tail_seconds / TAIL_PER_T60``, so any decay the model can make has fallen
  90 dB (1.5 x 60 dB) before the tail is cut: ``tail_seconds`` of 4 allows T60 up to 2.67 s.

The network starts as the identity (tap 0 = 1, the tail some 35 dB down), so training begins at the dry input's
error.
Its receptive field is the tail length; it is causal, with no latency.

:class:`ReverbTailStream` renders block by block with a uniformly partitioned convolution: the first ``partition``
taps on each block as it comes (no latency), every later partition by FFT from a frequency-domain delay line of past
input frames, so whatever the block sizes the output equals one pass over the whole signal (to float32 rounding).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TAIL_PER_T60 = 1.5  # the tail holds 1.5 times the longest T60: a decay is 90 dB down where it is cut
DECAY_PER_T60 = math.log(1000.0)  # amplitude falls by e**6.91 (60 dB) over one T60
START_GAIN_DB = -70.0  # the late tail's starting level per sample and band: about -35 dB of the dry energy at first
BAND_SCALE = 8.0  # the band heads' outputs are multiplied by this: an optimiser step moves a band's level and decay
# several dB at once, so that a tail that starts 70 dB down reaches a freeverb's level within a hundred steps
LOWEST_CENTRE_HZ = 40.0
HIGHEST_CENTRE_HZ = 16_000.0
FIT_RANGE_DB = 30.0  # start_from fits each band's decay over its first 30 dB (below that, filter leakage rules)
ENVELOPE_STEP = 64  # the decay envelopes are built from exponentials at this many samples apart, times a fine ramp


@dataclass(frozen=True)
class ReverbTailConfig:
    """Hyperparameters of a :class:`ReverbTail`."""

    sample_rate: int = 44_100
    tail_seconds: float = 4.0  # the impulse response's length (the receptive field)
    early_taps: int = 2048  # free FIR taps at the start of the response (46 ms at 44.1 kHz)
    bands: int = 16  # late-tail frequency bands, 40 Hz .. 16 kHz centres
    cond_dim: int = 2
    cond_hidden: int = 32
    noise_seed: int = 0
    min_t60_seconds: float = 0.05
    early_scale: float = 1.0  # taps after the first are the early head's outputs times this (smaller: finer steps)
    partition: int = 4096  # stream: FFT partition size (the first partition is applied per block, no latency)
    fade_samples: int = 0  # the tail fades in over the early part's last this many taps (0: over all of it)

    def __post_init__(self) -> None:
        if self.early_taps < 1 or self.bands < 1 or self.partition < 1:
            raise ValueError("early_taps, bands and partition must be positive")
        if not 0 <= self.fade_samples <= self.early_taps:
            raise ValueError(f"fade_samples must be in 0..early_taps ({self.early_taps})")
        if self.tail_length <= self.early_taps:
            raise ValueError(f"the tail ({self.tail_length} samples) must be longer than the early part")
        if not 0 < self.min_t60_seconds < self.max_t60_seconds:
            raise ValueError(f"min_t60_seconds must be in (0, {self.max_t60_seconds:g})")

    @property
    def tail_length(self) -> int:
        return int(round(self.tail_seconds * self.sample_rate))

    @property
    def receptive_field(self) -> int:
        """Samples of past input one output sample depends on: the whole tail."""
        return self.tail_length

    @property
    def max_t60_seconds(self) -> float:
        return self.tail_seconds / TAIL_PER_T60

    def to_dict(self) -> dict:
        return asdict(self)

    def flops_per_sample(self, block: int = 16_384) -> int:
        """Rough arithmetic per output sample of the block renderer at ``block``-sample blocks: the later
        partitions' complex multiply-adds (8 flops each), a 2P-point FFT and inverse per frame (5 n log2 n each), and
        the first partition's FFT and inverse over each block plus P samples."""
        p = self.partition
        partitions = -(-self.tail_length // p) - 1
        per_frame = 8 * partitions * (p + 1) + 2 * 5 * 2 * p * math.log2(2 * p)
        head = 2 * 5 * (block + p) * math.log2(block + p)
        return int(per_frame / p + head / block)


def band_noise(config: ReverbTailConfig) -> np.ndarray:
    """(bands, tail_length) float32: one white noise (``noise_seed``) split into bands whose sum is that noise."""
    length = config.tail_length
    noise = np.random.default_rng(config.noise_seed).standard_normal(length)
    return split_bands(noise, config).astype(np.float32)


def split_bands(signal: np.ndarray, config: ReverbTailConfig) -> np.ndarray:
    """(bands, samples): ``signal`` split into the network's bands, which add up to it."""
    length = signal.shape[-1]
    if config.bands == 1:
        return np.asarray(signal, np.float64)[None, :]
    spectrum = np.fft.rfft(signal)
    return np.fft.irfft(spectrum[None, :] * band_masks(length, config), n=length)


def band_masks(length: int, config: ReverbTailConfig) -> np.ndarray:
    """(bands, length // 2 + 1): the gains on the rFFT bins of a ``length``-sample signal that split it into the
    network's bands.

    Band ``b`` keeps the FFT bins under a cos**2 window on a log2-frequency axis around its centre; neighbouring
    windows overlap so that the windows add up to 1 at every frequency (the lowest band reaches down to 0 Hz, the
    highest up to Nyquist).
    """
    frequencies = np.fft.rfftfreq(length, 1.0 / config.sample_rate)
    if config.bands == 1:
        return np.ones((1, frequencies.size))
    centres = np.log2(np.geomspace(LOWEST_CENTRE_HZ, HIGHEST_CENTRE_HZ, config.bands))
    position = np.log2(np.maximum(frequencies, 1e-3))
    spacing = centres[1] - centres[0]
    # fractional band index, clamped so that the edge bands own everything below / above them
    index = np.clip((position - centres[0]) / spacing, 0.0, config.bands - 1.0)
    masks = np.zeros((config.bands, frequencies.size))
    lower = np.floor(index).astype(int)
    share = index - lower
    upper = np.minimum(lower + 1, config.bands - 1)
    weight_lower = np.cos(0.5 * np.pi * share) ** 2
    masks[lower, np.arange(frequencies.size)] += weight_lower
    masks[upper, np.arange(frequencies.size)] += 1.0 - weight_lower
    return masks


class ReverbTail(nn.Module):
    """A reverb whose impulse response (early FIR + banded decaying noise) is predicted from the knobs."""

    network_type = "ReverbTail"  # the sidecar's architecture type (models.networks)
    latency_samples = 0  # causal: the output lines up with the input
    noise: torch.Tensor  # (bands, tail_length), from the seed (not saved)
    coarse_times: torch.Tensor
    fine_times: torch.Tensor
    fade_in: torch.Tensor
    early_scales: torch.Tensor

    def __init__(self, config: ReverbTailConfig | None = None):
        super().__init__()
        self.config = config or ReverbTailConfig()
        c = self.config
        # SiLU rather than ReLU: with ReLU, large early steps left every unit dead and the knobs without effect
        self.hidden = nn.Sequential(
            nn.Linear(c.cond_dim, c.cond_hidden),
            nn.SiLU(),
            nn.Linear(c.cond_hidden, c.cond_hidden),
            nn.SiLU(),
        )
        features = c.cond_hidden + c.cond_dim  # the heads see the control itself too: a dry gain linear in a knob
        self.early = nn.Linear(features, c.early_taps)
        self.band_gain = nn.Linear(features, c.bands)  # log of each band's starting amplitude / BAND_SCALE
        self.band_decay = nn.Linear(features, c.bands)  # logit of each band's T60 in its range / BAND_SCALE
        with torch.no_grad():
            self.early.weight.mul_(0.001)
            self.early.bias.zero_()
            self.early.bias[0] = 1.0  # the identity: the dry input
            self.band_gain.weight.mul_(0.01 / BAND_SCALE)
            self.band_gain.bias.fill_(START_GAIN_DB / 20 * math.log(10) / BAND_SCALE)
            self.band_decay.weight.mul_(0.01 / BAND_SCALE)
            self.band_decay.bias.zero_()
        self.register_buffer("noise", torch.from_numpy(band_noise(c)), persistent=False)
        steps = -(-c.tail_length // ENVELOPE_STEP)
        coarse_times = torch.arange(steps, dtype=torch.float32) * (ENVELOPE_STEP / c.sample_rate)
        self.register_buffer("coarse_times", coarse_times, persistent=False)
        fine_times = torch.arange(ENVELOPE_STEP, dtype=torch.float32) / c.sample_rate
        self.register_buffer("fine_times", fine_times, persistent=False)
        fade_start = c.early_taps - (c.fade_samples or c.early_taps)
        ramp = (torch.arange(c.tail_length) - fade_start) / (c.early_taps - fade_start)
        fade = torch.sin(0.5 * math.pi * torch.clamp(ramp, min=0.0, max=1.0)) ** 2
        self.register_buffer("fade_in", fade.float(), persistent=False)
        scale = torch.full((c.early_taps,), float(c.early_scale))
        scale[0] = 1.0  # the direct sound's gain is the head's own output
        self.register_buffer("early_scales", scale, persistent=False)

    @classmethod
    def from_settings(cls, settings: dict) -> ReverbTail:
        """The network a sidecar's architecture settings describe (``type`` removed)."""
        return cls(ReverbTailConfig(**settings))

    def settings(self) -> dict:
        """The architecture settings a sidecar records."""
        return self.config.to_dict()

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def cond_mlp(self, cond: torch.Tensor) -> torch.Tensor:
        """The heads' input for (B, cond_dim) controls: the control and its hidden features, (B, features)."""
        return torch.cat((cond, self.hidden(cond)), dim=1)

    def band_parameters(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Early taps (B, early_taps), band gains (B, bands) and band T60s in seconds (B, bands) for (B, cond_dim)."""
        c = self.config
        embedding = self.cond_mlp(cond)
        gains = torch.exp(BAND_SCALE * self.band_gain(embedding))
        decay = torch.sigmoid(BAND_SCALE * self.band_decay(embedding))
        t60 = c.min_t60_seconds + (c.max_t60_seconds - c.min_t60_seconds) * decay
        return self.early(embedding) * self.early_scales, gains, t60

    def impulse_response(self, cond: torch.Tensor) -> torch.Tensor:
        """(B, tail_length): the response to a unit impulse for each control vector of (B, cond_dim)."""
        early, gains, t60 = self.band_parameters(cond)
        # exp(-r (c + f)) = exp(-r c) * exp(-r f) for coarse times c and fine offsets f: one product, few exps
        rate = (DECAY_PER_T60 / t60).unsqueeze(-1)  # (B, bands, 1), per second
        coarse = torch.exp(-rate * self.coarse_times).unsqueeze(-1)  # (B, bands, steps, 1)
        fine = torch.exp(-rate * self.fine_times).unsqueeze(-2)  # (B, bands, 1, ENVELOPE_STEP)
        length = self.config.tail_length
        envelopes = (coarse * fine).flatten(-2)[..., :length] * gains.unsqueeze(-1)
        tail = torch.einsum("bkt,kt->bt", envelopes, self.noise) * self.fade_in
        return torch.cat((tail[:, : early.shape[1]] + early, tail[:, early.shape[1] :]), dim=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Map input (B, 1, T) and control (B, cond_dim) to (B, 1, T - receptive_field + 1)."""
        response = self.impulse_response(cond)
        length = x.shape[-1]
        if length < response.shape[-1]:
            raise ValueError(f"the input ({length} samples) is shorter than the receptive field")
        size = _fft_size(length)
        spectrum = torch.fft.rfft(x[:, 0].float(), size) * torch.fft.rfft(response, size)
        # circular convolution of size >= length: exact from index receptive_field - 1 on
        return torch.fft.irfft(spectrum, size)[:, response.shape[-1] - 1 : length].unsqueeze(1)

    @torch.no_grad()
    def start_from(self, causal: np.ndarray, anticausal: np.ndarray) -> dict[str, list[float]]:
        """Set the response at control 0 to a measured impulse response: ``causal`` (lags 0, 1, ...) and
        ``anticausal`` (lags -1, -2, ..., where a causal effect puts nothing: the measurement's noise).

        Each band's energy envelope past the early part, less the band's noise floor (the anticausal side's mean
        energy), is fitted with a line in dB where it stands 5 dB above that floor and within 30 dB of its peak: its
        slope gives the band's T60, its value at lag 0 the band's gain. The early taps then take the measured
        response minus the tail's start. Returns the fitted gains and T60s (a band without a usable decay keeps its
        starting values).
        """
        c = self.config
        early = c.early_taps
        frame = max(1, int(0.02 * c.sample_rate))
        late_part = np.asarray(causal, np.float64).copy()
        late_part[:early] = 0.0  # the direct sound would ring on in the narrow low bands
        bands = split_bands(late_part, c)
        floors = np.mean(split_bands(np.asarray(anticausal, np.float64), c) ** 2, axis=1)
        variances = np.mean(self.noise.double().numpy() ** 2, axis=1)
        embedding = self.cond_mlp(torch.zeros(1, c.cond_dim, device=self.early.weight.device))
        gain_logits = self.band_gain(embedding)[0].cpu().numpy().astype(np.float64) * BAND_SCALE
        decay_logits = self.band_decay(embedding)[0].cpu().numpy().astype(np.float64) * BAND_SCALE
        fitted: dict[str, list[float]] = {"gains": [], "t60_seconds": []}
        for k in range(c.bands):
            late = bands[k, early:]
            frames = late[: late.size // frame * frame].reshape(-1, frame)
            excess = np.mean(frames**2, axis=1) - floors[k]
            threshold = max(3 * floors[k], float(excess.max(initial=0.0)) * 10 ** (-FIT_RANGE_DB / 10))
            usable = np.flatnonzero(excess > threshold)
            if usable.size < 3:
                continue
            last = int(usable[-1]) + 1
            times = (early + (np.arange(last) + 0.5) * frame) / c.sample_rate
            keep = excess[:last] > threshold
            slope, offset = np.polyfit(times[keep], 10 * np.log10(excess[:last][keep]), 1)
            if slope >= 0:
                continue
            t60 = float(np.clip(-60.0 / slope, c.min_t60_seconds * 1.01, c.max_t60_seconds * 0.99))
            gain = float(np.sqrt(10 ** (offset / 10) / variances[k]))
            share = (t60 - c.min_t60_seconds) / (c.max_t60_seconds - c.min_t60_seconds)
            gain_logits[k] = math.log(max(gain, 1e-9))
            decay_logits[k] = math.log(share / (1 - share))
            fitted["gains"].append(round(gain, 6))
            fitted["t60_seconds"].append(round(t60, 3))
        weight_part = lambda layer: (embedding @ layer.weight.T)[0]  # noqa: E731
        self.band_gain.bias.copy_(torch.from_numpy(gain_logits / BAND_SCALE).float() - weight_part(self.band_gain))
        self.band_decay.bias.copy_(torch.from_numpy(decay_logits / BAND_SCALE).float() - weight_part(self.band_decay))
        self.early.bias.zero_()
        self.early.weight.zero_()
        start = self.impulse_response(torch.zeros(1, c.cond_dim, device=self.early.weight.device))[0, :early]
        measured = torch.zeros(early)
        measured[: min(early, len(causal))] = torch.from_numpy(np.asarray(causal[:early], np.float32))
        self.early.bias.copy_((measured - start.cpu()) / self.early_scales.cpu())
        return fitted

    def stream(self, cond: torch.Tensor) -> ReverbTailStream:
        """A block-by-block renderer for one fixed control vector ``cond`` of shape (cond_dim,)."""
        return ReverbTailStream(self, cond)


def _fft_size(length: int) -> int:
    """The smallest 2**a * 3**b at least ``length`` (fast FFT sizes)."""
    best = 1 << max(0, (length - 1).bit_length())
    power_of_three = 1
    while power_of_three < best:
        size = power_of_three
        while size < length:
            size *= 2
        best = min(best, size)
        power_of_three *= 3
    return best


class ReverbTailStream:
    """Renders a :class:`ReverbTail` block by block: a uniformly partitioned convolution without latency.

    The impulse response is cut into partitions of ``P`` samples. The first is applied to each block as it comes
    (one FFT over the block and the last ``P - 1`` input samples, overlap-save); partition ``k >= 1`` needs only
    input at least ``P`` samples old, so each time ``P`` input samples are complete their spectrum (overlap-save,
    ``2P``-point FFT) enters a frequency-domain delay line and the next output frame's contribution of all later
    partitions is computed at once. The batch dimension (e.g. audio channels) is fixed by the first block processed.
    """

    def __init__(self, model: ReverbTail, cond: torch.Tensor):
        p = model.config.partition
        with torch.inference_mode():
            device = model.early.weight.device
            response = model.impulse_response(cond.reshape(1, -1).float().to(device))[0]
            partitions = -(-response.shape[0] // p)
            response = F.pad(response, (0, partitions * p - response.shape[0]))
            self._head = response[:p].clone()
            later = response[p:].view(-1, p)  # (partitions - 1, P)
            self._spectra = torch.fft.rfft(later, 2 * p)  # (partitions - 1, P + 1)
        self._p = p
        self._head_spectra: dict[int, torch.Tensor] = {}  # the first partition's spectrum per FFT size
        self._history: torch.Tensor | None = None  # last P - 1 input samples, for the first partition
        self._frame: torch.Tensor | None = None  # the previous complete input frame and the current one (2P)
        self._filled = 0  # samples of the current frame received
        self._delay_line: torch.Tensor | None = None  # spectra of past frames, newest first
        self._tail: torch.Tensor | None = None  # later partitions' output for the current frame (B, P)

    def _start(self, batch: int, like: torch.Tensor) -> None:
        p = self._p
        self._history = like.new_zeros(batch, p - 1)
        self._frame = like.new_zeros(batch, 2 * p)
        self._tail = like.new_zeros(batch, p)
        self._delay_line = torch.zeros(
            batch, self._spectra.shape[0], p + 1, dtype=self._spectra.dtype, device=self._spectra.device
        )

    def _first_partition(self, joined: torch.Tensor) -> torch.Tensor:
        """The first partition's output for the block in ``joined`` (the last P - 1 input samples, then the block),
        by one FFT of the whole (overlap-save): (B, L)."""
        size = _fft_size(joined.shape[-1])
        if size not in self._head_spectra:
            self._head_spectra[size] = torch.fft.rfft(self._head, size)
        spectrum = torch.fft.rfft(joined, size) * self._head_spectra[size]
        return torch.fft.irfft(spectrum, size)[:, self._p - 1 : joined.shape[-1]]

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Render the next block: (B, 1, L) in, (B, 1, L) out."""
        if self._history is None:
            self._start(x.shape[0], x)
        assert self._history is not None and self._frame is not None and self._tail is not None
        assert self._delay_line is not None
        p = self._p
        x = x.float()
        joined = torch.cat((self._history, x[:, 0]), dim=-1)
        out = self._first_partition(joined)  # (B, L)
        self._history = joined[:, joined.shape[-1] - (p - 1) :].clone()
        done = 0
        length = x.shape[-1]
        while done < length:
            take = min(p - self._filled, length - done)
            self._frame[:, p + self._filled : p + self._filled + take] = x[:, 0, done : done + take]
            out[:, done : done + take] += self._tail[:, self._filled : self._filled + take]
            self._filled += take
            done += take
            if self._filled == p:
                if self._spectra.shape[0]:
                    spectrum = torch.fft.rfft(self._frame, 2 * p)
                    self._delay_line = torch.cat((spectrum.unsqueeze(1), self._delay_line[:, :-1]), dim=1)
                    mixed = (self._delay_line * self._spectra).sum(dim=1)
                    self._tail = torch.fft.irfft(mixed, 2 * p)[:, p:]
                self._frame = torch.cat((self._frame[:, p:], torch.zeros_like(self._frame[:, p:])), dim=1)
                self._filled = 0
        return out.unsqueeze(1)
