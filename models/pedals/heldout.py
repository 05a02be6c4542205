"""Held-out material for the pedal models, of another origin than the training programs (``models.material``).

The training programs are Karplus-Strong plucks, harmonic notes with ADSR envelopes, formant-filter syllables,
drums, noise and Vital notes. The held-out clips are made differently: guitar-like strums from a modal string model
(inharmonic partials with their own decays, a pick-position comb and a guitar-body resonance), a bass line from a
subtractive synth (a sawtooth through a swept resonant low-pass), and speech from ``espeak-ng`` when it is installed
(Debian's formant speech synthesiser). Every clip is mono, peak-normalised to -6 dBFS, the same on every run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy import signal

from models.audio_io import read_audio
from models.resample import resample

PEAK_DBFS = -6.0
SPEECH_TEXT = "Seven silver spoons fell on the kitchen floor, and nobody said a word about it."
_STRUM_CHORDS = ([40, 47, 52, 56, 59, 64], [45, 52, 57, 61, 64], [43, 47, 50, 55, 59, 67], [38, 45, 50, 54, 57])


def _hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def modal_string(f0: float, seconds: float, sample_rate: int, pick: float, velocity: float) -> np.ndarray:
    """One plucked string: partials at ``h f0 sqrt(1 + B h^2)`` (stiff string), amplitudes from the pick position,
    each decaying faster the higher it is."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    inharmonicity = 1.2e-4
    for h in range(1, 40):
        f = h * f0 * np.sqrt(1 + inharmonicity * h * h)
        if f > sample_rate / 2.5:
            break
        amplitude = abs(np.sin(np.pi * h * pick)) / h * velocity
        out += amplitude * np.sin(2 * np.pi * f * t) * np.exp(-t * (0.8 + 0.35 * h**1.3))
    return out


def guitar_strums(seconds: float, sample_rate: int) -> np.ndarray:
    """Strummed chords (strings 12 ms apart, down and up strokes, loud and soft) through a body resonance."""
    n = int(seconds * sample_rate)
    out = np.zeros(n)
    beat = int(0.5 * sample_rate)
    for k, start in enumerate(range(0, n, beat)):
        chord = _STRUM_CHORDS[(k // 4) % len(_STRUM_CHORDS)]
        strings = chord if k % 2 == 0 else chord[::-1]
        velocity = (1.0, 0.25, 0.6, 0.12)[k % 4]
        for i, note in enumerate(strings):
            onset = start + int(0.012 * i * sample_rate)
            tone = modal_string(_hz(note), 1.2, sample_rate, pick=0.13 + 0.02 * i, velocity=velocity)
            end = min(n, onset + len(tone))
            if onset < n:
                out[onset:end] += tone[: end - onset]
    body = np.concatenate(
        [signal.iirpeak(100, 3, fs=sample_rate), signal.iirpeak(220, 4, fs=sample_rate)], axis=0
    ).reshape(2, 2, 3)
    shaped = out.copy()
    for b, a in body:
        shaped += 0.5 * signal.lfilter(b, a, out)
    return shaped


def synth_bass(seconds: float, sample_rate: int) -> np.ndarray:
    """An eighth-note bass line: a sawtooth through a resonant low-pass whose cutoff falls after each note on."""
    n = int(seconds * sample_rate)
    step = int(0.25 * sample_rate)
    line = [33, 33, 45, 33, 36, 38, 31, 43]
    out = np.zeros(n)
    for k, start in enumerate(range(0, n, step)):
        length = min(step, n - start)
        t = np.arange(length) / sample_rate
        phase = (_hz(line[k % len(line)]) * t) % 1.0
        saw = 2 * phase - 1
        cutoff = 200 + 1800 * np.exp(-t * 12)
        b, a = signal.butter(2, float(np.mean(cutoff[: length // 4])), fs=sample_rate)
        note = signal.lfilter(b, a, saw) * np.minimum(1.0, t / 0.004) * np.exp(-t * 3)
        out[start : start + length] = note * (1.0 if k % 2 == 0 else 0.4)
    return out


def espeak_speech(seconds: float, sample_rate: int) -> np.ndarray | None:
    """``SPEECH_TEXT`` spoken by espeak-ng, fitted to ``seconds`` (None when espeak-ng is not installed)."""
    if shutil.which("espeak-ng") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(path), SPEECH_TEXT], check=True, capture_output=True, timeout=60)
        audio, rate = read_audio(path)
    mono = resample(np.asarray(audio, np.float32).mean(axis=0), rate, sample_rate)
    n = int(seconds * sample_rate)
    return np.pad(mono, (0, max(0, n - len(mono))))[:n]


def heldout_clips(seconds: float, sample_rate: int) -> dict[str, np.ndarray]:
    """The held-out clips by name (speech only when espeak-ng is installed), each peak-normalised."""
    clips: dict[str, np.ndarray | None] = {
        "guitar": guitar_strums(seconds, sample_rate),
        "bass": synth_bass(seconds, sample_rate),
        "speech": espeak_speech(seconds, sample_rate),
    }
    peak = 10 ** (PEAK_DBFS / 20)
    return {
        name: (clip / np.max(np.abs(clip)) * peak).astype(np.float32)
        for name, clip in clips.items()
        if clip is not None and np.max(np.abs(clip)) > 0
    }
