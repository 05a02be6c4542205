"""A Leslie rotating speaker, in numpy: a crossover, then a horn and a woofer rotor, each an amplitude modulation
and a Doppler shift (a delay that follows the rotor's distance to the listener), then summed.

An honest, simplified model (after Smith, Serafin, Abel and Berners' "Doppler simulation and the Leslie", DAFx
2002): the 800 Hz crossover is a pair of 2nd-order Butterworth filters; the horn (radius 15 cm) turns at 0.8 Hz
(slow, "chorale") or 6.7 Hz (fast, "tremolo"), the woofer's rotating baffle (radius 10 cm) at 0.7 or 5.7 Hz, with
amplitude depth 0.5 (horn) and 0.2 (woofer, its bass spreads more evenly); the Doppler delay is the rotor's
distance to a listener at 1 m over the speed of sound. No cabinet resonances, no room, no acceleration between
speeds: ``speed`` between 0 (slow) and 1 (fast) turns the rotors at rates in between.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from models.afx.dsp import delayed

SPEED_OF_SOUND_M_S = 343.0
LISTENER_M = 1.0
CROSSOVER_HZ = 800.0


def rotor(x: np.ndarray, sample_rate: int, rate_hz: float, radius_m: float, depth: float) -> np.ndarray:
    """One rotor: amplitude ``1 - depth * (1 - cos) / 2`` (loudest facing the listener) and the Doppler delay."""
    angle = 2 * np.pi * rate_hz * np.arange(len(x)) / sample_rate
    facing = np.cos(angle)  # 1 when the rotor's mouth points at the listener
    distance = np.sqrt(LISTENER_M**2 + radius_m**2 - 2 * LISTENER_M * radius_m * facing)
    delay = (distance - (LISTENER_M - radius_m)) / SPEED_OF_SOUND_M_S * sample_rate
    return (1 - depth * (1 - facing) / 2) * delayed(x, delay)


def rates_hz(speed: float) -> tuple[float, float]:
    """Horn and woofer rotation rates for ``speed`` 0 (slow) to 1 (fast)."""
    return 0.8 + speed * (6.7 - 0.8), 0.7 + speed * (5.7 - 0.7)


def horn(x: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    high = signal.sosfilt(signal.butter(2, CROSSOVER_HZ, "highpass", fs=sample_rate, output="sos"), x)
    return rotor(high, sample_rate, rates_hz(speed)[0], 0.15, 0.5)


def woofer(x: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    low = signal.sosfilt(signal.butter(2, CROSSOVER_HZ, "lowpass", fs=sample_rate, output="sos"), x)
    return rotor(low, sample_rate, rates_hz(speed)[1], 0.10, 0.2)


def leslie(x: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """Horn plus woofer."""
    return horn(x, sample_rate, speed) + woofer(x, sample_rate, speed)


def rotor_clocks(speed: float | None = None) -> list[dict[str, float | int | str]]:
    """The horn's and the woofer's rotation clocks, as :class:`models.pedals.lfo_tcn.LFOTCN` reads them: rate from
    the ``speed`` knob (control 0) over :func:`rates_hz`'s range, or fixed at ``speed``; phase 0 (facing the
    listener) at a render's first sample, as :func:`rotor` starts. A network told these phases still learns the
    crossover, the modulation depths and the Doppler delays from the pairs."""
    slow, fast = rates_hz(0.0), rates_hz(1.0)
    if speed is not None:
        slow = fast = rates_hz(speed)
    return [
        {"rate_index": 0, "rate_min_hz": low, "rate_max_hz": high, "rate_scale": "linear", "start_phase": 0.0}
        for low, high in zip(slow, fast, strict=True)
    ]
