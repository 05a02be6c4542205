"""Any audio as a coach target: one note-length clip at the coach's rate.

The coach compares 1.01 s clips (:data:`~models.synth.features.CLIP_SAMPLES` at 44.1 kHz). A target file may
have any rate, channel count and length: it is resampled (soxr, high quality) to 44.1 kHz, mixed to stereo
(mono is duplicated; more channels are averaged into both), cut from ``start_seconds`` and zero-padded when
shorter than a clip. Levels are kept as they are (SerumRNN's features are not normalised either).
"""

from __future__ import annotations

import numpy as np

from models.errors import ReaTimbreError
from models.synth.features import CLIP_SAMPLES, SAMPLE_RATE_HZ

SILENCE_PEAK = 1e-4  # about -80 dBFS: below this a target has nothing to match


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """(channels, frames) or (frames,) → (2, frames) float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise ReaTimbreError(f"target audio must be (channels, frames), got shape {audio.shape}")
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    if audio.shape[0] == 2:
        return audio
    return np.repeat(audio.mean(axis=0, keepdims=True), 2, axis=0)


def target_clip(audio: np.ndarray, sample_rate_hz: int, start_seconds: float = 0.0) -> np.ndarray:
    """The (2, CLIP_SAMPLES) clip of ``audio`` starting at ``start_seconds``, at 44.1 kHz."""
    import soxr

    if sample_rate_hz <= 0:
        raise ReaTimbreError(f"target sample rate must be positive, got {sample_rate_hz}")
    if not np.isfinite(start_seconds) or start_seconds < 0:
        raise ReaTimbreError(f"--start must be 0 or more seconds, got {start_seconds}")
    stereo = to_stereo(audio)
    if not np.isfinite(stereo).all():
        raise ReaTimbreError("target audio holds NaN or infinite samples")
    duration_seconds = stereo.shape[1] / sample_rate_hz
    if start_seconds >= duration_seconds:
        raise ReaTimbreError(f"--start {start_seconds:g} s is past the end of the target ({duration_seconds:.3f} s)")
    first = int(round(start_seconds * sample_rate_hz))
    needed = int(np.ceil(CLIP_SAMPLES * sample_rate_hz / SAMPLE_RATE_HZ)) + 64
    piece = stereo[:, first : first + needed]
    if sample_rate_hz != SAMPLE_RATE_HZ:
        piece = soxr.resample(piece.T, sample_rate_hz, SAMPLE_RATE_HZ, quality="HQ").T
    clip = np.zeros((2, CLIP_SAMPLES), dtype=np.float32)
    n = min(CLIP_SAMPLES, piece.shape[1])
    clip[:, :n] = piece[:, :n]
    if np.abs(clip).max() < SILENCE_PEAK:
        raise ReaTimbreError(f"the target is silent from {start_seconds:g} s on; pick the note with --start")
    return clip
