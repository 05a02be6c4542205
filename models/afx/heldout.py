"""Held-out material of another origin than the training programs (:mod:`models.material`), for the afx tasks.

The training programs are additive harmonic notes and chords, Karplus-Strong plucks, drums, noise bursts and
formant vowels. The held-out material is synthesised in other ways: a subtractive bass line (decimated sawtooth
through a resonant low-pass), FM electric-piano chords (two-operator frequency modulation), a drawbar organ
(additive sines with a 6 Hz vibrato and a key click), and a breakbeat (pitch-swept sine kicks, a noise snare through
a resonator, hi-hats from a square-wave cluster), in phrases with gaps of silence so reverbs ring out fully.
Deterministic for a seed; made at the sample rate asked for.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

PHRASE_SECONDS = (1.5, 3.5)
GAP_SECONDS = (0.3, 1.2)


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def synth_bass(rng: np.random.Generator, sample_rate: int, seconds: float) -> np.ndarray:
    """A subtractive bass line: sawtooth notes (made at 4x the rate and decimated) through a resonant low-pass
    whose cutoff is set per note, with a fast attack and a decaying envelope."""
    out = np.zeros(int(seconds * sample_rate))
    position = 0
    while position < len(out):
        length = int(rng.uniform(0.15, 0.5) * sample_rate)
        t = np.arange(4 * length) / (4 * sample_rate)
        saw = signal.sawtooth(2 * np.pi * _midi_hz(float(rng.integers(28, 52))) * t)
        saw = signal.decimate(saw, 4, ftype="fir")[:length]
        cutoff = rng.uniform(300, 1500)
        b, a = signal.butter(2, cutoff, fs=sample_rate)
        resonant = signal.lfilter(b, a, saw) + 0.5 * signal.lfilter(*signal.iirpeak(cutoff, 4.0, fs=sample_rate), saw)
        tn = np.arange(length) / sample_rate
        note = resonant * np.minimum(1.0, tn / 0.005) * np.exp(-tn * rng.uniform(2, 8))
        stop = min(len(out), position + length)
        out[position:stop] += 0.5 * note[: stop - position]
        position += length
    return out


def fm_piano(rng: np.random.Generator, sample_rate: int, seconds: float) -> np.ndarray:
    """FM electric-piano chords: carrier:modulator 1:14 ratio tine plus 1:1 body, index decaying."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    root = float(rng.integers(48, 64))
    for interval in (0, 4, 7, 11)[: int(rng.integers(2, 5))]:
        f = _midi_hz(root + interval)
        index = 2.5 * np.exp(-t * 3.0)
        body = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * t))
        tine = 0.2 * np.sin(2 * np.pi * f * t + 1.5 * np.exp(-t * 20) * np.sin(2 * np.pi * 14 * f * t))
        out += (body + tine) * np.exp(-t * rng.uniform(0.8, 2.0))
    return 0.25 * out


def organ(rng: np.random.Generator, sample_rate: int, seconds: float) -> np.ndarray:
    """A drawbar organ note: sines at 0.5, 1, 2, 3, 4 and 8 times f0, 6 Hz vibrato, a key click, a short release."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = _midi_hz(float(rng.integers(45, 72)))
    phase = 2 * np.pi * f0 * (t + 0.003 * np.sin(2 * np.pi * 6.0 * t) / (2 * np.pi * 6.0) * 2 * np.pi)
    drawbars = rng.uniform(0.2, 1.0, 6)
    tone = sum(d * np.sin(h * phase) for d, h in zip(drawbars, (0.5, 1, 2, 3, 4, 8), strict=True))
    click = np.zeros(n)
    click[: int(0.004 * sample_rate)] = rng.uniform(-0.3, 0.3, int(0.004 * sample_rate))
    envelope = np.minimum(1.0, np.minimum(t / 0.01, (seconds - t) / 0.05))
    return 0.15 * (tone + click) * np.clip(envelope, 0, 1)


def breakbeat(rng: np.random.Generator, sample_rate: int, seconds: float) -> np.ndarray:
    """Kicks, snares and hats on a 16-step grid at 90-130 BPM."""
    n = int(seconds * sample_rate)
    out = np.zeros(n)
    step = int(60 / rng.uniform(90, 130) / 4 * sample_rate)
    hit = int(0.25 * sample_rate)
    t = np.arange(hit) / sample_rate
    kick = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 12)
    snare_noise = rng.standard_normal(hit) * np.exp(-t * 25)
    snare = signal.lfilter(*signal.iirpeak(1800.0, 2.0, fs=sample_rate), snare_noise) + 0.5 * np.sin(
        2 * np.pi * 190 * t
    ) * np.exp(-t * 30)
    square = sum(np.sign(np.sin(2 * np.pi * f * t)) for f in (2960.0, 3980.0, 5120.0))
    hat = signal.lfilter(*signal.butter(2, 0.4, "highpass"), square) * np.exp(-t * 60) / 3
    pattern = {0: kick, 4: snare, 8: kick, 10: kick, 12: snare}
    for index in range(n // step):
        sounds = [pattern[index % 16]] if index % 16 in pattern else []
        if index % 2 == 0:
            sounds.append(hat)
        for sound in sounds:
            stop = min(n, index * step + hit)
            out[index * step : stop] += rng.uniform(0.5, 1.0) * 0.5 * sound[: stop - index * step]
    return out


SOURCES = (synth_bass, fm_piano, organ, breakbeat)


def heldout_material(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """``seconds`` of phrases from :data:`SOURCES` in turn, with gaps of silence between them (float32)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sample_rate))
    position, index = 0, int(rng.integers(len(SOURCES)))
    while position < len(out):
        phrase = SOURCES[index % len(SOURCES)](rng, sample_rate, rng.uniform(*PHRASE_SECONDS))
        phrase *= 10 ** (rng.uniform(-12, 0) / 20) * 0.7 / max(1e-9, np.max(np.abs(phrase)))
        stop = min(len(out), position + len(phrase))
        out[position:stop] = phrase[: stop - position]
        position = stop + int(rng.uniform(*GAP_SECONDS) * sample_rate)
        index += 1
    return out.astype(np.float32)
