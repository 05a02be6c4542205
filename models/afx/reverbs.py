"""The reverb tasks, with full tails: a plate (Debian's Dragonfly Plate Reverb, hosted headless through
:mod:`models.plugin_effect`) and a spring approximation in numpy.

The spring is an approximation, not a physical model: a cascade of 60 first-order all-passes (the dispersion that
makes a spring's "chirp"), a 3-tap feedback comb at 37, 41 and 53 ms for the recirculation along the springs, a
4.5 kHz low-pass, mixed 0.4 wet with the dry. ``decay_s`` sets the comb gains for that T60.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

from models.afx.dsp import allpass_cascade, feedback_comb
from models.errors import ReaTimbreError

DRAGONFLY_PLATE = Path("/usr/lib/lxvst/DragonflyPlateReverb-vst.so")
PLATE_DECAY_RANGE_S = (0.1, 10.0)  # the plug-in's Decay parameter, 0..1 over this range


def plate_available() -> bool:
    return DRAGONFLY_PLATE.is_file()


def plate(x: np.ndarray, sample_rate: int, decay_s: float) -> np.ndarray:
    """Dragonfly Plate (its default "Algorithm", dry 0.8, wet 0.2 from the plug-in's defaults; wet raised to 0.5)
    with ``decay_s`` of decay; the left output of the mono input, same length as ``x``."""
    from models.plugin_effect import render_effect

    if not plate_available():
        raise ReaTimbreError(f"the plate task needs Debian's dragonfly-reverb-vst ({DRAGONFLY_PLATE} is missing)")
    low, high = PLATE_DECAY_RANGE_S
    parameters = {"Dry Level": 0.8, "Wet Level": 0.5, "Decay": (decay_s - low) / (high - low)}
    return render_effect(DRAGONFLY_PLATE, x.astype(np.float32), sample_rate, parameters)[0].astype(np.float64)


def spring(x: np.ndarray, sample_rate: int, decay_s: float = 2.0) -> np.ndarray:
    """The spring approximation described in the module docstring."""
    dispersed = allpass_cascade(x, 60, 0.6)
    wet = np.zeros_like(x)
    for delay_ms in (37.0, 41.0, 53.0):
        delay = int(round(delay_ms / 1000 * sample_rate))
        gain = 10 ** (-3 * delay_ms / 1000 / decay_s)  # -60 dB after decay_s
        wet += feedback_comb(dispersed, delay, gain) / 3
    wet = signal.sosfilt(signal.butter(2, 4500.0, fs=sample_rate, output="sos"), wet)
    return 0.6 * x + 0.4 * wet
