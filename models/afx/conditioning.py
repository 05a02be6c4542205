"""Knobs for the thesis's architectures (which the thesis trained unconditioned): a FiLM of the front-end's latent.

``LatentFiLM`` maps the control vector (B, knobs) to a per-channel scale and shift of the latent ``Z``
(B, channels, steps): ``Z * (1 + scale) + shift``. It starts at zero, so a model with knobs begins as the
unconditioned one; the speed of a Leslie or the decay of a plate then reaches the latent DNN (the Bi-LSTMs of CRAFx
and CSAFx, the dense layers of CEQ and CAFx). The feed-forward WaveNet modulates the features before its last 1x1
convolution the same way. A model built with ``knobs=0`` has no such layer and the thesis's parameter count.
"""

from __future__ import annotations

import torch
from torch import nn


class LatentFiLM(nn.Module):
    """Control (B, knobs) -> per-channel scale and shift of (B * repeat, channels, steps) features."""

    def __init__(self, knobs: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(knobs, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """``features`` hold ``repeat`` consecutive rows per control row (the context frames of one example)."""
        repeat = features.shape[0] // control.shape[0]
        if repeat * control.shape[0] != features.shape[0]:
            raise ValueError(f"{features.shape[0]} feature rows do not divide into {control.shape[0]} controls")
        scale, shift = self.linear(control.to(features)).repeat_interleave(repeat, dim=0)[..., None].chunk(2, dim=1)
        return features * (1 + scale) + shift


def film_for(knobs: int, channels: int) -> LatentFiLM | None:
    """The conditioning layer of a model with ``knobs`` knobs (none for an unconditioned model)."""
    if knobs < 0:
        raise ValueError(f"knobs must be 0 or more, got {knobs}")
    return LatentFiLM(knobs, channels) if knobs else None


def condition(film: LatentFiLM | None, features: torch.Tensor, control: torch.Tensor | None) -> torch.Tensor:
    """``features`` through ``film`` for ``control``; unchanged by a model without knobs (control must be empty)."""
    if film is None:
        if control is not None and control.shape[-1]:
            raise ValueError(f"this model has no knobs, got a control of {control.shape[-1]}")
        return features
    if control is None or control.shape[-1] != film.linear.in_features:
        found = None if control is None else control.shape[-1]
        raise ValueError(f"this model needs a control of {film.linear.in_features} knobs, got {found}")
    return film(features, control)
