"""Audio distance metrics: a flat module of functions over numpy arrays.

Spectrogram metrics follow the SerumRNN paper. They take ``mel_db80`` arrays — power mel spectrograms in dB
divided by 80 (:func:`models.synth.features.clip_features`) — shaped (..., n_mels, n_frames); leading axes are
a batch and give one value per item, a plain (n_mels, n_frames) pair gives a float.

* :func:`spectral_mse`, :func:`spectral_mae` — mean (squared) difference of the dB/80 values (the paper's
  tables print these ×100);
* :func:`lsd_db` — log-spectral distance: mean over frames of the RMS over mel bins of the dB difference;
* :func:`mfcc_distance` — mean over frames of the Euclidean distance between MFCC vectors (..., n_mfcc, frames);
* :func:`pearson_correlation` — PCC between two spectrograms;
* :func:`multiscale_spectral_mae` — on audio: MAE of linear and of log STFT magnitudes averaged over FFT sizes.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from models.errors import ReaTimbreError

DB_SCALE = 80.0
MULTISCALE_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
LOG_EPS = 1e-7


def _pair(a: np.ndarray, b: np.ndarray, min_ndim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ReaTimbreError(f"cannot compare arrays of different shapes {a.shape} and {b.shape}")
    if a.ndim < min_ndim or a.size == 0:
        raise ReaTimbreError(f"need non-empty arrays with at least {min_ndim} axes, got shape {a.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ReaTimbreError("cannot compare arrays holding NaN or infinite values")
    return a, b


def _scalar(value: np.ndarray) -> float | np.ndarray:
    return float(value) if np.ndim(value) == 0 else value


def spectral_mse(mel_db80_a: np.ndarray, mel_db80_b: np.ndarray) -> float | np.ndarray:
    """Mean squared difference of two dB/80 mel spectrograms (paper's MSE; tables show ×100)."""
    a, b = _pair(mel_db80_a, mel_db80_b)
    return _scalar(np.mean((a - b) ** 2, axis=(-2, -1)))


def spectral_mae(mel_db80_a: np.ndarray, mel_db80_b: np.ndarray) -> float | np.ndarray:
    """Mean absolute difference of two dB/80 mel spectrograms (paper's MAE; tables show ×100)."""
    a, b = _pair(mel_db80_a, mel_db80_b)
    return _scalar(np.mean(np.abs(a - b), axis=(-2, -1)))


def lsd_db(mel_db80_a: np.ndarray, mel_db80_b: np.ndarray) -> float | np.ndarray:
    """Log-spectral distance in dB: mean over frames of sqrt(mean over mel bins of (dB_a − dB_b)²)."""
    a, b = _pair(mel_db80_a, mel_db80_b)
    diff_db = (a - b) * DB_SCALE
    return _scalar(np.mean(np.sqrt(np.mean(diff_db**2, axis=-2)), axis=-1))


def mfcc_distance(mfcc_a: np.ndarray, mfcc_b: np.ndarray) -> float | np.ndarray:
    """Mean over frames of the Euclidean distance between MFCC vectors, arrays (..., n_mfcc, n_frames)."""
    a, b = _pair(mfcc_a, mfcc_b)
    return _scalar(np.mean(np.sqrt(np.sum((a - b) ** 2, axis=-2)), axis=-1))


def pearson_correlation(mel_db80_a: np.ndarray, mel_db80_b: np.ndarray) -> float | np.ndarray:
    """Pearson correlation of two spectrograms over all their bins (1 = same shape up to gain and offset).

    A constant spectrogram has no defined correlation; it gives 0.
    """
    a, b = _pair(mel_db80_a, mel_db80_b)
    a = a - a.mean(axis=(-2, -1), keepdims=True)
    b = b - b.mean(axis=(-2, -1), keepdims=True)
    denominator = np.sqrt(np.sum(a**2, axis=(-2, -1)) * np.sum(b**2, axis=(-2, -1)))
    numerator = np.sum(a * b, axis=(-2, -1))
    safe = np.where(denominator > 0, denominator, 1.0)
    return _scalar(np.where(denominator > 0, numerator / safe, 0.0))


def _stft_magnitude(audio: np.ndarray, n_fft: int) -> np.ndarray:
    hop = n_fft // 4
    pad = n_fft // 2
    padded = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(pad, pad)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[..., ::hop, :]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    return np.abs(scipy.fft.rfft(frames * window, axis=-1))


def multiscale_spectral_mae(
    audio_a: np.ndarray,
    audio_b: np.ndarray,
    fft_sizes: tuple[int, ...] = MULTISCALE_FFT_SIZES,
    linear_weight: float = 1.0,
    log_weight: float = 1.0,
) -> float:
    """Multi-scale spectral MAE of two signals (..., samples): for each FFT size (hop = size/4, Hann window),
    ``linear_weight · mean|S_a − S_b| + log_weight · mean|log(S_a + ε) − log(S_b + ε)|``, averaged over sizes.
    """
    a, b = _pair(audio_a, audio_b, min_ndim=1)
    if a.shape[-1] < max(fft_sizes):
        raise ReaTimbreError(f"signals of {a.shape[-1]} samples are shorter than the largest FFT ({max(fft_sizes)})")
    total = 0.0
    for n_fft in fft_sizes:
        mag_a, mag_b = _stft_magnitude(a, n_fft), _stft_magnitude(b, n_fft)
        total += linear_weight * float(np.mean(np.abs(mag_a - mag_b)))
        total += log_weight * float(np.mean(np.abs(np.log(mag_a + LOG_EPS) - np.log(mag_b + LOG_EPS))))
    return total / len(fft_sizes)


def spectral_report(
    mel_db80_a: np.ndarray, mel_db80_b: np.ndarray, mfcc_a: np.ndarray, mfcc_b: np.ndarray
) -> dict[str, float]:
    """The paper's four distances plus PCC for one pair of clips, as plain floats."""
    return {
        "mse": float(spectral_mse(mel_db80_a, mel_db80_b)),
        "mae": float(spectral_mae(mel_db80_a, mel_db80_b)),
        "lsd_db": float(lsd_db(mel_db80_a, mel_db80_b)),
        "mfcc_distance": float(mfcc_distance(mfcc_a, mfcc_b)),
        "pcc": float(pearson_correlation(mel_db80_a, mel_db80_b)),
    }
