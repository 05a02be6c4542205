"""Silence in, silence out: a trained model's answer to a silent input, and the output-bias shift that removes it.

A network's biases, carried through its layers, make it answer silence with a small constant: a DC offset (CSAFx on
the plate after 40 minutes: -4.4e-4, about -67 dBFS). The training loss hardly sees it, but a reverb's tail then
never decays below it, and the T60 estimate (a Schroeder integral) runs to tens of seconds: that model's T60 error
was 16.5x the dry input's, 0.64x with the offset removed and nothing else changed. An effect adds no DC, so after
training the output bias (the tied synthesis's for the frame models, the output convolution's for the WaveNet) is
shifted so that the mean answer to silence over the training knob settings is zero. The shift is exact for every
renderer: the bias is added after the last weights, so the output moves by a fixed multiple of it (1; 2 for CEQ, whose
output frames carry the input's Hann window but not over the bias, measured rather than assumed).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.afx.framing import AfxModel, FrameModel, render_rows
from models.networks import model_device

SILENCE_SECONDS = 1.0  # of silence rendered per knob setting to measure the offset


def output_bias(model: AfxModel) -> nn.Parameter:
    """The bias added after the model's last weights (one value: the output is mono)."""
    bias = model.deconv.bias if isinstance(model, FrameModel) else model.output.bias
    if not isinstance(bias, nn.Parameter) or bias.numel() != 1:
        raise ValueError(f"{type(model).__name__} has no single output bias")
    return bias


@torch.no_grad()
def silence_offset(model: AfxModel, controls: list[np.ndarray]) -> float:
    """The mean of the model's output for ``SILENCE_SECONDS`` of silence, averaged over the knob ``controls``
    (each (knobs,), empty for a model without knobs)."""
    return float(np.mean(_silence_means(model, controls)))


def _silence_means(model: AfxModel, controls: list[np.ndarray]) -> list[float]:
    """The mean answer to ``SILENCE_SECONDS`` of silence at each knob setting of ``controls`` (no knobs if empty)."""
    was_training = model.training
    model.eval()
    where = model_device(model)
    silence = torch.zeros(1, int(SILENCE_SECONDS * model.config.sample_rate), device=where)
    means = []
    for control in controls or [np.zeros(0, np.float32)]:
        knobs = torch.as_tensor(np.asarray(control, np.float32), device=where).reshape(1, -1)
        means.append(float(render_rows(model, silence, knobs if knobs.shape[-1] else None).mean()))
    model.train(was_training)
    return means


@torch.no_grad()
def remove_silence_offset(model: AfxModel, controls: list[np.ndarray]) -> float:
    """Shift the output bias so that silence renders as silence (on average over ``controls``); returns the offset
    removed (the model's answer to silence before)."""
    means = _silence_means(model, controls)
    offset = float(np.mean(means))
    bias = output_bias(model)
    bias.add_(1.0)
    # The bias is added after the last weights, so it moves the output alike at every knob setting: measured at one.
    gain = _silence_means(model, controls[:1])[0] - means[0]  # the output's shift per unit of bias
    bias.sub_(1.0 + offset / gain)
    return offset
