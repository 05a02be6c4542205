"""A test-only network type: a knob-controlled gain on the input delayed by a fixed latency.

It keeps the :mod:`models.networks` contract with the smallest possible model, so that the library and the
renderers can be tested on a network that is not the conditioned TCN (and that has a latency to compensate).
"""

from __future__ import annotations

import torch
from torch import nn


class DelayedGain(nn.Module):
    """``y[n] = g(control) * x[n - latency]``, with ``g`` one learnable linear function of the control."""

    network_type = "DelayedGain"

    def __init__(self, latency: int = 0, knobs: int = 1):
        super().__init__()
        self.latency = latency
        self.gain = nn.Linear(knobs, 1)

    @classmethod
    def from_settings(cls, settings: dict) -> DelayedGain:
        return cls(**settings)

    def settings(self) -> dict:
        return {"latency": self.latency, "knobs": self.gain.in_features}

    @property
    def receptive_field(self) -> int:
        return self.latency + 1

    @property
    def latency_samples(self) -> int:
        return self.latency

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        delayed = nn.functional.pad(x, (self.latency, 0))[..., : x.shape[-1]]
        return delayed * self.gain(control)[:, :, None]

    def stream(self, control: torch.Tensor) -> DelayedGainStream:
        return DelayedGainStream(self, control)


class DelayedGainStream:
    """Block renderer of a :class:`DelayedGain`: keeps the last ``latency`` input samples."""

    def __init__(self, model: DelayedGain, control: torch.Tensor):
        with torch.inference_mode():
            self.gain = model.gain(control.reshape(1, -1).float())[0, 0]
        self.latency = model.latency
        self.history: torch.Tensor | None = None

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        if self.history is None:
            self.history = x.new_zeros(x.shape[0], x.shape[1], self.latency)
        joined = torch.cat((self.history, x), dim=-1)
        self.history = joined[..., joined.shape[-1] - self.latency :].clone() if self.latency else self.history
        return joined[..., : x.shape[-1]] * self.gain
