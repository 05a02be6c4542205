"""The McCool paper's two networks, as knob-conditioned baselines (``--arch mccool-cnn`` / ``--arch mccool-lstm``).

:class:`McCoolCNN` is the paper's "window of samples in, one sample out" convolutional net: two convolutions with
ReLUs over the last ``window`` input samples, a max-pool, then fully connected layers (the knobs join the
features there) giving the output sample. It is slid along the signal one sample at a time; since its layers are
convolutions, a pooling and dense layers, the slide is computed as one fully convolutional pass (the convolutions
once over the signal, the pooling as a running maximum, the first dense layer as a convolution dilated by the
pooling's stride), the same function as a window per sample without computing each sample's window again (the
test suite checks the two against each other). :class:`McCoolLSTM` is
its sample-level LSTM: each step takes one input sample and the knobs and gives one output sample. The paper used
7 layers of 800 units; here both are sized to train on a shared two-core CPU in minutes, which is the point of
the comparison: the same budget as our TCN.

The LSTM is trained on crops whose first ``warmup`` samples only settle its state (its ``receptive_field`` says
how much past a training crop gives it); a stream starts from the state after ``warmup - 1`` samples of silence,
as one pass over the signal with that silence in front does.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.stream_history import SampleHistory


class McCoolCNN(nn.Module):
    """Window of ``window`` past samples -> conv, ReLU, conv, ReLU, max-pool -> dense layers (+ knobs) -> 1 sample."""

    network_type = "McCoolCNN"
    latency_samples = 0

    def __init__(self, window: int = 128, channels: int = 8, kernel_size: int = 5, hidden: int = 32, knobs: int = 2):
        super().__init__()
        self.window, self.channels, self.kernel_size, self.hidden, self.knobs = (
            window,
            channels,
            kernel_size,
            hidden,
            knobs,
        )
        self.convs = nn.Sequential(
            nn.Conv1d(1, channels, kernel_size),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size),
            nn.ReLU(),
            nn.MaxPool1d(4),
        )
        features = channels * ((window - 2 * (kernel_size - 1)) // 4)
        self.dense = nn.Sequential(
            nn.Linear(features + knobs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    @classmethod
    def from_settings(cls, settings: dict) -> McCoolCNN:
        return cls(**settings)

    def settings(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "hidden": self.hidden,
            "knobs": self.knobs,
        }

    @property
    def receptive_field(self) -> int:
        return self.window

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) and (B, knobs) to (B, 1, T - window + 1): one output per full window.

        Window ``t`` (input samples ``t .. t + window - 1``) pools its convolved samples in groups of ``stride``
        from its own first one, so its pooled features are the running maximum over ``stride`` samples at ``t``,
        ``t + stride``, ...: the first dense layer reads them as a convolution dilated by ``stride``."""
        outputs = x.shape[-1] - self.window + 1
        pool = self.convs[-1]
        assert isinstance(pool, nn.MaxPool1d)
        stride = int(pool.kernel_size)  # type: ignore[arg-type]
        convolved = self.convs[:-1](x)  # (B, channels, T - 2 (kernel - 1))
        running_max = F.max_pool1d(convolved, stride, stride=1)  # the pool of every group start
        first, *rest = list(self.dense)
        assert isinstance(first, nn.Linear)
        groups = (self.window - 2 * (self.kernel_size - 1)) // stride  # pooled samples of one window
        features = self.channels * groups
        kernel = first.weight[:, :features].reshape(first.out_features, self.channels, groups)
        knob_bias = first.bias + control @ first.weight[:, features:].T  # (B, hidden)
        hidden = (F.conv1d(running_max, kernel, dilation=stride)[..., :outputs] + knob_bias[..., None]).transpose(1, 2)
        for layer in rest:  # ReLU, dense, ReLU, dense: over each output sample's features
            hidden = layer(hidden)
        return hidden.transpose(1, 2)

    def stream(self, control: torch.Tensor) -> McCoolCNNStream:
        return McCoolCNNStream(self, control)


class McCoolCNNStream:
    """Keeps the last ``window - 1`` input samples (silence at first) in front of each block."""

    def __init__(self, model: McCoolCNN, control: torch.Tensor):
        self.model = model
        self.control = control.reshape(1, -1).float()
        self.history = SampleHistory(model.window - 1)

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        joined = self.history.join(x)
        return self.model(joined, self.control.to(x.device).expand(x.shape[0], -1))


class McCoolLSTM(nn.Module):
    """Sample-level LSTM: each step's input is one sample and the knobs, its output one sample."""

    network_type = "McCoolLSTM"
    latency_samples = 0

    def __init__(self, hidden: int = 32, layers: int = 2, knobs: int = 2, warmup: int = 1024):
        super().__init__()
        self.hidden, self.layers, self.knobs, self.warmup = hidden, layers, knobs, warmup
        self.lstm = nn.LSTM(1 + knobs, hidden, layers, batch_first=True)
        self.output = nn.Linear(hidden, 1)

    @classmethod
    def from_settings(cls, settings: dict) -> McCoolLSTM:
        return cls(**settings)

    def settings(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "layers": self.layers, "knobs": self.knobs, "warmup": self.warmup}

    @property
    def receptive_field(self) -> int:
        return self.warmup

    def run(
        self, x: torch.Tensor, control: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(B, 1, T) -> (B, 1, T) and the state after the last sample."""
        steps = torch.cat((x.transpose(1, 2), control[:, None, :].expand(-1, x.shape[-1], -1)), dim=-1)
        out, state = self.lstm(steps, state)
        return self.output(out).transpose(1, 2), state

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) and (B, knobs) to (B, 1, T - warmup + 1): the first ``warmup - 1`` samples settle the state."""
        return self.run(x, control)[0][..., self.warmup - 1 :]

    def stream(self, control: torch.Tensor) -> McCoolLSTMStream:
        return McCoolLSTMStream(self, control)


class McCoolLSTMStream:
    """Carries the LSTM's state from block to block, starting after ``warmup - 1`` samples of silence."""

    def __init__(self, model: McCoolLSTM, control: torch.Tensor):
        self.model = model
        self.control = control.reshape(1, -1).float()
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        control = self.control.to(x.device).expand(x.shape[0], -1)
        if self.state is None:
            silence = x.new_zeros(x.shape[0], 1, self.model.warmup - 1)
            self.state = self.model.run(silence, control)[1] if self.model.warmup > 1 else None
        out, self.state = self.model.run(x, control, self.state)
        return out
