"""The thesis's objective metrics for the afx tasks, each also as a ratio to the dry input's.

All take the target (the real effect's output) and an estimate, mono float arrays of one length and a sample rate;
lower is better for every one, and :func:`ratio_to_dry` divides the estimate's score by the dry input's (the
input passed through unchanged), so below 1 means closer to the effect than doing nothing.

- ``mae``: energy-normalised mean absolute error (Sec. 5.3.3: both signals scaled to unit RMS first).
- ``mfcc_cosine``: 1 minus the mean cosine similarity of 13 MFCCs per frame (Sec. 5.3.3: energy-normalised audio,
  log-power mel spectrogram of 40 bands, frames of 4096 with 50 % hop, DCT); 0 for identical MFCCs.
- ``ms_mse``: the modulation-spectrum MSE (Sec. 6.3.3): 12 gammatone filters 26 Hz - 6.95 kHz (log-spaced),
  Hilbert envelopes at 400 Hz, 12 modulation band-passes 0.5 - 100 Hz (log-spaced), the FFT magnitude of each
  modulation band summed over all bands, the MSE of its log10.
- ``logpower_mse``: the spectral term of Eq. 8.6, the MSE of the dB log-power spectra of 4096-sample frames
  (50 % hop).
- ``mrstft``: the multi-resolution STFT distance (spectral convergence + mean absolute log10 magnitude difference,
  FFT sizes 512, 1024 and 2048, hop a quarter), averaged over the resolutions.
- ``t60_error``: for reverbs, the absolute difference in seconds between the T60 of the estimate's and the target's
  impulse responses (:func:`t60_seconds`, Schroeder integration, T20 fit extrapolated to -60 dB); the callers
  pass the responses to a unit impulse.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable

import numpy as np
from scipy import fft as sfft
from scipy import signal

EPS = 1e-10


def _check(target: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, e = np.asarray(target, np.float64), np.asarray(estimate, np.float64)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError(f"target and estimate must be (samples,) of one length, got {t.shape} and {e.shape}")
    return t, e


def _unit_energy(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.sqrt(np.mean(x**2))), EPS)


def mae(target: np.ndarray, estimate: np.ndarray, sample_rate: int = 16_000) -> float:
    t, e = _check(target, estimate)
    return float(np.mean(np.abs(_unit_energy(t) - _unit_energy(e))))


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    x = np.pad(x, (0, max(0, size - len(x)) + (-max(0, len(x) - size)) % hop))
    return np.lib.stride_tricks.sliding_window_view(x, size)[::hop]


def mfccs(x: np.ndarray, sample_rate: int, frame: int = 4096, bands: int = 40, coefficients: int = 13) -> np.ndarray:
    """(frames, coefficients) MFCCs of the energy-normalised signal (Hann frames, 50 % hop)."""
    import librosa

    frames = _frames(_unit_energy(x), frame, frame // 2) * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    mel = librosa.filters.mel(sr=sample_rate, n_fft=frame, n_mels=bands)
    return sfft.dct(np.log10(power @ mel.T + EPS), type=2, norm="ortho", axis=-1)[:, :coefficients]


def mfcc_cosine(target: np.ndarray, estimate: np.ndarray, sample_rate: int = 16_000) -> float:
    t, e = _check(target, estimate)
    a, b = mfccs(t, sample_rate), mfccs(e, sample_rate)
    similarity = np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), EPS)
    return float(1.0 - np.mean(similarity))


ENVELOPE_RATE_HZ = 400


_SPECTRA: dict[tuple[bytes, int], np.ndarray] = {}
"""Recent modulation spectra by their signal's digest: a target is scored against the dry input and every model."""
_SPECTRA_KEPT = 32
_SPECTRA_LOCK = threading.Lock()


def modulation_spectrum(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """The summed modulation spectrum (FFT magnitude bins at the 400 Hz envelope rate), read-only; a signal met
    again (the same samples) is not analysed again."""
    signal_data = np.ascontiguousarray(x, dtype=np.float64)
    key = (
        hashlib.blake2b(signal_data.tobytes(), digest_size=16).digest() + str(signal_data.shape).encode(),
        sample_rate,
    )
    with _SPECTRA_LOCK:
        known = _SPECTRA.get(key)
    if known is not None:
        return known
    spectrum = _modulation_spectrum(signal_data, sample_rate)
    spectrum.flags.writeable = False
    with _SPECTRA_LOCK:
        while len(_SPECTRA) >= _SPECTRA_KEPT:
            del _SPECTRA[next(iter(_SPECTRA))]
        _SPECTRA[key] = spectrum
    return spectrum


@functools.cache
def _filter_bank(sample_rate: int) -> tuple[tuple[tuple[np.ndarray, np.ndarray], ...], tuple[np.ndarray, ...]]:
    """The modulation spectrum's filters at ``sample_rate`` Hz, designed once: 12 gammatone bands (26 Hz to
    6.95 kHz, IIR ``b, a``) and 12 octave-wide modulation bands (0.5 to 100 Hz, second-order Butterworth sections
    at the envelope rate). Shared: callers only read them."""
    centres = np.geomspace(26.0, min(6950.0, 0.45 * sample_rate), 12)
    gammatones = tuple(signal.gammatone(centre, "iir", fs=sample_rate) for centre in centres)
    modulations = []
    for modulation in np.geomspace(0.5, 100.0, 12):
        low, high = modulation / np.sqrt(2), min(modulation * np.sqrt(2), 0.49 * ENVELOPE_RATE_HZ)
        modulations.append(signal.butter(2, [low, high], "bandpass", fs=ENVELOPE_RATE_HZ, output="sos"))
    return gammatones, tuple(modulations)


def _modulation_spectrum(x: np.ndarray, sample_rate: int) -> np.ndarray:
    gammatones, modulations = _filter_bank(sample_rate)
    total = None
    for b, a in gammatones:
        envelope = np.abs(signal.hilbert(signal.lfilter(b, a, x)))
        envelope = signal.resample_poly(envelope, ENVELOPE_RATE_HZ, sample_rate)
        for sos in modulations:
            spectrum = np.abs(np.fft.rfft(signal.sosfilt(sos, envelope)))
            total = spectrum if total is None else total + spectrum
    assert total is not None
    return total


def ms_mse(target: np.ndarray, estimate: np.ndarray, sample_rate: int = 16_000) -> float:
    t, e = _check(target, estimate)
    a, b = modulation_spectrum(t, sample_rate), modulation_spectrum(e, sample_rate)
    return float(np.mean((np.log10(a + EPS) - np.log10(b + EPS)) ** 2))


def logpower_mse(target: np.ndarray, estimate: np.ndarray, sample_rate: int = 16_000) -> float:
    t, e = _check(target, estimate)

    def db(x: np.ndarray) -> np.ndarray:
        return 10 * np.log10(np.abs(np.fft.rfft(_frames(x, 4096, 2048), axis=-1)) ** 2 + EPS)

    return float(np.mean((db(t) - db(e)) ** 2))


def mrstft(target: np.ndarray, estimate: np.ndarray, sample_rate: int = 16_000) -> float:
    t, e = _check(target, estimate)
    total = 0.0
    for size in (512, 1024, 2048):
        window = np.hanning(size)
        a = np.abs(np.fft.rfft(_frames(t, size, size // 4) * window, axis=-1))
        b = np.abs(np.fft.rfft(_frames(e, size, size // 4) * window, axis=-1))
        convergence = float(np.linalg.norm(a - b)) / max(float(np.linalg.norm(a)), EPS)
        total += convergence + float(np.mean(np.abs(np.log10(a + 1e-7) - np.log10(b + 1e-7))))
    return total / 3


def t60_seconds(response: np.ndarray, sample_rate: int) -> float:
    """T60 of an impulse response: Schroeder's backward-integrated energy decay, a line fitted from -5 to -25 dB,
    extended to -60 dB. 0 for a response that never falls 25 dB below its start (or has no energy)."""
    energy = np.cumsum(np.asarray(response, np.float64)[::-1] ** 2)[::-1]
    if energy[0] <= 0:
        return 0.0
    decay_db = 10 * np.log10(energy / energy[0] + 1e-30)
    inside = np.nonzero((decay_db <= -5) & (decay_db >= -25))[0]
    if len(inside) < 2 or decay_db[-1] > -25:
        return 0.0
    slope = np.polyfit(inside / sample_rate, decay_db[inside], 1)[0]
    return float(-60.0 / slope) if slope < 0 else 0.0


def t60_error(target_response: np.ndarray, estimate_response: np.ndarray, sample_rate: int = 16_000) -> float:
    t, e = _check(target_response, estimate_response)
    return abs(t60_seconds(t, sample_rate) - t60_seconds(e, sample_rate))


Metric = Callable[[np.ndarray, np.ndarray, int], float]
METRICS: dict[str, Metric] = {
    "mae": mae,
    "mfcc_cosine": mfcc_cosine,
    "ms_mse": ms_mse,
    "logpower_mse": logpower_mse,
    "mrstft": mrstft,
}
"""The metrics over signals (``t60_error`` takes impulse responses instead)."""


def ratio_to_dry(metric: Metric, target: np.ndarray, estimate: np.ndarray, dry: np.ndarray, sample_rate: int) -> float:
    """The estimate's score over the dry input's (inf when the dry input already scores 0 and the estimate not)."""
    model, baseline = metric(target, estimate, sample_rate), metric(target, dry, sample_rate)
    if baseline == 0:
        return 1.0 if model == 0 else float("inf")
    return model / baseline


def report(target: np.ndarray, estimate: np.ndarray, dry: np.ndarray, sample_rate: int) -> dict[str, dict[str, float]]:
    """Each metric of the estimate and of the dry input, and their ratio."""
    out = {}
    for name, metric in METRICS.items():
        model, baseline = metric(target, estimate, sample_rate), metric(target, dry, sample_rate)
        out[name] = {"model": model, "dry": baseline, "ratio": model / baseline if baseline else float("inf")}
    return out
