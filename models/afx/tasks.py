"""The afx tasks: real DSP effects to train and compare the architectures on (stand-ins for the thesis's gear,
named in each model's sidecar), with training material from :mod:`models.material` and held-out material of
another origin (:mod:`models.afx.heldout`).

Families (``Task.family``):

- ``eq`` (Table 4.2, on any material): ``eq-shelf`` (2nd-order low shelf +10 dB at 500 Hz, Q 0.707), ``eq-peak``
  (peaking +10 dB at 500 Hz, Q 0.707), ``eq-lowpass`` and ``eq-highpass`` (order-50 FIRs at 500 Hz).
- ``nonlinear`` (Table 5.3, SoX-like): ``sox-bass`` (+10 dB low shelf at 100 Hz), ``sox-treble`` (+10 dB high
  shelf at 3 kHz), ``sox-overdrive`` (SoX's algorithm, gain 20 dB, colour 20), ``tube`` (Debian's ZamTube
  plug-in, a triode preamp model with a tone stack, :mod:`models.afx.tube`).
- ``modulation`` (Table 6.3): :data:`models.afx.modulation.MODULATION`, each also as ``NAME+od`` (followed by
  ``sox-overdrive``).
- ``leslie``: :mod:`models.afx.leslie`, ``leslie`` with a ``speed`` knob (0 slow, 1 fast; trained on both), and
  ``leslie-slow``, ``leslie-fast``, ``leslie-horn-slow|fast``, ``leslie-woofer-slow|fast``.
- ``reverb`` (full tails: the material has gaps of silence and ends with the tail): ``plate`` (Dragonfly Plate,
  ``decay`` knob 0.5-3 s, trained at 0.5, 1.5 and 3 s), ``plate-1s``, ``spring`` (an approximation, said so).
- quick tasks for tests: ``lowpass`` (Butterworth 1 kHz), ``overdrive`` (tanh, 12 dB, 4 kHz one-pole), ``tremolo``
  (5 Hz, depth 0.8), ``reverb`` (0.3 s noise response 1:1 with dry).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from models.afx import leslie as leslie_model
from models.afx.dsp import biquad, fir, sox_overdrive
from models.afx.heldout import heldout_material
from models.afx.modulation import MODULATION
from models.afx.reverbs import plate, spring
from models.afx.segment import Segment
from models.afx.tube import TUBE_DRIVE, tube
from models.knobs import Knob
from models.material import GENERATORS, make_program
from models.rates import SAMPLE_RATE_HZ
from models.resample import resample

MATERIAL_RATE = SAMPLE_RATE_HZ  # the generators' drums filter up to 8 kHz

Process = Callable[[np.ndarray, int, float], np.ndarray]


@dataclass(frozen=True)
class Task:
    """One effect: ``process(x, sample_rate, knob_value)`` on float64 mono, same length, from silence."""

    name: str
    description: str
    family: str
    process: Process
    knob: Knob | None = None
    training_values: tuple[float, ...] = ()  # knob values the training material is made at
    tail_seconds: float = 0.0  # silence after the material, for the effect's tail
    # the effect's LFO clocks (rate over the knob, phase at the first sample), for a network told their phases
    clocks: Callable[[], list[dict[str, Any]]] | None = None

    def values(self) -> tuple[float | None, ...]:
        return self.training_values if self.knob is not None else (None,)


def _fixed(function: Callable[[np.ndarray, int], np.ndarray]) -> Process:
    return lambda x, rate, _value: function(x, rate)


def _then_overdrive(function: Callable[[np.ndarray, int], np.ndarray]) -> Process:
    return lambda x, rate, _value: sox_overdrive(function(x, rate))


def _quick_reverb(x: np.ndarray, sample_rate: int) -> np.ndarray:
    n = int(0.3 * sample_rate)
    decay = np.exp(-6.91 * np.arange(n) / n)  # -60 dB at 0.3 s
    response = np.random.default_rng(1234).standard_normal(n) * decay
    response *= 0.5 / np.sqrt(np.sum(response**2))
    return 0.5 * x + signal.fftconvolve(x, response)[: len(x)]


def _quick_overdrive(x: np.ndarray, sample_rate: int) -> np.ndarray:
    pole = np.exp(-2 * np.pi * 4000.0 / sample_rate)
    return signal.lfilter([1 - pole], [1, -pole], np.tanh(10 ** (12 / 20) * x))


SPEED = Knob("speed", "", 0.0, 1.0, 0.0, description="rotor speed: 0 slow (chorale), 1 fast (tremolo)")
DECAY = Knob("decay", "s", 0.5, 3.0, 1.5, description="plate decay time")


def _tasks() -> list[Task]:
    tasks = [
        Task("eq-shelf", "low shelf +10 dB at 500 Hz, Q 0.707 (Table 4.2)", "eq",
             _fixed(lambda x, r: biquad("lowshelf", x, r, 500.0, 0.707, 10.0))),
        Task("eq-peak", "peaking +10 dB at 500 Hz, Q 0.707 (Table 4.2)", "eq",
             _fixed(lambda x, r: biquad("peak", x, r, 500.0, 0.707, 10.0))),
        Task("eq-lowpass", "order-50 FIR low-pass at 500 Hz (Table 4.2)", "eq",
             _fixed(lambda x, r: fir(x, r, 50, 500.0, highpass=False))),
        Task("eq-highpass", "order-50 FIR high-pass at 500 Hz (Table 4.2)", "eq",
             _fixed(lambda x, r: fir(x, r, 50, 500.0, highpass=True))),
        Task("sox-bass", "SoX-like bass +10 dB (low shelf at 100 Hz)", "nonlinear",
             _fixed(lambda x, r: biquad("lowshelf", x, r, 100.0, 0.707, 10.0))),
        Task("sox-treble", "SoX-like treble +10 dB (high shelf at 3 kHz)", "nonlinear",
             _fixed(lambda x, r: biquad("highshelf", x, r, 3000.0, 0.707, 10.0))),
        Task("sox-overdrive", "SoX overdrive algorithm, gain 20 dB, colour 20", "nonlinear",
             _fixed(lambda x, r: sox_overdrive(x))),
        Task("tube", f"ZamTube tube distortion plug-in (Debian zam-plugins), drive {TUBE_DRIVE}", "nonlinear",
             _fixed(tube)),
        Task("leslie", "Leslie horn + woofer (numpy AM + Doppler), speed knob", "leslie",
             lambda x, r, v: leslie_model.leslie(x, r, 0.0 if v is None else v), SPEED, (0.0, 1.0),
             clocks=leslie_model.rotor_clocks),
        Task("plate", "Dragonfly Plate Reverb (Debian), decay knob, full tails", "reverb",
             lambda x, r, v: plate(x, r, 1.5 if v is None else v), DECAY, (0.5, 1.5, 3.0), 3.5),
        Task("plate-1s", "Dragonfly Plate Reverb (Debian), 1 s decay, full tails", "reverb",
             _fixed(lambda x, r: plate(x, r, 1.0)), tail_seconds=1.5),
        Task("spring", "spring reverb APPROXIMATION (all-pass dispersion + combs), 2 s, full tails", "reverb",
             _fixed(lambda x, r: spring(x, r, 2.0)), tail_seconds=2.5),
        Task("lowpass", "2nd-order Butterworth low-pass at 1 kHz (quick test task)", "eq",
             _fixed(lambda x, r: signal.lfilter(*signal.butter(2, 1000.0, fs=r), x))),
        Task("overdrive", "tanh with 12 dB drive, then a one-pole low-pass at 4 kHz (quick test task)", "nonlinear",
             _fixed(_quick_overdrive)),
        Task("tremolo", "5 Hz sine tremolo, depth 0.8 (quick test task)", "modulation",
             _fixed(MODULATION["tremolo"][0])),
        Task("reverb", "0.3 s decaying noise response 1:1 with dry (quick test task)", "reverb",
             _fixed(_quick_reverb), tail_seconds=0.4),
    ]  # fmt: skip
    for name, (function, description) in MODULATION.items():
        if name != "tremolo":
            tasks.append(Task(name, description, "modulation", _fixed(function)))
        tasks.append(Task(f"{name}+od", f"{description}, then SoX overdrive", "modulation", _then_overdrive(function)))
    for speed_name, speed in (("slow", 0.0), ("fast", 1.0)):
        for part, rotor in (
            ("", leslie_model.leslie),
            ("horn-", leslie_model.horn),
            ("woofer-", leslie_model.woofer),
        ):
            tasks.append(
                Task(f"leslie-{part}{speed_name}", f"Leslie {part or 'horn + woofer '}{speed_name} (numpy model)",
                     "leslie", _speed(rotor, speed), clocks=functools.partial(leslie_model.rotor_clocks, speed))
            )  # fmt: skip
    return tasks


def _speed(function: Callable[[np.ndarray, int, float], np.ndarray], speed: float) -> Process:
    return lambda x, rate, _value: function(x, rate, speed)


TASKS: dict[str, Task] = {t.name: t for t in _tasks()}


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


def dry_material(the_task: Task, seconds: float, sample_rate: int, seed: int, heldout: bool) -> np.ndarray:
    """Training (``models.material``) or held-out (another origin) material, followed by the task's tail."""
    dry = heldout_material(seconds, sample_rate, seed) if heldout else material(seconds, sample_rate, seed)
    return np.pad(dry.astype(np.float32), (0, int(the_task.tail_seconds * sample_rate)))


def pair(
    task_name: str, seconds: float, sample_rate: int, seed: int, value: float | None = None, heldout: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Dry material and the task's output for it (knob at ``value``, default its default), float32 (samples,)."""
    the_task = task(task_name)
    if value is None and the_task.knob is not None:
        value = the_task.knob.default
    dry = dry_material(the_task, seconds, sample_rate, seed, heldout)
    return dry, the_task.process(dry.astype(np.float64), sample_rate, value).astype(np.float32)  # type: ignore[arg-type]


def segments(task_name: str, seconds: float, sample_rate: int, seed: int, heldout: bool = False) -> list[Segment]:
    """The task's material at each of its training knob values (``seconds`` each), with the knob's control."""
    the_task = task(task_name)
    made = []
    for index, value in enumerate(the_task.values()):
        dry, wet = pair(task_name, seconds, sample_rate, seed + 7919 * index, value, heldout)
        control = [] if the_task.knob is None or value is None else [the_task.knob.control(value)]
        made.append(Segment(dry, wet, np.asarray(control, np.float32)))
    return made
