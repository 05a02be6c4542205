"""A dry/wet pair for steering: loaded, resampled, aligned, checked, and classified by the effect's memory.

Real pairs are messy: the wet take went through hardware or a plug-in with latency, was exported at another rate or
in stereo, or runs on past the dry one with a reverb tail. :func:`prepare_pair` turns any such pair into two aligned
float32 arrays at the model rate and says, line by line, what it did. A pair that is silent, too short, or not the
same recording (no correlation at any lag within a second) is refused with one clear line. How far back the
effect looks (its memory class) is decided in :mod:`models.steer_memory`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from models.audio_io import read_audio
from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.resample import resample

MAX_LATENCY_SECONDS = 1.0  # the largest constant offset between dry and wet that is searched for
MIN_PAIR_SECONDS = 3.0  # enough for training, validation and held-out parts
MAX_TAIL_PAD_SECONDS = 10.0  # wet running on past the dry (a reverb tail) is kept up to this long
SILENCE_DBFS = -60.0  # a recording whose RMS level is below this is treated as silent
MIN_CORRELATION = 0.12  # peak normalised cross-correlation below this: not the same recording
LATENCY_PEAK_SHARE = 0.5  # the latency is the earliest impulse-response peak at least this share of the largest

AudioSource = str | os.PathLike | np.ndarray


@dataclass
class Pair:
    """An aligned pair at :data:`SAMPLE_RATE_HZ`: ``dry`` and ``wet`` are (channels, samples) float32."""

    dry: np.ndarray
    wet: np.ndarray
    sample_rate: int
    latency_samples: int  # at the model rate; positive: the wet came late and was moved earlier
    correlation: float  # peak normalised cross-correlation of the two recordings
    notes: list[str] = field(default_factory=list)  # one line per thing done to the pair

    @property
    def seconds(self) -> float:
        return self.dry.shape[1] / self.sample_rate


def _as_channels(audio: np.ndarray, label: str) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[1] == 0 or audio.shape[0] == 0:
        raise ReaTimbreError(f"{label}: expected audio shaped (channels, samples), got {tuple(audio.shape)}")
    if audio.shape[0] > 64:
        raise ReaTimbreError(f"{label}: {audio.shape[0]} channels is not an audio recording")
    if not np.isfinite(audio).all():
        raise ReaTimbreError(f"{label}: contains NaN or infinite samples")
    return np.ascontiguousarray(audio)


def load_source(source: AudioSource, sample_rate: int | None, label: str) -> tuple[np.ndarray, int, str]:
    """(channels, samples) float32, its rate, and a name for messages, from a file path or an array."""
    if isinstance(source, np.ndarray):
        if sample_rate is None or sample_rate <= 0:
            raise ReaTimbreError(f"{label}: an array needs its sample rate")
        return _as_channels(source, label), int(sample_rate), label

    audio, rate = read_audio(source)
    return _as_channels(audio, str(source)), rate, str(source)


def _level_dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else -np.inf


def _spectra(dry: np.ndarray, wet: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    size = 1 << int(dry.size + wet.size - 1).bit_length()
    return np.fft.rfft(dry, size), np.fft.rfft(wet, size), size


def _lag_window(values: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Lags -max_lag..max_lag (ascending) and the matching entries of a circular correlation."""
    lags = np.arange(-max_lag, max_lag + 1)
    return lags, values[lags % values.size]


def find_latency(dry: np.ndarray, wet: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The wet's constant delay behind the dry in samples (negative: ahead) and the pair's peak correlation.

    The correlation is the largest normalised cross-correlation within ``max_lag``: about 0.5 or more for a
    recording and its processed version, a few hundredths for unrelated recordings. The delay is the earliest strong
    peak of the regularised (whitened) impulse-response estimate, so a reverb's later reflections are not taken for
    latency; a fully wet effect's pre-delay is indistinguishable from latency and is treated as such.
    """
    dry64, wet64 = dry.astype(np.float64), wet.astype(np.float64)
    dry_spec, wet_spec, size = _spectra(dry64, wet64)
    cross = wet_spec * np.conj(dry_spec)
    norm = np.linalg.norm(dry64) * np.linalg.norm(wet64)
    _, correlation = _lag_window(np.fft.irfft(cross, size), max_lag)
    peak_correlation = float(np.max(np.abs(correlation)) / norm) if norm > 0 else 0.0
    power = np.abs(dry_spec) ** 2
    response = np.fft.irfft(cross / (power + 1e-2 * np.mean(power) + 1e-20), size)
    lags, response = _lag_window(response, max_lag)
    strength = np.abs(response)
    earliest = int(np.argmax(strength >= LATENCY_PEAK_SHARE * strength.max()))
    return int(lags[earliest]), peak_correlation


def _shift(dry: np.ndarray, wet: np.ndarray, latency: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove a delay of the wet behind the dry (negative: the wet is ahead)."""
    if latency > 0:
        return dry, wet[:, latency:]
    if latency < 0:
        return dry[:, -latency:], wet
    return dry, wet


def _match_channels(dry: np.ndarray, wet: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if dry.shape[0] == wet.shape[0]:
        if dry.shape[0] > 1:
            notes.append(f"{dry.shape[0]} channel pairs: each one is a training example (the model is mono)")
        return dry, wet
    notes.append(f"dry has {dry.shape[0]} channel(s), wet {wet.shape[0]}: both mixed to mono")
    return dry.mean(axis=0, keepdims=True), wet.mean(axis=0, keepdims=True)


def _match_lengths(dry: np.ndarray, wet: np.ndarray, rate: int, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    extra = wet.shape[1] - dry.shape[1]
    if extra > 0:
        keep = min(extra, int(MAX_TAIL_PAD_SECONDS * rate))
        notes.append(f"wet runs {extra / rate:.2f} s past the dry: kept {keep / rate:.2f} s of it as tail")
        dry = np.pad(dry, ((0, 0), (0, keep)))
        wet = wet[:, : dry.shape[1]]
    elif extra < 0:
        notes.append(f"dry runs {-extra / rate:.2f} s past the wet: cut to the wet's length")
        dry = dry[:, : wet.shape[1]]
    return dry, wet


def prepare_pair(
    dry: AudioSource,
    wet: AudioSource,
    sample_rate: int | None = None,
    keep_latency: bool = False,
) -> Pair:
    """Load, resample, align and check a dry/wet pair (``sample_rate`` is needed for arrays only)."""
    dry_audio, dry_rate, dry_name = load_source(dry, sample_rate, "dry")
    wet_audio, wet_rate, wet_name = load_source(wet, sample_rate, "wet")
    notes: list[str] = []
    for name, audio, rate in ((dry_name, dry_audio, dry_rate), (wet_name, wet_audio, wet_rate)):
        if _level_dbfs(audio) < SILENCE_DBFS:
            raise ReaTimbreError(f"{name}: is silent (RMS below {SILENCE_DBFS:g} dBFS); steering needs sound")
        if rate != SAMPLE_RATE_HZ:
            notes.append(f"{name}: resampled {rate} Hz -> {SAMPLE_RATE_HZ} Hz")
    rate = SAMPLE_RATE_HZ
    dry_audio = resample(dry_audio, dry_rate, rate)
    wet_audio = resample(wet_audio, wet_rate, rate)
    dry_audio, wet_audio = _match_channels(dry_audio, wet_audio, notes)

    latency, correlation = find_latency(dry_audio.mean(axis=0), wet_audio.mean(axis=0), int(MAX_LATENCY_SECONDS * rate))
    if correlation < MIN_CORRELATION:
        raise ReaTimbreError(
            f"{wet_name} does not match {dry_name} (peak correlation {correlation:.2f} within "
            f"{MAX_LATENCY_SECONDS:g} s, need {MIN_CORRELATION:g}): the wet must be the same recording as the dry, "
            "processed"
        )
    if keep_latency:
        notes.append(f"offset of {latency / rate * 1000:.1f} ms found but kept as asked (part of the effect)")
        latency = 0
    elif latency:
        side = "behind" if latency > 0 else "ahead of"
        notes.append(
            f"wet is {abs(latency) / rate * 1000:.1f} ms ({abs(latency)} samples) {side} the dry: offset removed"
        )
    else:
        notes.append("no offset between dry and wet")
    dry_audio, wet_audio = _shift(dry_audio, wet_audio, latency)
    dry_audio, wet_audio = _match_lengths(dry_audio, wet_audio, rate, notes)
    if dry_audio.shape[1] < MIN_PAIR_SECONDS * rate:
        raise ReaTimbreError(
            f"the aligned pair is {dry_audio.shape[1] / rate:.2f} s long; "
            f"steering needs at least {MIN_PAIR_SECONDS:g} s"
        )
    return Pair(np.ascontiguousarray(dry_audio), np.ascontiguousarray(wet_audio), rate, latency, correlation, notes)
