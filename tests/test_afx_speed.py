"""The faster render path of the thesis's architectures (issue 28) computes what the old one did.

The old path is kept here as it was before the speed work: SAAF indexing its 2-D tables by channel and segment,
the front-end always recording its max-pool positions, the WaveNet's out-of-place ReLU, 16 or 32 frames per
forward pass and 16,384-sample WaveNet blocks. Every architecture, conditioned and not, at tiny and at the thesis's
settings, must render and stream within 1e-5 of it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from afx_tiny import TINY

from models.afx import ARCHITECTURES, build
from models.afx import framing as framing_module
from models.afx import saaf as saaf_module
from models.afx.framing import render
from models.afx.layers import AdaptiveFrontEnd
from models.afx.network import wrap
from models.afx.saaf import SAAF
from models.afx.wavenet import DilatedStack, _centre


def old_saaf_forward(self: SAAF, x: torch.Tensor) -> torch.Tensor:
    width, segments = self.segment_width, self.curvature.shape[-1]
    ends = self.starts + width
    zero = self.curvature.new_zeros(self.curvature.shape[0], 1)
    slope = torch.cat((zero, zero, self.curvature.cumsum(-1)), -1) * width
    offset = torch.cat((zero, zero, (self.curvature * (0.5 * width**2 - width * ends)).cumsum(-1)), -1)
    curvature = torch.cat((zero, self.curvature, zero), -1)
    start = torch.cat((self.starts[:1], self.starts, self.starts[:1]))
    index = ((x.detach() - self.starts[0]) / width).floor().clamp(-1, segments).long() + 1
    channel = torch.arange(x.shape[-1], device=x.device)
    inside = x - start[index]
    return (
        (self.linear + slope[channel, index]) * x
        + offset[channel, index]
        + 0.5 * curvature[channel, index] * inside.square()
    )


def old_front_end_forward(
    self: AdaptiveFrontEnd, frames: torch.Tensor, indices: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    residual = self.filter_bank(frames)
    envelopes = F.softplus(self.local(F.pad(residual.abs(), self._local_pad)))
    latent, positions = F.max_pool1d(envelopes, frames.shape[-1] // self.latent_samples, return_indices=True)
    return residual, envelopes, latent, positions if indices else None  # the old CEQ dropped unused positions


def old_stack_forward(self: DilatedStack, x: torch.Tensor) -> torch.Tensor:
    x = self._conv(self.input, x)
    skips = []
    for block in self.blocks:
        x, skip = block(x)
        skips.append(skip)
    total = sum(_centre(skip, x.shape[-1]) for skip in skips[1:]) + _centre(skips[0], x.shape[-1])
    return self._conv(self._post_conv(1), F.relu(self._conv(self._post_conv(0), F.relu(total))))


def use_old_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SAAF, "forward", old_saaf_forward)
    monkeypatch.setattr(AdaptiveFrontEnd, "forward", old_front_end_forward)
    monkeypatch.setattr(DilatedStack, "forward", old_stack_forward)
    monkeypatch.setattr(framing_module, "PLAIN_BATCH_FRAMES", 16)
    monkeypatch.setattr(framing_module, "CONTEXT_BATCH_FRAMES", 32)
    monkeypatch.setattr(framing_module, "RENDER_BLOCK_SAMPLES", 16_384)


def randomise_saafs(model: torch.nn.Module) -> None:
    """Give every SAAF curvature (an untrained one is the identity, which would hide its indexing)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, SAAF):
                module.curvature.normal_(0.0, 2.0)
                module.linear.normal_(1.0, 0.3)


def stream_output(model: torch.nn.Module, arch: str, audio: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
    network = wrap(arch, model)  # type: ignore[arg-type]
    stream = network.stream(control)
    blocks = [stream.process(audio[..., start : start + 3000]) for start in range(0, audio.shape[-1], 3000)]
    return torch.cat(blocks, dim=-1)


def test_saaf_fast_paths_equal_the_old_indexing(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    saaf = SAAF(24, 12)
    randomise_saafs(saaf)
    x = (2.0 * torch.randn(5, 24, 300)).transpose(1, 2)  # non-contiguous, samples in and outside [-1, 1]
    x[0, :3] = torch.linspace(-1, 1, 13)[:, None].expand(13, 24)[:3]  # on the breakpoints
    expected = old_saaf_forward(saaf, x)
    monkeypatch.setattr(saaf_module, "CHUNK_ELEMENTS", 100)  # many chunks, one not full
    with torch.inference_mode():
        chunked = saaf(x)
    trained = saaf(x.clone().requires_grad_())
    assert (chunked - expected).abs().max() < 1e-5
    assert (trained - expected).abs().max() < 1e-5
    trained.sum().backward()  # the training path keeps its gradient


@pytest.mark.parametrize(
    ("arch", "settings"), [(arch, {}) for arch in ARCHITECTURES] + [("ceq", {"unpool": "indices"})]
)
def test_tiny_models_render_and_stream_as_the_old_path(
    arch: str, settings: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = build(arch, {**TINY[arch], "knobs": 1, **settings}).eval()
    randomise_saafs(model)
    audio = 0.3 * torch.randn(1, 1, 20_000)
    control = torch.tensor([0.7])
    with torch.inference_mode():
        new_render = render(model, audio[0, 0].numpy(), control)
        new_stream = stream_output(model, arch, audio, control)
    use_old_path(monkeypatch)
    with torch.inference_mode():
        old_render = render(model, audio[0, 0].numpy(), control)
        old_stream = stream_output(model, arch, audio, control)
    assert np.abs(new_render - old_render).max() < 1e-5
    assert (new_stream - old_stream).abs().max() < 1e-5


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_thesis_size_models_render_as_the_old_path(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    model = build(arch).eval()
    randomise_saafs(model)
    audio = (0.3 * np.random.default_rng(2).standard_normal(12_000)).astype(np.float32)
    new = render(model, audio)
    use_old_path(monkeypatch)
    old = render(model, audio)
    assert np.abs(new - old).max() < 1e-5


def test_folded_wavenet_output_equals_its_layers_for_each_control_row(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(3)
    model = build("wavenet", {**TINY["wavenet"], "knobs": 2}).eval()
    with torch.no_grad():
        for parameter in model.film.parameters():  # type: ignore[union-attr]
            parameter.normal_(0.0, 0.5)  # a FiLM that starts at zero would hide the fold's scale and shift
    x = torch.randn(1, 1, 500 + model.receptive_field - 1).expand(4, 1, -1)
    control = torch.rand(2, 2)  # two signals per control row
    layers = model(x, control)  # autograd on: the layers one after another
    with torch.inference_mode():
        folded = model(x, control)
        with pytest.raises(ValueError, match="do not divide"):
            model(x[:3], control)
        with pytest.raises(ValueError, match="needs a control of 2 knobs"):
            model(x, None)
    assert (folded - layers).abs().max() < 1e-5
    assert (folded[0] - folded[1]).abs().max() == 0  # one control row, one output
    assert (folded[0] - folded[2]).abs().max() > 1e-3  # the other control's
