"""The modulation tasks (thesis Table 6.3): chorus, flanger, phaser, tremolo, vibrato, auto-wah and ring
modulator, each also followed by overdrive (SoX's, :func:`models.afx.dsp.sox_overdrive`).

Numpy implementations with fixed settings (phase zero at the first sample). The thesis modelled guitar pedals;
these are stand-ins of the same kinds of effect.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from models.afx.dsp import delayed, lfo

MODULATED_BLOCK_SAMPLES = 32  # the phaser's and the wah's filters are recomputed every this many samples


def chorus(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Two voices delayed 15 +- 5 ms and 25 +- 7 ms by 0.8 and 1.1 Hz sines, each at 0.5 beside the dry."""
    n = len(x)
    ms = sample_rate / 1000
    voice1 = delayed(x, ms * (15 + 5 * lfo(n, sample_rate, 0.8)))
    voice2 = delayed(x, ms * (25 + 7 * lfo(n, sample_rate, 1.1, np.pi / 2)))
    return (x + 0.5 * voice1 + 0.5 * voice2) / 2


def flanger(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """The dry plus itself delayed 0.5 to 4.5 ms by a 0.5 Hz sine (a feed-forward flanger), halved."""
    ms = sample_rate / 1000
    return 0.5 * (x + delayed(x, ms * (2.5 + 2.0 * lfo(len(x), sample_rate, 0.5))))


def phaser(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Four first-order all-passes whose break frequency sweeps 200 Hz - 2 kHz (log) at 0.5 Hz, updated every
    32 samples, summed 1:1 with the dry (notches where the stages turn the phase by 180 degrees)."""
    sweep = lfo(len(x), sample_rate, 0.5)
    out = x.copy()
    states = np.zeros((4, 1))
    for start in range(0, len(x), MODULATED_BLOCK_SAMPLES):
        stop = min(start + MODULATED_BLOCK_SAMPLES, len(x))
        break_hz = 200.0 * 10 ** ((sweep[start] + 1) / 2)
        t = np.tan(np.pi * break_hz / sample_rate)
        c = (t - 1) / (t + 1)
        block = out[start:stop]
        for stage in range(4):
            block, states[stage] = signal.lfilter([c, 1.0], [1.0, c], block, zi=states[stage])
        out[start:stop] = block
    return 0.5 * (x + out)


def tremolo(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """5 Hz sine amplitude modulation, depth 0.8."""
    return x * (1 - 0.4 * (1 + lfo(len(x), sample_rate, 5.0)))


def vibrato(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Pitch modulation only: the signal delayed 3 +- 2 ms by a 5 Hz sine (no dry)."""
    return delayed(x, sample_rate / 1000 * (3 + 2 * lfo(len(x), sample_rate, 5.0)))


def autowah(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """An envelope-following wah: a band-pass (Q 3) whose centre moves from 300 Hz to 3 kHz with the signal's
    envelope (10 ms attack, 100 ms release follower), mixed 0.8 wet with the dry."""
    rectified = np.abs(x)
    attack = np.exp(-1 / (0.010 * sample_rate))
    release = np.exp(-1 / (0.100 * sample_rate))
    smooth = signal.lfilter([1 - release], [1, -release], rectified)
    fast = signal.lfilter([1 - attack], [1, -attack], rectified)
    envelope = np.maximum(smooth, fast)
    level = np.clip(envelope / 0.3, 0, 1)
    out = np.zeros_like(x)
    state = np.zeros(2)
    for start in range(0, len(x), MODULATED_BLOCK_SAMPLES):
        stop = min(start + MODULATED_BLOCK_SAMPLES, len(x))
        centre = 300.0 * 10 ** (level[start] * np.log10(3000 / 300))
        w0 = 2 * np.pi * centre / sample_rate
        alpha = np.sin(w0) / (2 * 3.0)
        b = np.array([alpha, 0.0, -alpha]) / (1 + alpha)
        a = np.array([1.0, -2 * np.cos(w0) / (1 + alpha), (1 - alpha) / (1 + alpha)])
        out[start:stop], state = signal.lfilter(b, a, x[start:stop], zi=state)
    return 0.2 * x + 0.8 * 3.0 * out


def ring_modulator(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Multiplication by a 220 Hz sine."""
    return x * lfo(len(x), sample_rate, 220.0)


MODULATION = {
    "chorus": (chorus, "two-voice chorus, 15/25 ms delays swept by 0.8/1.1 Hz"),
    "flanger": (flanger, "feed-forward flanger, 0.5-4.5 ms swept at 0.5 Hz"),
    "phaser": (phaser, "4-stage all-pass phaser, 200 Hz - 2 kHz swept at 0.5 Hz"),
    "tremolo": (tremolo, "5 Hz sine tremolo, depth 0.8"),
    "vibrato": (vibrato, "5 Hz vibrato, 3 +- 2 ms delay, no dry"),
    "autowah": (autowah, "envelope-following band-pass wah 300 Hz - 3 kHz, Q 3"),
    "ringmod": (ring_modulator, "ring modulator, 220 Hz sine carrier"),
}
"""Name -> (process, description) of each modulation effect."""
