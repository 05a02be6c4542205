"""Loss and evaluation figures agree with the reference implementations users compare against."""

import math

import numpy as np
import pytest
import torch

from models import evaluation
from models.losses import MultiResolutionSTFTLoss, error_to_signal_ratio, frame_level_distance_db


def test_mrstft_matches_auraloss_with_the_papers_settings() -> None:
    auraloss = pytest.importorskip("auraloss")
    torch.manual_seed(1)
    target = torch.randn(2, 1, 12_000)
    estimate = 0.6 * target + 0.05 * torch.randn(2, 1, 12_000)
    sizes = [32, 128, 512, 2048]
    reference = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=sizes, hop_sizes=[n // 2 for n in sizes], win_lengths=sizes
    )(estimate, target)
    ours = MultiResolutionSTFTLoss(sizes)(estimate, target)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-4)


def test_mrstft_is_zero_for_identical_and_grows_with_difference() -> None:
    x = torch.randn(1, 8_000)
    loss = MultiResolutionSTFTLoss()
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(0.9 * x, x).item() < loss(0.5 * x, x).item()


def test_esr_hand_computed() -> None:
    target = torch.tensor([[1.0, -1.0, 2.0, 0.0]])
    estimate = torch.tensor([[1.0, 0.0, 2.0, 1.0]])
    assert error_to_signal_ratio(estimate, target).item() == pytest.approx(2.0 / 6.0, rel=1e-6)


def test_loudness_error_of_a_6_db_gain_change() -> None:
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((1, 44_100 * 3))).astype(np.float32)
    assert evaluation.loudness_error_db(audio * 2.0, audio, 44_100) == pytest.approx(20 * np.log10(2.0), abs=0.01)


def test_frame_level_distance_is_the_level_difference_in_db_and_ignores_silence() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8_192)
    assert frame_level_distance_db(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert frame_level_distance_db(2 * x, x).item() == pytest.approx(20 * np.log10(2), rel=1e-4)
    assert frame_level_distance_db(torch.zeros_like(x), 1e-6 * x).item() < 0.1  # both at the -80 dB floor
    louder_second_half = x.clone()
    louder_second_half[..., 4_096:] *= 10  # 20 dB up in 3 of the 7 half-overlapping frames, 10 dB-ish in one
    assert 20 * 3 / 7 < frame_level_distance_db(louder_second_half, x).item() < 20 * 5 / 7


def test_band_levels_measure_a_gain_in_db_and_ignore_inaudible_bands() -> None:
    from models.losses import band_level_distance_db

    noise = torch.randn(2, 16_384, generator=torch.Generator().manual_seed(0))
    assert band_level_distance_db(noise, noise, 44_100).item() == 0.0
    assert abs(band_level_distance_db(2 * noise, noise, 44_100).item() - 20 * math.log10(2)) < 1e-3
    # A difference 80 dB below the loudest band is out of the range: it costs nothing.
    t = torch.arange(16_384) / 44_100
    tone = torch.sin(2 * math.pi * 1000 * t)[None]
    hum = 1e-5 * torch.sin(2 * math.pi * 60 * t)[None]
    assert band_level_distance_db(tone + hum, tone, 44_100).item() < 1e-3


def test_band_levels_see_a_low_end_a_few_db_short() -> None:
    from models.losses import band_level_distance_db

    t = torch.arange(8192) / 44_100
    bass = torch.sin(2 * math.pi * 80 * t) + 0.3 * torch.sin(2 * math.pi * 2000 * t)
    quieter_low = 10 ** (-3 / 20) * torch.sin(2 * math.pi * 80 * t) + 0.3 * torch.sin(2 * math.pi * 2000 * t)
    assert band_level_distance_db(quieter_low[None], bass[None], 44_100).item() > 0.1
