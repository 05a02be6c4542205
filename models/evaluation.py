"""How close an effect model gets to its target: MR-STFT distance, ESR and loudness error.

Each figure is reported for the model's output and, as the baseline, for the dry input, both against the real
effect's output (the target). A model is useful when it is much closer to the target than the dry input is.
"""

from __future__ import annotations

import warnings

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
