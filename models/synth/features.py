"""Spectral features of synth clips, as the SerumRNN paper defines them.

Features are computed from the mono mix (mean of the channels) of a clip, without normalising its level:

* ``mel_db80``: power mel spectrogram (n_fft 2048, hop 512, 128 mels over 20 Hz–16 kHz, Hann window, centred
  frames), converted to dB with ``ref=1``, clamped to 80 dB below the clip's peak, then divided by 80.
  ``mel_db80 * 80`` is in dB (re 1.0 power); a clip's values span at most 1.0 below its peak.
* ``mfcc``: 30 MFCCs, the orthonormal DCT-II of the dB mel (not of the /80 version), as librosa computes them.

A clip of :data:`CLIP_SAMPLES` samples (1.01 s at 44.1 kHz) gives :data:`CLIP_FRAMES` frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import scipy.fft
import scipy.sparse

from models.rates import SAMPLE_RATE_HZ

N_FFT = 2048
HOP_SAMPLES = 512
N_MELS = 128
N_MFCC = 30
FMIN_HZ = 20.0
FMAX_HZ = 16000.0
TOP_DB = 80.0
AMIN_POWER = 1e-10
CLIP_SAMPLES = 87 * HOP_SAMPLES  # 44,544 samples: 1 s rounded up to whole hops, as in SerumRNN
CLIP_FRAMES = 1 + CLIP_SAMPLES // HOP_SAMPLES  # 88


@dataclass(frozen=True)
class ClipFeatures:
    """Features of one clip or a batch: ``mel_db80`` (..., 128, frames), ``mfcc`` (..., 30, frames)."""

    mel_db80: np.ndarray
    mfcc: np.ndarray


def hz_to_mel(hz: npt.ArrayLike) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _MEL_HZ_PER_STEP
    logarithmic = _MEL_AT_1KHZ + np.log(np.maximum(hz, 1e-10) / 1000.0) / _MEL_LOG_STEP
    return np.where(hz >= 1000.0, logarithmic, linear)


def mel_to_hz(mel: npt.ArrayLike) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _MEL_AT_1KHZ, 1000.0 * np.exp(_MEL_LOG_STEP * (mel - _MEL_AT_1KHZ)), mel * _MEL_HZ_PER_STEP)


_MEL_HZ_PER_STEP = 200.0 / 3.0
_MEL_AT_1KHZ = 1000.0 / _MEL_HZ_PER_STEP
_MEL_LOG_STEP = float(np.log(6.4) / 27.0)


@lru_cache(maxsize=4)
def mel_filterbank(sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Slaney-normalised triangular mel filter bank, shape (128, n_fft // 2 + 1), float32 (as librosa's)."""
    fft_hz = np.linspace(0.0, sample_rate_hz / 2.0, 1 + N_FFT // 2)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(FMIN_HZ), hz_to_mel(FMAX_HZ), N_MELS + 2))
    widths_hz = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths_hz[:-1, None]
    falling = ramps[2:] / widths_hz[1:, None]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    bank = bank.astype(np.float32)
    bank.setflags(write=False)
    return bank


@lru_cache(maxsize=4)
def _sparse_filterbank(sample_rate_hz: int) -> scipy.sparse.csr_array:
    """:func:`mel_filterbank` as a sparse matrix: each band covers a few FFT bins (1,462 of 131,200 weights are not
    zero), so the product costs a fifth of the dense one's time. Only the bins up to the highest band's last one
    (744 of 1,025 at 44.1 kHz: 16 kHz) are kept, so the power above them need not be computed (the same sums)."""
    bank = mel_filterbank(sample_rate_hz)
    used_bins = int(np.flatnonzero(bank.any(axis=0)).max()) + 1
    return scipy.sparse.csr_array(bank[:, :used_bins])


@lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    n = np.arange(N_FFT)
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)).astype(np.float32)  # periodic Hann
    window.setflags(write=False)
    return window


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Mono mix of audio shaped (samples,), (channels, samples) or (batch, channels, samples)."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio if audio.ndim == 1 else audio.mean(axis=-2)


def mel_power(mono: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Power mel spectrogram of mono audio (..., samples) → (..., 128, frames), centred zero-padded frames."""
    mono = np.asarray(mono, dtype=np.float32)
    pad = N_FFT // 2
    padded = np.pad(mono, [(0, 0)] * (mono.ndim - 1) + [(pad, pad)])
    n_frames = 1 + (padded.shape[-1] - N_FFT) // HOP_SAMPLES
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=-1)[..., ::HOP_SAMPLES, :][..., :n_frames, :]
    bank = _sparse_filterbank(sample_rate_hz)
    spectrum = scipy.fft.rfft(frames * _hann_window(), axis=-1, workers=1, overwrite_x=True)[..., : bank.shape[1]]
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32, copy=False)
    bands = bank @ power.reshape(-1, power.shape[-1]).T  # (128, all frames)
    return np.swapaxes(bands.T.reshape(*power.shape[:-1], N_MELS), -1, -2)


def power_to_db(power: np.ndarray) -> np.ndarray:
    """``10·log10(max(power, 1e-10))`` clamped to 80 dB below each spectrogram's peak (last two axes)."""
    db = 10.0 * np.log10(np.maximum(power, AMIN_POWER))
    peak = db.max(axis=(-2, -1), keepdims=True)
    return np.maximum(db, peak - TOP_DB)


def mfcc_from_db(mel_db: np.ndarray) -> np.ndarray:
    """30 MFCCs (orthonormal DCT-II over the mel axis) of a dB mel spectrogram (..., 128, frames)."""
    return scipy.fft.dct(mel_db, type=2, axis=-2, norm="ortho")[..., :N_MFCC, :]


def clip_mel_db80(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """``mel_db80`` alone (see :func:`clip_features`): what comparing a render with a target needs."""
    return (power_to_db(mel_power(to_mono(audio), sample_rate_hz)) / TOP_DB).astype(np.float32)


def clip_features(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> ClipFeatures:
    """Features of a clip (channels, samples), mono (samples,), or a batch (batch, channels, samples)."""
    mel_db = power_to_db(mel_power(to_mono(audio), sample_rate_hz))
    return ClipFeatures(mel_db80=(mel_db / TOP_DB).astype(np.float32), mfcc=mfcc_from_db(mel_db).astype(np.float32))
