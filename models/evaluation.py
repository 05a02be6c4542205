"""How close an effect model gets to its target: MR-STFT distance, ESR and loudness error.

Each figure is reported for the model's output and, as the baseline, for the dry input, both against the real
effect's output (the target). A model is useful when it is much closer to the target than the dry input is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from models.losses import PAPER_FFT_SIZES, MultiResolutionSTFTLoss, error_to_signal_ratio

_MRSTFT = MultiResolutionSTFTLoss(PAPER_FFT_SIZES)
METRIC_NAMES = ("mrstft", "esr", "loudness_error_db")


def mrstft_distance(estimate: np.ndarray, target: np.ndarray) -> float:
    """Multi-resolution STFT distance (FFT 32..2048, the steerable-effects paper's settings); channels averaged."""
    with torch.no_grad():
        return float(
            _MRSTFT(torch.from_numpy(np.atleast_2d(estimate)).float(), torch.from_numpy(np.atleast_2d(target)).float())
        )


def esr(estimate: np.ndarray, target: np.ndarray) -> float:
    """Error-to-signal ratio, sum (y - y_hat)^2 / sum y^2, per channel then averaged."""
    return float(
        error_to_signal_ratio(
            torch.from_numpy(np.atleast_2d(estimate)).double(), torch.from_numpy(np.atleast_2d(target)).double()
        )
    )


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4) of (channels, samples) audio; -70 for silence."""
    import pyloudnorm  # imported here: it takes seconds to import, and most users of this module never need it

    meter = pyloudnorm.Meter(sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = meter.integrated_loudness(np.atleast_2d(audio).T.astype(np.float64))
    return float(max(value, -70.0)) if np.isfinite(value) else -70.0


def loudness_error_db(estimate: np.ndarray, target: np.ndarray, sample_rate: int) -> float:
    """Absolute difference of integrated loudness, in dB (LU)."""
    return abs(loudness_lufs(estimate, sample_rate) - loudness_lufs(target, sample_rate))


def compare(estimate: np.ndarray, target: np.ndarray, sample_rate: int) -> dict[str, float]:
    """All three figures for one render."""
    return {
        "mrstft": mrstft_distance(estimate, target),
        "esr": esr(estimate, target),
        "loudness_error_db": loudness_error_db(estimate, target, sample_rate),
    }


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each figure over renders."""
    return {name: float(np.mean([r[name] for r in rows])) for name in METRIC_NAMES}


DIRECT_SECONDS = 0.005  # the direct sound: this long after the first arrival, left out of the decay fit
SMOOTHING_SECONDS = 0.010  # energy envelope window for finding where the decay meets the noise floor
FLOOR_SHARE = 0.1  # the noise floor is the mean energy of the response's last tenth
MIN_DYNAMIC_DB = 35.0  # the tail must fall this far (to its floor) for a -5..-25 dB fit to be trusted
FIT_DB = (-5.0, -25.0)  # Schroeder fit range, extrapolated x3 to 60 dB (T20)
MIN_FIT_SECONDS = 0.005  # a -5..-25 dB fall faster than this is not a reverberant decay
FIRST_ARRIVAL_DB = -20.0  # the first arrival is the first sample within this of the peak


@dataclass(frozen=True)
class DecayTime:
    """A T60 estimate: ``seconds``, or None with the ``reason`` it could not be estimated."""

    seconds: float | None
    reason: str | None = None


def t60_estimate(response: np.ndarray, sample_rate: int) -> DecayTime:
    """T60 of an impulse response, with the direct sound removed.

    The decay is measured from ``DIRECT_SECONDS`` after the first arrival (the first sample within 20 dB of the
    peak), so a loud dry path does not count as decay. The tail is cut where its 10 ms energy envelope meets the
    noise floor (the mean energy of the last tenth, +5 dB); its Schroeder backward integral is fitted from -5 to
    -25 dB and extrapolated to 60 dB. No number but a reason when the tail carries no energy or falls 20 dB in
    under 5 ms ("too short"), or when it does not fall 35 dB to its floor within the window ("too long").
    """
    h = np.asarray(response, dtype=np.float64).ravel()
    energy = h**2
    if not energy.size or not energy.max() > 0:
        return DecayTime(None, "silent")
    first = int(np.flatnonzero(energy >= energy.max() * 10 ** (FIRST_ARRIVAL_DB / 10))[0])
    tail = energy[first + max(1, int(DIRECT_SECONDS * sample_rate)) :]
    if tail.size < 2 or not tail.max() > energy.max() * 1e-6:
        return DecayTime(None, "too short: no decay after the direct sound")
    width = max(1, int(SMOOTHING_SECONDS * sample_rate))
    envelope = np.convolve(tail, np.ones(width) / width, mode="same")
    floor = tail[-max(1, int(FLOOR_SHARE * tail.size)) :].mean()
    start = int(np.argmax(envelope))
    if envelope[start] < floor * 10 ** (MIN_DYNAMIC_DB / 10):
        window = energy.size / sample_rate
        return DecayTime(None, f"too long: it does not fall {MIN_DYNAMIC_DB:.0f} dB within the {window:.1f} s window")
    above = np.flatnonzero(envelope[start:] <= floor * 10**0.5)
    end = start + int(above[0]) if above.size else tail.size
    curve = np.cumsum(tail[:end][::-1])[::-1]
    decay_db = 10 * np.log10(np.maximum(curve / curve[0], 1e-30))
    span = (decay_db <= FIT_DB[0]) & (decay_db >= FIT_DB[1])
    if span.sum() < 2 or span.sum() < MIN_FIT_SECONDS * sample_rate:
        return DecayTime(None, "too short: it falls 20 dB in under 5 ms")
    times = np.arange(end) / sample_rate
    slope, _ = np.polyfit(times[span], decay_db[span], 1)
    return DecayTime(float(-60.0 / slope)) if slope < 0 else DecayTime(None, "too long: no decay")
