"""SAAF (Eqs. 3.8-3.11), sparse FIR filters, FFT convolution, unpooling."""

import pytest
import torch
import torch.nn.functional as F

from models.afx.layers import AdaptiveFrontEnd, unpool
from models.afx.saaf import SAAF
from models.afx.sfir import SparseFIR, fft_convolve


def _random_saaf(channels: int = 3, segments: int = 12) -> SAAF:
    torch.manual_seed(0)
    saaf = SAAF(channels, segments)
    with torch.no_grad():
        saaf.curvature.normal_(0, 3)
        saaf.linear.normal_(0, 1)
    return saaf


def test_saaf_is_continuous_with_a_continuous_slope_at_every_breakpoint() -> None:
    saaf = _random_saaf()
    breakpoints = torch.linspace(-1, 1, 13)
    eps = 1e-4
    for point in breakpoints:
        left = torch.full((1, 3), float(point) - eps, dtype=torch.float64)
        right = torch.full((1, 3), float(point) + eps, dtype=torch.float64)
        saaf64 = saaf.double()
        assert torch.allclose(saaf64(left), saaf64(right), atol=1e-3)
        slopes = []
        for x in (left, right):
            x = x.clone().requires_grad_(True)
            saaf64(x).sum().backward()
            slopes.append(x.grad)
        assert torch.allclose(slopes[0], slopes[1], atol=1e-2)


def test_saaf_second_derivative_in_a_segment_is_its_weight_eq_3_11() -> None:
    saaf = _random_saaf().double()
    h, centre = 1e-3, -1 + (2 / 12) * 4.5  # middle of segment 4
    values = saaf(torch.tensor([[centre - h] * 3, [centre] * 3, [centre + h] * 3], dtype=torch.float64))
    second = (values[0] - 2 * values[1] + values[2]) / h**2
    assert torch.allclose(second, saaf.curvature[:, 4], rtol=1e-4)


def test_saaf_fast_form_equals_the_basis_sum_and_is_linear_outside_the_range() -> None:
    saaf = _random_saaf()
    x = torch.linspace(-3, 3, 6001).unsqueeze(-1).expand(-1, 3).contiguous()
    assert torch.allclose(saaf(x), saaf.reference(x), atol=1e-4)
    outside = saaf(torch.tensor([[2.0] * 3, [3.0] * 3, [4.0] * 3]))
    assert torch.allclose(outside[2] - outside[1], outside[1] - outside[0], atol=1e-4)


def test_saaf_starts_as_the_identity_and_counts_segments_plus_one_per_channel() -> None:
    saaf = SAAF(32, 12)
    x = torch.randn(4, 10, 32)
    assert torch.equal(saaf(x), x)
    assert sum(p.numel() for p in saaf.parameters()) == 32 * 13


def test_sfir_has_one_tap_per_interval_with_values_in_range() -> None:
    torch.manual_seed(1)
    layer = SparseFIR(latent_samples=16, taps=64, interval=8)
    filters = layer(torch.randn(2, 3, 16))
    assert filters.shape == (2, 3, 512)
    per_interval = filters.reshape(2, 3, 64, 8)
    assert ((per_interval != 0).sum(-1) <= 1).all()
    assert (per_interval != 0).sum() >= 0.99 * per_interval[..., 0].numel()  # tanh is rarely exactly zero
    assert filters.abs().max() < 1


def test_sfir_positions_learn_through_the_identity_gradient() -> None:
    torch.manual_seed(2)
    layer = SparseFIR(latent_samples=4, taps=8, interval=8)
    filters = layer(torch.randn(1, 1, 4))
    target = torch.roll(filters.detach(), 1, dims=-1)  # every tap one sample later
    F.mse_loss(filters, target).backward()
    assert layer.positions.weight.grad.abs().sum() > 0 and layer.coefficients.weight.grad.abs().sum() > 0


def test_fft_convolution_equals_direct_causal_convolution() -> None:
    torch.manual_seed(3)
    signal, filters = torch.randn(2, 4, 300), torch.randn(2, 4, 300)
    fast = fft_convolve(signal, filters)
    direct = torch.stack(
        [F.conv1d(F.pad(signal[b : b + 1], (299, 0)), filters[b].flip(-1).unsqueeze(1), groups=4)[0] for b in range(2)]
    )
    assert torch.allclose(fast, direct, atol=1e-4)
    impulse = torch.zeros(1, 1, 300)
    impulse[..., 0] = 1
    assert torch.allclose(fft_convolve(impulse, filters[:1, :1]), filters[:1, :1], atol=1e-5)


def test_unpooling_with_indices_restores_the_maxima_in_place() -> None:
    front_end = AdaptiveFrontEnd(filters=4, kernel_samples=8, local_kernel_samples=16, latent_samples=8)
    frames = torch.randn(2, 1, 64)
    _, envelopes, latent, indices = front_end(frames)
    restored = unpool(latent, indices, 64)
    assert ((restored != 0).sum(-1) == 8).all()
    assert torch.equal(restored.gather(-1, indices), envelopes.gather(-1, indices))
    assert torch.equal(unpool(latent, None, 64), latent.repeat_interleave(8, -1))
    with pytest.raises(ValueError, match="multiple"):
        front_end(torch.randn(1, 1, 60))
