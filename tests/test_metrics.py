"""The audio distance metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import metrics
from models.errors import ReaTimbreError


def test_mse_and_mae_of_a_constant_offset() -> None:
    a = np.zeros((4, 3))
    b = np.full((4, 3), 0.5)
    assert metrics.spectral_mse(a, b) == pytest.approx(0.25)
    assert metrics.spectral_mae(a, b) == pytest.approx(0.5)


def test_mse_and_mae_hand_computed_mixed_differences() -> None:
    a = np.array([[0.0, 0.2], [0.4, -0.1]])
    b = np.array([[0.1, 0.2], [0.0, 0.1]])
    # differences 0.1, 0, 0.4, 0.2
    assert metrics.spectral_mse(a, b) == pytest.approx((0.01 + 0 + 0.16 + 0.04) / 4)
    assert metrics.spectral_mae(a, b) == pytest.approx((0.1 + 0 + 0.4 + 0.2) / 4)


def test_lsd_is_mean_over_frames_of_rms_over_bins_in_db() -> None:
    a = np.zeros((2, 2))  # (mel bins, frames)
    b = np.array([[0.1, 0.0], [0.1, 0.0]])  # frame 0 differs by 8 dB in both bins, frame 1 equal
    assert metrics.lsd_db(a, b) == pytest.approx(4.0)
    c = np.array([[0.1, 0.0], [0.0, 0.0]])  # frame 0: bins 8 dB and 0 dB → rms sqrt(32)
    assert metrics.lsd_db(a, c) == pytest.approx(math.sqrt(32) / 2)


def test_mfcc_distance_is_mean_euclidean_distance_per_frame() -> None:
    a = np.zeros((2, 2))  # (coefficients, frames)
    b = np.array([[3.0, 0.0], [4.0, 0.0]])
    assert metrics.mfcc_distance(a, b) == pytest.approx(2.5)


def test_metrics_are_zero_for_identical_inputs_and_symmetric() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 128, 88))
    for fn in (metrics.spectral_mse, metrics.spectral_mae, metrics.lsd_db, metrics.mfcc_distance):
        assert fn(a, a) == 0.0
        assert fn(a, b) == pytest.approx(fn(b, a))
        assert fn(a, b) > 0


def test_batched_inputs_give_one_value_per_item() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 5, 16, 10))
    batch = metrics.spectral_mse(a, b)
    assert batch.shape == (5,)
    assert batch[3] == pytest.approx(metrics.spectral_mse(a[3], b[3]))
    assert metrics.lsd_db(a, b)[2] == pytest.approx(metrics.lsd_db(a[2], b[2]))


def test_pearson_correlation_hand_cases() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert metrics.pearson_correlation(a, 2 * a + 1) == pytest.approx(1.0)
    assert metrics.pearson_correlation(a, -a) == pytest.approx(-1.0)
    assert metrics.pearson_correlation(a, np.ones_like(a)) == 0.0


def test_multiscale_spectral_mae_log_term_sees_a_gain_of_two() -> None:
    noise = np.random.default_rng(2).normal(size=8192)
    assert metrics.multiscale_spectral_mae(noise, noise) == 0.0
    log_only = metrics.multiscale_spectral_mae(noise, 2 * noise, linear_weight=0.0)
    assert log_only == pytest.approx(math.log(2.0), rel=1e-3)


def test_multiscale_spectral_mae_linear_term_of_a_sine_against_silence() -> None:
    n = 8192
    sine = np.sin(2 * np.pi * 64 * np.arange(n) / 1024)  # exactly on a bin of every FFT size
    value = metrics.multiscale_spectral_mae(sine, np.zeros(n), fft_sizes=(1024,), log_weight=0.0)
    # a Hann-windowed unit sine on bin k has |X[k]| = N/4 and |X[k±1]| = N/8 → 3·1024/8 … per frame of 513 bins
    interior = value * 513  # total magnitude per frame, dominated by full-length interior frames
    assert interior == pytest.approx(1024 / 4 + 2 * 1024 / 8, rel=0.15)


def test_bad_inputs_raise_one_clear_error() -> None:
    with pytest.raises(ReaTimbreError, match="different shapes"):
        metrics.spectral_mse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ReaTimbreError, match="NaN"):
        metrics.lsd_db(np.full((2, 2), np.nan), np.zeros((2, 2)))
    with pytest.raises(ReaTimbreError, match="shorter"):
        metrics.multiscale_spectral_mae(np.zeros(100), np.zeros(100))


def test_spectral_report_collects_every_metric() -> None:
    a = np.zeros((4, 3))
    b = np.full((4, 3), 0.5)
    report = metrics.spectral_report(a, b, a, b)
    assert report["mse"] == pytest.approx(0.25)
    assert report["lsd_db"] == pytest.approx(40.0)
    assert report["mfcc_distance"] == pytest.approx(1.0)
    assert set(report) == {"mse", "mae", "lsd_db", "mfcc_distance", "pcc"}
