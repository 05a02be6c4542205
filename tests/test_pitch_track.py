"""models.pitch_track.pyin: librosa's pyin, frame for frame, with a banded Viterbi pass."""

from __future__ import annotations

import numpy as np
import pytest

from models.pitch import FMAX_HZ, FMIN_HZ, FRAME, HOP
from models.pitch_track import pyin

RATE_HZ = 22_050
SECONDS = np.arange(int(0.5 * RATE_HZ)) / RATE_HZ


def _harmonic(f0_hz: float) -> np.ndarray:
    return sum(np.sin(2 * np.pi * f0_hz * k * SECONDS) / k for k in range(1, 6) if f0_hz * k < RATE_HZ / 2)


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "C1 at the range's bottom": _harmonic(32.8),
        "A3": _harmonic(220.0),
        "a tone near C8": np.sin(2 * np.pi * 4000.0 * SECONDS),
        "noise": rng.standard_normal(SECONDS.size),
        "C major chord": sum(np.sin(2 * np.pi * f * SECONDS) for f in (261.6, 329.6, 392.0)),
        "glide 100-800 Hz": np.sin(2 * np.pi * np.cumsum(np.linspace(100.0, 800.0, SECONDS.size)) / RATE_HZ),
        "a note, then silence": np.where(SECONDS < 0.25, _harmonic(150.0), 0.0),
        "a decay into noise": _harmonic(330.0) * np.exp(-12 * SECONDS) + 1e-3 * rng.standard_normal(SECONDS.size),
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_the_track_is_librosas_frame_for_frame(name: str) -> None:
    import librosa

    audio = (0.3 * _signals()[name] / np.abs(_signals()[name]).max()).astype(np.float32)
    f0_hz, voiced, probability = pyin(audio, RATE_HZ, FMIN_HZ, FMAX_HZ, FRAME, HOP)
    want_f0, want_voiced, want_probability = librosa.pyin(
        audio, fmin=FMIN_HZ, fmax=FMAX_HZ, sr=RATE_HZ, frame_length=FRAME, hop_length=HOP, center=True
    )
    assert np.array_equal(voiced, want_voiced)
    assert np.array_equal(f0_hz, want_f0, equal_nan=True)
    assert np.array_equal(probability, want_probability)


def test_a_pitched_note_is_tracked_at_its_pitch_and_noise_mostly_is_not() -> None:
    f0_hz, voiced, probability = pyin(_harmonic(220.0).astype(np.float32), RATE_HZ, FMIN_HZ, FMAX_HZ, FRAME, HOP)
    assert voiced.all() and np.all(np.abs(12 * np.log2(f0_hz / 220.0)) < 0.1)
    assert np.median(probability) > 0.9  # the first frames are half zero padding
    noise = np.random.default_rng(0).standard_normal(SECONDS.size).astype(np.float32)
    _, voiced, _ = pyin(noise, RATE_HZ, FMIN_HZ, FMAX_HZ, FRAME, HOP)
    assert voiced.mean() < 0.5


def test_a_range_the_frame_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        pyin(np.zeros(RATE_HZ, np.float32), RATE_HZ, 5.0, FMAX_HZ, FRAME, HOP)  # a 5 Hz period is 4,410 samples
    with pytest.raises(ValueError, match="does not fit"):
        pyin(np.zeros(RATE_HZ, np.float32), RATE_HZ, FMIN_HZ, 20_000.0, FRAME, HOP)  # above Nyquist
