"""The thesis's losses, Eqs. 4.9 and 8.6, on hand-made cases."""

import math

import pytest
import torch

from models.afx.losses import eq49_loss, eq86_loss, log_power_db, mae, mae_mrstft, normalised_kl, pre_emphasis


def test_losses_are_zero_for_a_perfect_estimate_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    y = torch.randn(3, 1, 4096)  # the longest STFT of mae_mrstft is 2,048
    for loss in (eq49_loss, eq86_loss, mae, mae_mrstft):
        assert loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
        assert loss(0.5 * y, y).item() > 0.01


def test_eq49_weights_its_terms_one_one_and_a_tenth() -> None:
    y = torch.zeros(1, 1, 1024)
    estimate = torch.full((1, 1, 1024), 0.5)
    # Waveform MAE 0.5; the estimate's spectrum is all DC: 512 at bin 0 -> MSE 512**2 / 513; KL of zero vs DC is
    # that of a uniform distribution (eps everywhere) against one concentrated at DC.
    spectral = 512.0**2 / 513
    kl = normalised_kl(torch.zeros(513), torch.tensor([512.0] + [0.0] * 512)).item()
    assert eq49_loss(estimate, y).item() == pytest.approx(kl + spectral + 0.1 * 0.5, rel=1e-4)


def test_kl_of_spectra_ignores_overall_level() -> None:
    spectrum = torch.rand(4, 513) + 0.1
    assert normalised_kl(spectrum, 3 * spectrum).item() == pytest.approx(0.0, abs=1e-6)
    other = torch.rand(4, 513) + 0.1
    assert normalised_kl(spectrum, other).item() > 0


def test_pre_emphasis_is_one_minus_095_z_inverse() -> None:
    x = torch.tensor([1.0, 2.0, 0.0, -1.0])
    assert torch.allclose(pre_emphasis(x), torch.tensor([1.0, 2.0 - 0.95, -1.9, -1.0]))


def test_log_power_of_a_full_scale_bin_centred_sine() -> None:
    n = 4096
    t = torch.arange(n, dtype=torch.float64)
    sine = torch.sin(2 * math.pi * 64 * t / n)
    db = log_power_db(sine, n)
    assert db[64].item() == pytest.approx(10 * math.log10((n / 2) ** 2), abs=1e-3)
    assert db[10].item() < -100 + 1  # the floor, -100 dB


def test_eq86_adds_the_log_power_term_to_the_pre_emphasised_mae() -> None:
    torch.manual_seed(1)
    y = torch.randn(1, 1, 4096) * 0.1
    quiet = y.clone()
    quiet[..., 2048:] *= 1e-3  # a tail cut short
    waveform_only = eq86_loss(quiet, y, weights=(1.0, 0.0)).item()
    assert eq86_loss(quiet, y).item() > waveform_only > 0


def test_mae_mrstft_prefers_a_late_tone_to_silence_where_mae_prefers_silence() -> None:
    """A 2 kHz tone half a cycle late (as a horn's Doppler delay leaves it): MAE scores it worse than silence, the
    MR-STFT term sees its spectrum right, so MAE + MR-STFT scores it far better than silence."""
    n = torch.arange(4096, dtype=torch.float32)
    target = torch.sin(2 * math.pi * 2000 * n / 16_000)[None, None]
    late = torch.sin(2 * math.pi * 2000 * (n - 4) / 16_000)[None, None]
    silence = torch.zeros_like(target)
    assert mae(late, target) > mae(silence, target)
    assert mae_mrstft(late, target) < 0.5 * mae_mrstft(silence, target)


def test_mae_mrstft_stays_finite_and_small_for_a_silent_target_frame() -> None:
    """The material has gaps: a silent target frame beside a loud one must not blow the spectral convergence up
    (taken over the batch, not per frame), while a loud estimate in the gap still costs more than silence there."""
    torch.manual_seed(0)
    loud = torch.randn(1, 1, 4096)
    target = torch.cat((loud, torch.zeros(1, 1, 4096)))
    quiet_gap = torch.cat((loud, 1e-3 * torch.randn(1, 1, 4096)))
    noisy_gap = torch.cat((loud, 0.1 * torch.randn(1, 1, 4096)))
    assert mae_mrstft(quiet_gap, target) < mae_mrstft(noisy_gap, target) < 10.0
