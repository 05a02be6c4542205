"""Building blocks shared by the thesis's architectures (Martínez Ramírez 2020, Chs. 4-8).

Feature maps are (batch, channels, samples) in the convolutional parts and (batch, samples, channels) where dense
layers act on the channel dimension. Recurrent layers keep Keras's one bias per gate (the thesis's parameter counts,
Table C.1, are Keras counts): :class:`KerasLSTM` feeds a constant 1 as an extra input instead of PyTorch's two bias
vectors, so its weight column for that input is the bias.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.afx.depthwise import depthwise_conv1d
from models.afx.saaf import SAAF


def same_padding(kernel_samples: int) -> tuple[int, int]:
    """Samples of zero padding (left, right) that keep a stride-1 convolution's length ('same', Keras's split)."""
    total = kernel_samples - 1
    return total // 2, total - total // 2


class AdaptiveFrontEnd(nn.Module):
    """Conv1D (filter bank) -> |x| -> locally connected Conv1D -> softplus -> max-pooling that keeps its indices.

    ``forward`` gives the residual ``R = X1`` (B, filters, N), the envelopes ``M`` before pooling, the pooled latent
    ``Z`` (B, filters, latent) and the max positions, for frames (B, 1, N) with N a multiple of ``latent_samples``.
    With ``indices=False`` the positions are not computed (None): pooling without them is faster, and only the
    pretraining stage and CEQ's ``unpool="indices"`` use them.
    """

    def __init__(self, filters: int, kernel_samples: int, local_kernel_samples: int, latent_samples: int):
        super().__init__()
        self.latent_samples = latent_samples
        self.conv = nn.Conv1d(1, filters, kernel_samples)
        self.local = nn.Conv1d(filters, filters, local_kernel_samples, groups=filters)  # one filter per channel
        self._conv_pad = same_padding(kernel_samples)
        self._local_pad = same_padding(local_kernel_samples)

    def filter_bank(self, frames: torch.Tensor) -> torch.Tensor:
        """X1 = x * W1 with 'same' padding: (B, 1, N) -> (B, filters, N)."""
        return self.conv(F.pad(frames, self._conv_pad))

    def forward(
        self, frames: torch.Tensor, indices: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        residual = self.filter_bank(frames)
        local = depthwise_conv1d(F.pad(residual.abs(), self._local_pad), self.local.weight, self.local.bias)
        envelopes = F.softplus(local)
        pool = frames.shape[-1] // self.latent_samples
        if pool * self.latent_samples != frames.shape[-1]:
            raise ValueError(f"frame of {frames.shape[-1]} samples is not a multiple of {self.latent_samples}")
        if not indices:
            return residual, envelopes, F.max_pool1d(envelopes, pool), None
        latent, positions = F.max_pool1d(envelopes, pool, return_indices=True)
        return residual, envelopes, latent, positions


class TiedDeconvolution(nn.Module):
    """The synthesis layer: the transpose (adjoint) of the front-end's first convolution, with its weights.

    Not trainable apart from one output bias; ``forward`` maps (B, filters, N) to (B, 1, N).
    """

    def __init__(self, front_end: AdaptiveFrontEnd):
        super().__init__()
        self._front_end = [front_end]  # a plain list: the weights belong to (and are saved with) the front end
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        conv = self._front_end[0].conv
        full = F.conv_transpose1d(features, conv.weight)  # (B, 1, N + K - 1)
        left = same_padding(conv.kernel_size[0])[0]
        return full[..., left : left + features.shape[-1]] + self.bias


def unpool(latent: torch.Tensor, indices: torch.Tensor | None, length: int) -> torch.Tensor:
    """Latent (B, C, L) back to (B, C, length): at the recorded max positions only (``indices``), else repeated."""
    if indices is not None:
        return F.max_unpool1d(latent, indices, (length // latent.shape[-1],), output_size=(length,))
    return latent.repeat_interleave(length // latent.shape[-1], dim=-1)


class DenseLocal(nn.Module):
    """A different dense layer for each channel, over the samples of that channel: (B, C, L_in) -> (B, C, L_out)."""

    def __init__(self, channels: int, in_samples: int, out_samples: int):
        super().__init__()
        bound = in_samples**-0.5
        self.weight = nn.Parameter(torch.empty(channels, in_samples, out_samples).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(channels, out_samples))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bci,cio->bco", x, self.weight) + self.bias


class DenseSAAF(nn.Module):
    """Dense layers over the channel dimension, each but the last followed by ``activation``, then a per-channel SAAF.

    (B, N, channels) in and out; ``units`` lists the layers' widths and the last must equal ``channels``.
    """

    def __init__(self, channels: int, units: tuple[int, ...], activation: str, saaf_segments: int):
        super().__init__()
        if not units or units[-1] != channels:
            raise ValueError(f"the DNN-SAAF's last layer must have {channels} units, got {units}")
        widths = (channels, *units)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        activations: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "softplus": F.softplus,
            "tanh": torch.tanh,
            "relu": F.relu,
        }
        self.activation = activations[activation]
        self.saaf = SAAF(channels, saaf_segments)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            assert isinstance(layer, nn.Linear), "the DNN-SAAF's layers are dense"
            x = _linear(layer, x)
            if index < len(self.layers) - 1:
                x = self.activation(x)
        return self.saaf(x)


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``; when rendering, a (B, N, in) view of channel-first maps (the back-ends' transposed bands) goes
    through one batched matrix product that reads it as it lies, instead of a copy to channels-last and a separate
    bias add."""
    if x.dim() != 3 or x.is_contiguous() or torch.is_grad_enabled():
        return layer(x)
    weight = layer.weight.t().expand(x.shape[0], -1, -1)
    if layer.bias is None:
        return torch.bmm(x, weight)
    return torch.baddbmm(layer.bias, x, weight)


class KerasLSTM(nn.Module):
    """An LSTM with one bias per gate (Keras's count): PyTorch's LSTM without biases, fed a constant 1 as well."""

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False):
        super().__init__()
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(input_size + 1, hidden_size, bias=False, batch_first=True, bidirectional=bidirectional)
        with torch.no_grad():  # Keras's unit forget bias: the forget gate starts open
            for name, weight in self.lstm.named_parameters():
                if name.startswith("weight_ih"):  # gates i, f, g, o; the last input column is the bias
                    weight[:, -1] = 0.0
                    weight[hidden_size : 2 * hidden_size, -1] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, steps, input_size) -> (B, steps, hidden_size, times 2 if bidirectional)."""
        ones = x.new_ones(*x.shape[:-1], 1)
        return self.lstm(torch.cat((x, ones), dim=-1))[0]


class BiLSTMStack(nn.Module):
    """Bidirectional LSTMs one after another (outputs concatenated per step), with input dropout on each."""

    def __init__(self, input_size: int, units: tuple[int, ...], dropout: float):
        super().__init__()
        layers = []
        for hidden in units:
            layers.append(KerasLSTM(input_size, hidden, bidirectional=True))
            input_size = 2 * hidden
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.output_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(self.dropout(x))
        return x


class SqueezeExcitation(nn.Module):
    """Channel gains from ``mean |x|`` over time: dense (``ratio`` x channels, ReLU) -> dense (channels, sigmoid).

    With ``recurrent`` an LSTM of ``channels`` units (then ReLU) comes first: the thesis's SE-LSTM (Ch. 8), which sees
    the one averaged step of the current frame. ``forward``: (B, N, channels) -> gains (B, 1, channels).
    """

    def __init__(self, channels: int, ratio: int, recurrent: bool = False):
        super().__init__()
        self.lstm = KerasLSTM(channels, channels) if recurrent else None
        self.expand = nn.Linear(channels, channels * ratio)
        self.squeeze = nn.Linear(channels * ratio, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summary = x.abs().mean(dim=1, keepdim=True)  # (B, 1, channels)
        if self.lstm is not None:
            summary = F.relu(self.lstm(summary))
        return torch.sigmoid(self.squeeze(F.relu(self.expand(summary))))
