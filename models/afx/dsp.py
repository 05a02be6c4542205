"""Small DSP building blocks for the afx tasks: RBJ biquads, linear-phase FIRs, SoX's overdrive, modulated delays.

Every function takes a mono float64 signal and its sample rate, runs from silence and returns the same length.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def biquad(kind: str, x: np.ndarray, sample_rate: int, freq_hz: float, q: float, gain_db: float = 0.0) -> np.ndarray:
    """An RBJ-cookbook biquad: ``kind`` is "lowshelf", "highshelf", "peak", "bandpass", "lowpass" or "highpass"."""
    a_gain = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq_hz / sample_rate
    alpha = np.sin(w0) / (2 * q)
    cos = np.cos(w0)
    if kind == "peak":
        b = [1 + alpha * a_gain, -2 * cos, 1 - alpha * a_gain]
        a = [1 + alpha / a_gain, -2 * cos, 1 - alpha / a_gain]
    elif kind in ("lowshelf", "highshelf"):
        root = 2 * np.sqrt(a_gain) * alpha
        sign = 1 if kind == "lowshelf" else -1
        b = [
            a_gain * ((a_gain + 1) - sign * (a_gain - 1) * cos + root),
            sign * 2 * a_gain * ((a_gain - 1) - sign * (a_gain + 1) * cos),
            a_gain * ((a_gain + 1) - sign * (a_gain - 1) * cos - root),
        ]
        a = [
            (a_gain + 1) + sign * (a_gain - 1) * cos + root,
            -sign * 2 * ((a_gain - 1) + sign * (a_gain + 1) * cos),
            (a_gain + 1) + sign * (a_gain - 1) * cos - root,
        ]
    elif kind == "bandpass":
        b, a = [alpha, 0.0, -alpha], [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "lowpass":
        b = [(1 - cos) / 2, 1 - cos, (1 - cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    return signal.lfilter(b, a, x)


def fir(x: np.ndarray, sample_rate: int, order: int, cutoff_hz: float, highpass: bool) -> np.ndarray:
    """A windowed-sinc FIR of ``order`` (order + 1 taps, Hamming), causal."""
    taps = signal.firwin(order + 1, cutoff_hz, fs=sample_rate, pass_zero=not highpass)
    return signal.lfilter(taps, [1.0], x)


def sox_overdrive(x: np.ndarray, gain_db: float = 20.0, colour: float = 20.0) -> np.ndarray:
    """SoX's ``overdrive`` (defaults gain 20 dB, colour 20): gain plus a bias, a cubic soft clipper, SoX's DC
    blocker ``y = d - d[-1] + 0.995 y[-1]``, and half the level."""
    d = x * 10 ** (gain_db / 20) + colour / 100
    d = np.where(d < -1, -2 / 3, np.where(d > 1, 2 / 3, d - d**3 / 3))
    return 0.5 * signal.lfilter([1.0, -1.0], [1.0, -0.995], d)


def delayed(x: np.ndarray, delay_samples: np.ndarray) -> np.ndarray:
    """``x`` read ``delay_samples[n]`` (fractional, >= 0) behind each sample n, by linear interpolation."""
    position = np.arange(len(x)) - delay_samples
    base = np.floor(position).astype(int)
    frac = position - base
    padded = np.concatenate((x, [0.0]))

    def at(index: np.ndarray) -> np.ndarray:
        return np.where(index >= 0, padded[np.clip(index, 0, len(x))], 0.0)

    return (1 - frac) * at(base) + frac * at(base + 1)


def lfo(length: int, sample_rate: int, rate_hz: float, phase: float = 0.0) -> np.ndarray:
    """A sine from -1 to 1 at ``rate_hz``."""
    return np.sin(2 * np.pi * rate_hz * np.arange(length) / sample_rate + phase)


def feedback_comb(x: np.ndarray, delay_samples: int, gain: float) -> np.ndarray:
    """``y[n] = x[n] + gain * y[n - delay]``."""
    a = np.zeros(delay_samples + 1)
    a[0], a[-1] = 1.0, -gain
    return signal.lfilter([1.0], a, x)


def allpass_cascade(x: np.ndarray, stages: int, coefficient: float) -> np.ndarray:
    """``stages`` first-order all-passes ``(c + z^-1) / (1 + c z^-1)``: frequency-dependent delay (dispersion)."""
    for _ in range(stages):
        x = signal.lfilter([coefficient, 1.0], [1.0, coefficient], x)
    return x
