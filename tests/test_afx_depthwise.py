"""The front-end's locally connected convolution with its matrix-product weight gradient (models/afx/depthwise.py)
computes what ``F.conv1d(..., groups=C)`` and its autograd backward compute: outputs, input, weight and bias
gradients, at lengths that do and do not fill the gradient's blocks, kernels shorter and longer than a block, and
through whole frame models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from afx_tiny import TINY

from models.afx import build
from models.afx import layers as layers_module
from models.afx.depthwise import BLOCK_SAMPLES, depthwise_conv1d, depthwise_weight_grad
from models.afx.framing import FrameModel


def reference_grads(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, grad: torch.Tensor, conv
) -> tuple[torch.Tensor, ...]:
    x, weight, bias = (t.detach().clone().requires_grad_() for t in (x, weight, bias))
    out = conv(x, weight, bias)
    out.backward(grad)
    assert x.grad is not None and weight.grad is not None and bias.grad is not None
    return out.detach(), x.grad, weight.grad, bias.grad


@pytest.mark.parametrize(
    ("out_samples", "taps"),
    [(1, 1), (7, 3), (BLOCK_SAMPLES, 128), (BLOCK_SAMPLES + 1, 128), (300, 129), (300, 200), (1000, 64)],
)
def test_weight_grad_equals_autograd(out_samples: int, taps: int) -> None:
    generator = torch.Generator().manual_seed(out_samples + taps)
    x = torch.randn(3, 4, out_samples + taps - 1, generator=generator, dtype=torch.float64)
    grad = torch.randn(3, 4, out_samples, generator=generator, dtype=torch.float64)
    weight = torch.randn(4, 1, taps, generator=generator, dtype=torch.float64, requires_grad=True)
    F.conv1d(x, weight, groups=4).backward(grad)
    assert weight.grad is not None
    torch.testing.assert_close(depthwise_weight_grad(x, grad, taps), weight.grad, rtol=1e-10, atol=1e-10)


def test_conv_and_all_gradients_equal_autograd() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 400 + 31, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, 1, 32, generator=generator, dtype=torch.float64)
    bias = torch.randn(5, generator=generator, dtype=torch.float64)
    grad = torch.randn(2, 5, 400, generator=generator, dtype=torch.float64)
    expected = reference_grads(x, weight, bias, grad, lambda a, w, b: F.conv1d(a, w, b, groups=5))
    got = reference_grads(x, weight, bias, grad, depthwise_conv1d)
    for want, have in zip(expected, got, strict=True):
        torch.testing.assert_close(have, want, rtol=1e-10, atol=1e-10)


def test_gradcheck() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 40, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 1, 9, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(depthwise_conv1d, (x, weight, bias))


def test_without_autograd_it_is_the_plain_convolution() -> None:
    x = torch.randn(2, 3, 50)
    weight = torch.randn(3, 1, 8, requires_grad=True)
    with torch.no_grad():
        out = depthwise_conv1d(x, weight, None)
    assert not out.requires_grad
    torch.testing.assert_close(out, F.conv1d(x, weight.detach(), groups=3))


@pytest.mark.parametrize("arch", ["ceq", "cafx", "crafx", "cwafx", "csafx"])
def test_frame_models_train_as_with_the_plain_convolution(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every frame model's output and parameter gradients equal those through ``F.conv1d``'s own backward."""
    torch.manual_seed(2)
    model = build(arch, {**TINY[arch], "knobs": 1}).eval()  # eval: no dropout, so both passes see the same net
    assert isinstance(model, FrameModel)
    frames = 2 * getattr(model.config, "context_frames", 0) + 1
    x = torch.randn(3, frames, model.framing.frame_samples) * 0.3
    control = torch.rand(3, 1)

    def gradients() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        out = model(x, control)
        out.square().mean().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    out, grads = gradients()
    monkeypatch.setattr(layers_module, "depthwise_conv1d", lambda a, w, b: F.conv1d(a, w, b, groups=w.shape[0]))
    plain_out, plain_grads = gradients()
    torch.testing.assert_close(out, plain_out, rtol=0, atol=0)
    assert len(grads) == len(plain_grads) > 0
    for have, want in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(have, want, rtol=1e-4, atol=1e-6 * float(want.abs().max()) + 1e-12)
