"""Small real DSP effects to train the architectures on (stand-ins for the thesis's gear, for quick runs and tests).

Each task processes a mono signal at any sample rate, from silence, deterministically:

- ``lowpass``: a 2nd-order Butterworth low-pass at 1 kHz (a linear EQ task, as in Table 4.2).
- ``overdrive``: 12 dB of gain into ``tanh``, then a one-pole low-pass at 4 kHz (nonlinear with short memory).
- ``tremolo``: 5 Hz sinusoidal amplitude modulation, depth 0.8, phase zero at the first sample (time-varying).
- ``reverb``: convolution with 0.3 s of exponentially decaying Gaussian noise (T60 0.3 s, fixed seed), mixed
  1:1 with the dry signal: an approximation of a small plate, with its full tail kept within the signal's length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal

from models.material import GENERATORS, make_program
from models.rates import SAMPLE_RATE_HZ
from models.resample import resample

MATERIAL_RATE = SAMPLE_RATE_HZ  # the generators' drums filter up to 8 kHz


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    process: Callable[[np.ndarray, int], np.ndarray]


def _lowpass(x: np.ndarray, sample_rate: int) -> np.ndarray:
    b, a = signal.butter(2, 1000.0, fs=sample_rate)
    return signal.lfilter(b, a, x)


def _overdrive(x: np.ndarray, sample_rate: int) -> np.ndarray:
    driven = np.tanh(10 ** (12 / 20) * x)
    pole = np.exp(-2 * np.pi * 4000.0 / sample_rate)
    return signal.lfilter([1 - pole], [1, -pole], driven)


def _tremolo(x: np.ndarray, sample_rate: int) -> np.ndarray:
    t = np.arange(len(x)) / sample_rate
    return x * (1 - 0.8 * 0.5 * (1 + np.sin(2 * np.pi * 5.0 * t)))


def _reverb(x: np.ndarray, sample_rate: int) -> np.ndarray:
    n = int(0.3 * sample_rate)
    decay = np.exp(-6.91 * np.arange(n) / n)  # -60 dB at 0.3 s
    response = np.random.default_rng(1234).standard_normal(n) * decay
    response *= 0.5 / np.sqrt(np.sum(response**2))
    return 0.5 * x + signal.fftconvolve(x, response)[: len(x)]


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("lowpass", "2nd-order Butterworth low-pass at 1 kHz", _lowpass),
        Task("overdrive", "tanh with 12 dB drive, then a one-pole low-pass at 4 kHz", _overdrive),
        Task("tremolo", "5 Hz sine tremolo, depth 0.8", _tremolo),
        Task(
            "reverb", "0.3 s exponentially decaying noise response, 1:1 with the dry signal (plate stand-in)", _reverb
        ),
    )
}


def task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[name]


def material(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """Generated dry material (notes, chords, plucks, drums, noise bursts, vowels; no synth plug-in needed), made
    at 44.1 kHz (the generators' drums filter up to 8 kHz) and resampled to ``sample_rate``."""
    kinds = [k for k in GENERATORS if k != "vital_note"]
    made = make_program(seconds, MATERIAL_RATE, np.random.default_rng(seed), kinds)
    return resample(made, MATERIAL_RATE, sample_rate)


def pair(task_name: str, seconds: float, sample_rate: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dry material and the task's output for it, both float32 (samples,)."""
    dry = material(seconds, sample_rate, seed)
    return dry, task(task_name).process(dry.astype(np.float64), sample_rate).astype(np.float32)
