"""The conditioned temporal convolutional network of the steerable-effects paper (Steinmetz & Reiss 2021).

A stack of causal, unpadded, dilated 1-D convolutions. Each block is

    conv (dilation g**n) -> FiLM(control) -> PReLU  (+ 1x1 residual path, cropped)

and a 1x1 convolution maps the last block's channels to the output, minus the network's response to silence, so
silence in gives exact silence out (no DC offset in pauses, whatever the knobs). With ``gain_path`` the output
layer gives two signals per channel, a residual ``r`` and a gain signal ``g``, and the output is
``x * 10 ** (max_gain_db * tanh(g) / 20) + r`` for the current input sample ``x`` (``max_gain_db`` 30 unless the
config says otherwise): the network starts as the identity (the dry sound), and level changes such as a
compressor's become a gain within +-``max_gain_db`` to learn rather than a waveform to rebuild; the tanh makes the
gain saturate on loud input instead of running away. With ``level_input`` the
first block also sees each channel's log level, so a gain that depends on loudness in dB (a compressor's curve)
is a piecewise-linear function to learn rather than a logarithm to approximate. The level is a peak envelope, the
largest ``|x|`` over the last ``w`` samples, for each window ``w`` in ``level_windows``: a window longer than the
waveform's period reads a steady tone's peak whatever its shape, where the convolutions, averaging log ``|x|``,
would read a square wave as louder than a noise of the same peak (a compressor's detector does not). With
``level_rms`` each window's RMS level comes too (an RMS detector's reading, and with the peaks the crest factor). The
windows add ``max(level_windows) - 1`` samples to the receptive field. With ``gain_computer`` the gain signal does
not come from the TCN but from a small per-sample network over the levels alone, as a compressor's gain computer
follows its detector: the TCN's dilated taps add up past levels, so after a pause its gain recovers slowly from
the silence it still sees and loud onsets are let through for milliseconds; a gain computer's memory is only what
the level windows hold. The TCN then gives the residual ``r``.

The control vector (the knobs) goes through a small MLP and is projected per block to a FiLM scale and shift.
The network is causal: output sample ``t`` depends on input samples ``t - receptive_field + 1 .. t`` only, so
its latency is zero samples.

:class:`TCNStream` renders audio of any length block by block with per-layer history buffers, producing the same
samples as one pass over the whole signal with ``receptive_field - 1`` samples of silence in front.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

MAX_GAIN_DB = 30.0  # default range of a gain path's gain, either way
LEVEL_FLOOR = 1e-4  # amplitude below which the level input reads as silence (-80 dBFS)


def log_level(amplitude: torch.Tensor) -> torch.Tensor:
    """The level input's scale: ``log10(amplitude + LEVEL_FLOOR) / 2``, one unit per 40 dB."""
    return torch.log10(amplitude + LEVEL_FLOOR) / 2


@dataclass(frozen=True)
class TCNConfig:
    """Hyperparameters of a :class:`ConditionedTCN`."""

    channels: int = 16
    kernel_size: int = 9
    dilation_growth: int = 10
    layers: int = 4
    cond_dim: int = 2
    cond_hidden: int = 32
    in_channels: int = 1
    out_channels: int = 1
    gain_path: bool = False  # output = input * gain(g) + r (needs in_channels == out_channels)
    level_input: bool = False  # also feed each channel's log level, log10(peak + 1e-4) / 2
    level_windows: tuple[int, ...] = (1,)  # peak-envelope windows of the level input, samples (1: |x| itself)
    level_rms: bool = False  # also the RMS level over each window longer than one sample
    gain_computer: int = 0  # hidden width of a per-sample network giving the gain from the level input (0: the TCN)
    max_gain_db: float = MAX_GAIN_DB  # a gain path's gain stays within +-this many dB

    def __post_init__(self) -> None:
        object.__setattr__(self, "level_windows", tuple(int(w) for w in self.level_windows))  # JSON gives a list
        if not self.level_windows or min(self.level_windows) < 1:
            raise ValueError(f"level_windows must be positive sample counts, got {self.level_windows}")
        if not self.max_gain_db > 0:
            raise ValueError(f"max_gain_db must be positive, got {self.max_gain_db}")

    @property
    def network_inputs(self) -> int:
        """Channels the first block sees: the audio, and its level per window when ``level_input``."""
        if not self.level_input:
            return self.in_channels
        rms = sum(w > 1 for w in self.level_windows) if self.level_rms else 0
        return self.in_channels * (1 + len(self.level_windows) + rms)

    @property
    def tcn_gain(self) -> bool:
        """Whether the TCN's output layer gives the gain path's gain (rather than a gain computer)."""
        return self.gain_path and not self.gain_computer

    @property
    def level_history(self) -> int:
        """Samples of past input the level input needs beyond the current one."""
        return max(self.level_windows) - 1 if self.level_input else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def dilations(self) -> list[int]:
        return [self.dilation_growth**n for n in range(self.layers)]

    @property
    def receptive_field(self) -> int:
        """Receptive field in samples: ``k + sum_{n=1}^{N-1} (k - 1) * g**n``, plus the level input's history."""
        return 1 + self.level_history + sum((self.kernel_size - 1) * d for d in self.dilations)

    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 per output sample and audio channel (convolutions, FiLM, PReLU, residuals)."""
        flops = 0
        if self.level_input:  # abs (and square); doublings and binary digits per window; add, log (and sqrt)
            levels = (self.network_inputs - self.in_channels) // self.in_channels
            spans = max(self.level_history, 1).bit_length() * (2 if self.level_rms else 1)
            digits = sum(w.bit_count() for w in self.level_windows) * (2 if self.level_rms else 1)
            flops = self.in_channels * (2 + spans + digits + 3 * levels)
        c_in = self.network_inputs
        for _ in range(self.layers):
            flops += 2 * c_in * self.channels * self.kernel_size  # dilated conv
            flops += 2 * c_in * self.channels  # 1x1 residual
            flops += 4 * self.channels  # fused affine, PReLU and residual add
            c_in = self.channels
        flops += 2 * self.channels * self.out_channels * (2 if self.tcn_gain else 1)
        if self.gain_computer:
            levels, h = self.network_inputs - self.in_channels, self.gain_computer
            flops += 2 * (levels * h + h * h + h * self.out_channels) + 4 * h
        if self.gain_path:
            flops += 4 * self.out_channels  # x * exp(k * tanh(g)) + r
        return flops


class TCNBlock(nn.Module):
    """One dilated causal convolution block with FiLM conditioning and a 1x1 residual path."""

    def __init__(self, in_channels: int, channels: int, kernel_size: int, dilation: int, cond_hidden: int):
        super().__init__()
        self.dilation = dilation
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(in_channels, channels, kernel_size, dilation=dilation)
        self.film = nn.Linear(cond_hidden, 2 * channels)
        self.act = nn.PReLU(channels)
        self.residual = nn.Conv1d(in_channels, channels, 1, bias=False)

    @property
    def history(self) -> int:
        """Samples of past input this block needs for each output sample beyond the current one."""
        return (self.kernel_size - 1) * self.dilation

    def forward(self, x: torch.Tensor, cond_embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond_embedding).unsqueeze(-1).chunk(2, dim=1)
        y = self.act(self.conv(x) * gamma + beta)
        return y + self.residual(x[..., x.shape[-1] - y.shape[-1] :])

    def constant(self, level: torch.Tensor, cond_embedding: torch.Tensor) -> torch.Tensor:
        """The block's output (B, C) when its input holds the constant ``level`` (B, C_in) on every sample."""
        gamma, beta = self.film(cond_embedding).chunk(2, dim=1)
        assert self.conv.bias is not None  # the block's convolution is built with a bias
        y = level @ self.conv.weight.sum(-1).T + self.conv.bias
        return self.act(y * gamma + beta) + level @ self.residual.weight[..., 0].T


class GainComputer(nn.Module):
    """Per-sample gain signal from the level input alone (1x1 convolutions, FiLM-conditioned), as a dynamics
    processor's gain computer follows its level detector: no history beyond what the level windows hold."""

    def __init__(self, levels: int, hidden: int, config: TCNConfig):
        super().__init__()
        self.first = nn.Conv1d(levels, hidden, 1)
        self.film = nn.Linear(config.cond_hidden, 2 * hidden)
        self.act = nn.PReLU(hidden)
        self.middle = nn.Sequential(nn.Conv1d(hidden, hidden, 1), nn.PReLU(hidden))
        self.last = nn.Conv1d(hidden, config.out_channels, 1)
        nn.init.zeros_(self.last.weight)  # 0 dB: start as the identity
        assert self.last.bias is not None  # built with a bias just above
        nn.init.zeros_(self.last.bias)

    def forward(self, levels: torch.Tensor, cond_embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond_embedding).unsqueeze(-1).chunk(2, dim=1)
        return self.last(self.middle(self.act(self.first(levels) * gamma + beta)))


def knob_embedding(cond_dim: int, hidden: int) -> nn.Sequential:
    """The small MLP that turns a control vector (the knobs, 0..1) into the conditioning embedding of ``hidden``
    features; its layer names (``0``, ``2``, ``4``) are part of the saved weights."""
    return nn.Sequential(
        nn.Linear(cond_dim, 16),
        nn.ReLU(),
        nn.Linear(16, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
    )


class ConditionedTCN(nn.Module):
    """Causal TCN whose behaviour is steered by a small control vector (the knobs)."""

    network_type = "ConditionedTCN"  # the sidecar's architecture type (models.networks)
    latency_samples = 0  # causal: the output lines up with the input

    def __init__(self, config: TCNConfig | None = None):
        super().__init__()
        self.config = config or TCNConfig()
        c = self.config
        self.cond_mlp = knob_embedding(c.cond_dim, c.cond_hidden)
        blocks = []
        in_ch = c.network_inputs
        for dilation in c.dilations:
            blocks.append(TCNBlock(in_ch, c.channels, c.kernel_size, dilation, c.cond_hidden))
            in_ch = c.channels
        self.blocks = nn.ModuleList(blocks)
        if c.gain_path and c.in_channels != c.out_channels:
            raise ValueError("gain_path needs as many output channels as input channels")
        if c.gain_computer and not (c.gain_path and c.level_input):
            raise ValueError("gain_computer needs gain_path and level_input")
        self.output = nn.Conv1d(c.channels, c.out_channels * (2 if c.tcn_gain else 1), 1, bias=False)
        if c.gain_path:
            nn.init.zeros_(self.output.weight)  # start as the identity
        if c.gain_computer:
            self.gain_computer = GainComputer(c.network_inputs - c.in_channels, c.gain_computer, c)
        elif c.gain_path:
            self.gain_bias = nn.Parameter(torch.zeros(c.out_channels))

    @classmethod
    def from_settings(cls, settings: dict) -> ConditionedTCN:
        """The network a sidecar's architecture settings describe (``type`` removed)."""
        return cls(TCNConfig(**settings))

    def settings(self) -> dict:
        """The architecture settings a sidecar records."""
        return self.config.to_dict()

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    @property
    def tcn_blocks(self) -> list[TCNBlock]:
        """:attr:`blocks` as the :class:`TCNBlock` they are (iterating an ``nn.ModuleList`` gives plain modules)."""
        typed = []
        for block in self.blocks:
            assert isinstance(block, TCNBlock)  # __init__ puts only TCNBlocks in
            typed.append(block)
        return typed

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, T) audio → what the first block sees, (B, network_inputs, T - level_history): the
        audio, then its log peak level over each of ``level_windows`` (and RMS level, with ``level_rms``) if
        configured."""
        if not self.config.level_input:
            return x
        c = self.config
        keep = x.shape[-1] - c.level_history
        magnitude = x.abs()
        levels = [log_level(sliding_window(magnitude, w, torch.maximum)) for w in c.level_windows]
        if c.level_rms:
            square = x.square()
            levels += [log_level((sliding_window(square, w, torch.add) / w).sqrt()) for w in c.level_windows if w > 1]
        return torch.cat([x[..., -keep:]] + [v[..., -keep:] for v in levels], dim=1)

    def silence_input(self, batch: int) -> torch.Tensor:
        """(batch, network_inputs): what the first block sees on every sample of silence."""
        weight = self.output.weight
        zeros = weight.new_zeros(batch, self.config.in_channels, 1 + self.config.level_history)
        return self.network_input(zeros)[..., 0]

    def silence_offset(self, silence: torch.Tensor) -> torch.Tensor:
        """(B, out, 1) what to subtract from the output layer, given the last block's silence level (B, channels).

        The output layer's response to silence, so that silence in gives exact silence out. A gain path's gain half
        gets its own learned offset instead (``dry * gain`` is silent anyway): a level-independent gain, such as a
        compressor's make-up gain on quiet passages, is then one number to learn rather than a direction in the
        features that also grows with the input level.
        """
        offset = F.conv1d(silence.unsqueeze(-1), self.output.weight)
        if self.config.tcn_gain:
            n = self.config.out_channels
            offset = torch.cat((offset[:, :n], offset[:, n:] - self.gain_bias.view(1, n, 1)), 1)
        return offset

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Map input (B, in_channels, T) and control (B, cond_dim) to (B, out_channels, T - rf + 1)."""
        embedding = self.cond_mlp(cond)
        dry = x
        x = self.network_input(x)
        levels = x[:, self.config.in_channels :]
        silence = self.silence_input(x.shape[0])
        for block in self.tcn_blocks:
            x = block(x, embedding)
            silence = block.constant(silence, embedding)
        out = self.output(x) - self.silence_offset(silence)
        if self.config.gain_computer:
            out = torch.cat((out, self.gain_computer(levels[..., levels.shape[-1] - out.shape[-1] :], embedding)), 1)
        if self.config.gain_path:
            out = apply_gain_path(dry[..., dry.shape[-1] - out.shape[-1] :], out, self.config.max_gain_db)
        return out

    def stream(self, cond: torch.Tensor) -> TCNStream:
        """A block-by-block renderer for one fixed control vector ``cond`` of shape (cond_dim,)."""
        return TCNStream(self, cond)

    def with_gain_range(self, max_gain_db: float) -> ConditionedTCN:
        """A copy whose gain path spans +-``max_gain_db``, its gain signal scaled by the old range over the new one:
        a warm start for training a wider range. Gains well inside the old range stay nearly the same (the tanh is
        close to linear there); gains near its edge come out larger, where the old range had saturated them."""
        c = self.config
        if not c.gain_path:
            raise ValueError("with_gain_range needs a network with a gain path")
        widened = ConditionedTCN(replace(c, max_gain_db=max_gain_db))
        widened.load_state_dict(self.state_dict())
        scale = c.max_gain_db / max_gain_db
        with torch.no_grad():
            if c.gain_computer:
                widened.gain_computer.last.weight.mul_(scale)
                assert widened.gain_computer.last.bias is not None  # built with a bias
                widened.gain_computer.last.bias.mul_(scale)
            else:
                widened.output.weight[c.out_channels :].mul_(scale)
                widened.gain_bias.mul_(scale)
        return widened


def sliding_window(
    values: torch.Tensor, window: int, combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``combine`` (max or sum) over the last ``window`` samples of ``values`` (..., T): (..., T - window + 1),
    element ``j`` ending at sample ``j + window - 1``.

    Spans of power-of-two length are built by doubling and the window is combined from the spans of its binary
    digits: a few whole-signal operations, and sums added pairwise, so no running sum loses quiet passages.
    """
    if window < 1:
        raise ValueError(f"a sliding window spans at least one sample, got {window}")
    length = values.shape[-1] - window + 1
    result: torch.Tensor | None = None
    span, size, covered = values, 1, 0  # span[j]: combined over values[j : j + size]
    while True:
        if window & size:
            start = window - covered - size
            part = span[..., start : start + length]
            result = part if result is None else combine(result, part)
            covered += size
        if 2 * size > window:
            assert result is not None  # size is now window's top binary digit, which was combined just above
            return result
        span = combine(span[..., size:], span[..., :-size])
        size *= 2


def apply_gain_path(dry: torch.Tensor, out: torch.Tensor, max_gain_db: float = MAX_GAIN_DB) -> torch.Tensor:
    """(B, C, T) current input samples and (B, 2C, T) output-layer signals (C residuals, then C gain signals) →
    ``dry * 10 ** (max_gain_db * tanh(gain) / 20) + residual``: a gain within +-``max_gain_db`` that saturates."""
    residual, gain = out.chunk(2, dim=1)
    return dry * torch.exp(torch.tanh(gain) * (max_gain_db * math.log(10) / 20)) + residual


class TCNStream:
    """Renders a :class:`ConditionedTCN` block by block with exact receptive-field history.

    The control vector is fixed for the stream, so FiLM folds into each convolution's weights and bias. Histories
    start as the network's response to silence, so the output equals one pass over the signal with
    ``receptive_field - 1`` zeros in front, whatever the block sizes. The batch dimension (e.g. audio channels) is
    fixed by the first block processed.
    """

    def __init__(self, model: ConditionedTCN, cond: torch.Tensor):
        self._layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]] = []
        self._silence: list[tuple[torch.Tensor, int]] = []  # each block's constant input during silence
        self._histories: list[torch.Tensor] | None = None
        with torch.inference_mode():
            embedding = model.cond_mlp(cond.reshape(1, -1).float().to(model.output.weight.device))
            level = model.silence_input(1)
            for block in model.tcn_blocks:
                gamma, beta = block.film(embedding).chunk(2, dim=1)
                weight = block.conv.weight * gamma[0].view(-1, 1, 1)
                bias = block.conv.bias * gamma[0] + beta[0]
                self._layers.append((weight, bias, block.act.weight, block.residual.weight, block.dilation))
                self._silence.append((level, block.history))
                level = block.constant(level, embedding)
            self._out_offset = model.silence_offset(level.view(1, -1))
            self._out_weight = model.output.weight
            self._gain_path = model.config.gain_path
            self._max_gain_db = model.config.max_gain_db
            self._gain_computer = model.gain_computer if model.config.gain_computer else None
            self._embedding = embedding
            self._in_channels = model.config.in_channels
            self._network_input = model.network_input
            self._input_history_samples = model.config.level_history  # raw input the level input looks back on
            self._input_history: torch.Tensor | None = None

    def _apply(self, index: int, x: torch.Tensor) -> torch.Tensor:
        weight, bias, slope, residual, dilation = self._layers[index]
        y = F.prelu(F.conv1d(x, weight, bias, dilation=dilation), slope)
        return y + F.conv1d(x[..., x.shape[-1] - y.shape[-1] :], residual)

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """Render the next block: (B, in_channels, L) in, (B, out_channels, L) out."""
        dry = x
        if self._input_history_samples:
            if self._input_history is None:
                self._input_history = x.new_zeros(x.shape[0], x.shape[1], self._input_history_samples)
            x = torch.cat((self._input_history, x), dim=-1)
            self._input_history = x[..., x.shape[-1] - self._input_history_samples :].clone()
        x = self._network_input(x)
        levels = x[:, self._in_channels :, x.shape[-1] - dry.shape[-1] :]
        if self._histories is None:
            self._histories = [
                level.view(1, -1, 1).expand(x.shape[0], -1, history).contiguous() for level, history in self._silence
            ]
        for index, history in enumerate(self._histories):
            joined = torch.cat((history, x), dim=-1)
            keep = history.shape[-1]
            if keep:
                self._histories[index] = joined[..., joined.shape[-1] - keep :].clone()
            x = self._apply(index, joined)
        out = F.conv1d(x, self._out_weight) - self._out_offset
        if self._gain_computer is not None:
            out = torch.cat((out, self._gain_computer(levels, self._embedding)), 1)
        return apply_gain_path(dry, out, self._max_gain_db) if self._gain_path else out
