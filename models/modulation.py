"""Modulation-spectrum distance: does an output's loudness move, band by band, at the rates the real effect's does?

A chorus or a tremolo is heard as slow movement of the spectrum. MR-STFT compares short frames one by one and is
nearly blind to it: an output that averages the movement away can score well. The modulation spectrum is the
spectrum of each frequency band's log-magnitude envelope over time (Sukittanon et al.; as used for audio-effect
evaluation): :func:`modulation_spectrum` gives, for log-spaced bands, the power of the envelope's movement at
modulation frequencies up to :data:`MAX_MODULATION_HZ`, and :func:`modulation_distance` the mean squared difference
of two such spectra in dB/80 (the scale of :mod:`models.metrics`).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from models.errors import ReaTimbreError

N_FFT = 2048
HOP = 256
BANDS = 12
MIN_BAND_HZ = 100.0
MAX_MODULATION_HZ = 20.0
DB_FLOOR = -100.0


def modulation_spectrum(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(bands, modulation bins) power in dB of each band's mean-removed log-magnitude envelope, and the bins' Hz.

    Bands are log-spaced from 100 Hz to the Nyquist frequency; the envelope is the band's summed STFT power in dB
    (2048-point frames every 256 samples), its mean removed, Hann-windowed over the whole signal."""
    audio = np.asarray(audio, dtype=np.float64).ravel()
    if audio.size < 4 * N_FFT:
        raise ReaTimbreError(f"a modulation spectrum needs at least {4 * N_FFT} samples, got {audio.size}")
    freqs, _, stft = signal.stft(audio, sample_rate, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None)
    power = np.abs(stft) ** 2
    edges = np.geomspace(MIN_BAND_HZ, sample_rate / 2, BANDS + 1)
    envelopes = np.stack(
        [
            10 * np.log10(power[(freqs >= lo) & (freqs < hi)].sum(axis=0) + 1e-10)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
    )
    envelopes = np.maximum(envelopes, DB_FLOOR)
    envelopes -= envelopes.mean(axis=1, keepdims=True)
    window = np.hanning(envelopes.shape[1])
    spectrum = np.abs(np.fft.rfft(envelopes * window, axis=1)) ** 2 / np.sum(window**2)
    rates = np.fft.rfftfreq(envelopes.shape[1], HOP / sample_rate)
    keep = (rates > 0) & (rates <= MAX_MODULATION_HZ)
    return 10 * np.log10(spectrum[:, keep] + 1e-10), rates[keep]


def modulation_distance(estimate: np.ndarray, target: np.ndarray, sample_rate: int) -> float:
    """Mean squared difference of the two modulation spectra, in dB/80 (0: the same movement)."""
    a, _ = modulation_spectrum(estimate, sample_rate)
    b, _ = modulation_spectrum(target, sample_rate)
    return float(np.mean(((a - b) / 80.0) ** 2))
