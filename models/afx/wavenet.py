"""The feed-forward WaveNet (thesis Sec. 5.2, Table 5.2; Rethage et al. 2018) and the latent-space WaveNet of CWAFx
(Table 6.2).

A 3-tap convolution to the residual width, then stacks of gated dilated convolutions (``tanh(Wf * x) x
sigmoid(Wg * x)``, Eq. 5.1), each followed by a 1x1 convolution giving a residual (added to the block's input) and a
skip output; the skips are summed, then ReLU, two 3-tap convolutions (ReLU between) and, for the audio model, a 1x1
convolution to one channel. The audio model uses unpadded convolutions: (B, 1, L + rf - 1) in, the centred
(B, 1, L) out, so it renders any length exactly; its receptive field counts the first and last 3-tap layers too
(259 samples with Table 5.2's sizes; Eq. 5.2, which counts the dilated layers only, gives 253). The latent WaveNet
pads each convolution ('same'), as it runs over the fixed 576 latent samples of CWAFx.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.afx.conditioning import condition, film_for
from models.afx.framing import SlidingModel


class GatedResidualBlock(nn.Module):
    """One gated dilated convolution with its 1x1 residual and skip outputs."""

    def __init__(self, channels: int, skip_channels: int, kernel_samples: int, dilation: int, pad: bool):
        super().__init__()
        self.channels = channels
        self.trim = (kernel_samples - 1) * dilation  # samples an unpadded block loses
        self.pad = pad
        self.dilated = nn.Conv1d(channels, 2 * channels, kernel_samples, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels + skip_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inner = F.pad(x, (self.trim // 2, self.trim - self.trim // 2)) if self.pad else x
        filtered, gate = self.dilated(inner).chunk(2, dim=1)
        mixed = self.mix(torch.tanh(filtered) * torch.sigmoid(gate))
        residual, skip = mixed[:, : self.channels], mixed[:, self.channels :]
        if not self.pad:
            x = x[..., self.trim // 2 : x.shape[-1] - (self.trim - self.trim // 2)]
        return x + residual, skip


class DilatedStack(nn.Module):
    """Input convolution, gated residual blocks over ``stacks`` x ``dilations``, summed skips, ReLU, two
    post-processing convolutions (ReLU between): (B, in_channels, T) -> (B, post_channels[-1], T')."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_samples: int,
        dilations: tuple[int, ...],
        stacks: int,
        post_channels: tuple[int, int],
        pad: bool,
    ):
        super().__init__()
        self.pad = pad
        self.kernel_samples = kernel_samples
        self.input = nn.Conv1d(in_channels, channels, kernel_samples)
        blocks = [
            GatedResidualBlock(channels, channels, kernel_samples, d, pad) for _ in range(stacks) for d in dilations
        ]
        self.blocks = nn.ModuleList(blocks)
        self.receptive_field = 1 + (kernel_samples - 1) * 3 + sum(block.trim for block in blocks)
        self.post = nn.ModuleList(
            [
                nn.Conv1d(channels, post_channels[0], kernel_samples),
                nn.Conv1d(post_channels[0], post_channels[1], kernel_samples),
            ]
        )

    def _conv(self, conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            trim = self.kernel_samples - 1
            x = F.pad(x, (trim // 2, trim - trim // 2))
        return conv(x)

    def _post_conv(self, index: int) -> nn.Conv1d:
        """The post-processing convolution ``index`` (kept in a ModuleList: its weights are saved as ``post.N``)."""
        conv = self.post[index]
        assert isinstance(conv, nn.Conv1d), "post holds only the two post-processing convolutions"
        return conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(self._post_conv(1), self.hidden(x))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the last post-processing convolution: its (B, post_channels[0], T'') input."""
        x = self._conv(self.input, x)
        skips = []
        for block in self.blocks:
            x, skip = block(x)
            skips.append(skip)
        length = x.shape[-1]
        total = _centre(skips[0], length)
        for skip in skips[1:]:
            total = total + _centre(skip, length)
        inplace = not torch.is_grad_enabled()  # rendering: ReLU the wide post-processing maps where they lie
        return F.relu(self._conv(self._post_conv(0), F.relu(total)), inplace=inplace)


def _centre(x: torch.Tensor, length: int) -> torch.Tensor:
    start = (x.shape[-1] - length) // 2
    return x[..., start : start + length]


@dataclass(frozen=True)
class WaveNetConfig:
    """WaveNet at the thesis's settings (Table 5.2): 2 stacks of dilations 1..32, 16 channels, post-processing
    convolutions of 2048 and 256 filters, 1024 output samples per training example at 16 kHz. (Table C.1's count,
    1,707,585, is that of dilations 1..128, the released code's setting: ``dilations=(1, 2, ..., 128)``.)"""

    sample_rate: int = 16_000
    channels: int = 16
    kernel_samples: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    stacks: int = 2
    post_channels: tuple[int, int] = (2048, 256)
    output_samples: int = 1024
    knobs: int = 0  # control inputs (models.afx.conditioning: a FiLM before the output layer); 0: the thesis's

    def __post_init__(self) -> None:
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        object.__setattr__(self, "post_channels", tuple(int(c) for c in self.post_channels))

    def to_dict(self) -> dict:
        return asdict(self)


class WaveNet(SlidingModel):
    """The feed-forward WaveNet: (B, 1, L + rf - 1) in, (B, 1, L) out (non-causal, centred)."""

    def __init__(self, config: WaveNetConfig | None = None):
        super().__init__()
        c = self.config = config or WaveNetConfig()
        if c.kernel_samples % 2 != 1:
            raise ValueError("the WaveNet's kernel size must be odd (its output is centred in its input)")
        self.stack = DilatedStack(1, c.channels, c.kernel_samples, c.dilations, c.stacks, c.post_channels, pad=False)
        self.output = nn.Conv1d(c.post_channels[1], 1, 1)
        self.receptive_field = self.stack.receptive_field
        self.output_samples = c.output_samples
        self.film = film_for(c.knobs, c.post_channels[1])

    def forward(self, x: torch.Tensor, control: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.output(condition(self.film, self.stack(x[:, :1]), control))
        return self._folded(self.stack.hidden(x[:, :1]), control)

    def folded_output(self, control: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The last post-processing convolution, the FiLM for each control row and the 1x1 output convolution
        composed into one convolution to one channel (all three are affine, with nothing between them): weights
        (rows, post_channels[0], kernel) and biases (rows,), one row per control row (one without knobs)."""
        last = self.stack._post_conv(1)
        assert last.bias is not None and self.output.bias is not None, "the WaveNet's convolutions have biases"
        out_weight = self.output.weight[0, :, 0]  # (post_channels[1],)
        rows = 1 if control is None else control.shape[0]
        condition(self.film, out_weight.new_zeros(rows, 1, 1), control)  # the unfolded path's checks and errors
        if self.film is None or control is None:
            scale, shift = torch.ones_like(out_weight)[None], torch.zeros_like(out_weight)[None]
        else:
            scale, shift = self.film.linear(control.to(out_weight)).chunk(2, dim=1)
            scale = 1 + scale
        mix = out_weight * scale  # (rows, post_channels[1]): what each of the last layer's channels adds
        weight = torch.einsum("ro,oik->rik", mix, last.weight)
        bias = mix @ last.bias + (out_weight * shift).sum(-1) + self.output.bias
        return weight, bias

    def _folded(self, hidden: torch.Tensor, control: torch.Tensor | None) -> torch.Tensor:
        """The output from the last post-processing convolution's input through :meth:`folded_output`: about 250
        times fewer multiply-accumulates than that 2048-to-256 convolution (inference only; training keeps the
        layers apart, whose composition this is)."""
        weight, bias = self.folded_output(control)
        rows = hidden.shape[0]
        if weight.shape[0] != 1:
            repeat = rows // weight.shape[0]  # consecutive signals per control row, as the FiLM takes them
            if repeat * weight.shape[0] != rows:
                raise ValueError(f"{rows} feature rows do not divide into {weight.shape[0]} controls")
            weight, bias = weight.repeat_interleave(repeat, dim=0), bias.repeat_interleave(repeat, dim=0)
        # A convolution to one channel as one matrix product per row (each tap's response to every input sample,
        # faster than the convolution routine for one output channel), then the taps' responses shifted and summed.
        taps = torch.matmul(weight.transpose(1, 2), hidden)  # (rows, kernel, T'')
        length = hidden.shape[-1] - weight.shape[-1] + 1
        out = taps[:, 0, :length] + bias[:, None]
        for tap in range(1, weight.shape[-1]):
            out = out + taps[:, tap, tap : tap + length]
        return out[:, None]
