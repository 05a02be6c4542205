"""DSP stages of the pedal-board reference effects that pedalboard has no plugin for.

Each stage is a callable ``stage(audio, sample_rate) -> audio`` on one channel shaped (1, samples), float32, and
starts from a silent state on every call (as ``ReferenceEffect.process`` resets pedalboard's plugins). They sit in
a reference effect's chain beside pedalboard plugins (see ``models.effects``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

OCTAVE_DETECT_LOWPASS_HZ = 400.0  # the divider listens to the input through this one-pole low-pass
OCTAVE_HYSTERESIS = 10 ** (-50 / 20)  # the divider toggles only on crossings between -50 dBFS and +50 dBFS
CABINET_IR_SECONDS = 0.02


@dataclass(frozen=True)
class AsymmetricClipper:
    """A fuzz's transistor stage: ``tanh(x + bias) - tanh(bias)``, harder on one half-wave than the other
    (0 in, 0 out; even harmonics; a DC shift on loud input that the chain's DC blocker removes)."""

    bias: float

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return (np.tanh(audio + self.bias) - math.tanh(self.bias)).astype(np.float32)


@dataclass(frozen=True)
class FlipFlopOctave:
    """An analog octave-down pedal (a flip-flop divider, as in the Boss OC-2): a square wave that flips on each
    rising crossing of the low-passed input, multiplied by the low-passed input, so it sounds one octave down and
    follows the input's envelope; a one-pole low-pass at ``sub_lowpass_hz`` then sets the sub's tone. The output
    is ``dry * (1 - mix) + sub * mix``, with the dry path delayed by :meth:`latency_for` samples so that it lines
    up with the sub, which the detection low-pass delays: the effect's latency.
    """

    mix: float
    sub_lowpass_hz: float
    detect_lowpass_hz: float = OCTAVE_DETECT_LOWPASS_HZ
    hysteresis: float = OCTAVE_HYSTERESIS

    @staticmethod
    def latency_for(sample_rate: int, detect_lowpass_hz: float = OCTAVE_DETECT_LOWPASS_HZ) -> int:
        """The low-pass's group delay at low frequencies, 1 / (2 pi fc) seconds, in whole samples."""
        return round(sample_rate / (2 * math.pi * detect_lowpass_hz))

    def lowpassed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The one-pole low-pass the divider listens to (unit gain at DC)."""
        return _one_pole_lowpass(audio, self.detect_lowpass_hz, sample_rate)

    def square(self, detected: np.ndarray) -> np.ndarray:
        """+-1, flipping on each rising crossing of ``detected`` (1-D) through the hysteresis band: a crossing is
        the first sample above ``+hysteresis`` after one below ``-hysteresis``. Two input periods make one of
        the square's: an octave down."""
        below = np.flatnonzero(detected < -self.hysteresis)
        above = np.flatnonzero(detected > self.hysteresis)
        rising = np.zeros(len(detected), np.int64)
        position = 0
        while True:
            i = int(np.searchsorted(below, position))
            if i >= len(below):
                break
            j = int(np.searchsorted(above, below[i]))
            if j >= len(above):
                break
            rising[above[j]] = 1
            position = int(above[j])
        return np.where(np.cumsum(rising) % 2 == 0, 1.0, -1.0)

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        out = np.empty_like(audio, dtype=np.float32)
        delay = self.latency_for(sample_rate, self.detect_lowpass_hz)
        for c, channel in enumerate(np.asarray(audio, np.float64)):
            detected = self.lowpassed(channel, sample_rate)
            sub = _one_pole_lowpass(self.square(detected) * detected, self.sub_lowpass_hz, sample_rate)
            dry = np.concatenate([np.zeros(delay), channel[: len(channel) - delay]]) if delay else channel
            out[c] = (1 - self.mix) * dry + self.mix * sub
        return out


def _one_pole_lowpass(audio: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """A one-pole low-pass with unit gain at DC."""
    from scipy import signal  # imported where used: 1.4 s to import, and `reatimbre --help` imports this module

    pole = math.exp(-2 * math.pi * cutoff_hz / sample_rate)
    return signal.lfilter([1 - pole], [1, -pole], audio, axis=-1)


@lru_cache(maxsize=4)
def cabinet_ir(sample_rate: int) -> np.ndarray:
    """A 4x12 guitar cabinet's impulse response, generated (no file, no randomness): an impulse through the
    speaker's band (2nd-order high-pass at 90 Hz, 4th-order low-pass at 4.5 kHz), its low resonance (+6 dB at
    110 Hz), a presence peak (+5 dB at 2.4 kHz), a cone break-up notch (-8 dB at 1.1 kHz) and two short cabinet
    reflections (0.6 ms and 1.4 ms); 20 ms long, faded out, peak gain 0 dB."""
    from scipy import signal

    n = int(CABINET_IR_SECONDS * sample_rate)
    impulse = np.zeros(n)
    impulse[0] = 1.0
    impulse[int(0.0006 * sample_rate)] += 0.35
    impulse[int(0.0014 * sample_rate)] -= 0.2
    sos = np.concatenate(
        [
            signal.butter(2, 90, "highpass", fs=sample_rate, output="sos"),
            signal.butter(4, 4500, "lowpass", fs=sample_rate, output="sos"),
            _peak_sos(110, 6.0, 1.2, sample_rate),
            _peak_sos(2400, 5.0, 1.5, sample_rate),
            _peak_sos(1100, -8.0, 2.0, sample_rate),
        ]
    )
    ir = signal.sosfilt(sos, impulse)
    fade = int(0.005 * sample_rate)
    ir[-fade:] *= np.linspace(1.0, 0.0, fade)
    peak_gain = np.max(np.abs(np.fft.rfft(ir, 8 * n)))
    return (ir / peak_gain).astype(np.float32)


def _peak_sos(centre_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """A peaking EQ biquad (RBJ cookbook) as one second-order section."""
    a = 10 ** (gain_db / 40)
    w = 2 * math.pi * centre_hz / sample_rate
    alpha = math.sin(w) / (2 * q)
    b = [1 + alpha * a, -2 * math.cos(w), 1 - alpha * a]
    den = [1 + alpha / a, -2 * math.cos(w), 1 - alpha / a]
    return np.array([[*(v / den[0] for v in b), *(v / den[0] for v in den)]])


@dataclass(frozen=True)
class Cabinet:
    """Convolution with :func:`cabinet_ir` (output as long as the input)."""

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        from scipy import signal

        ir = cabinet_ir(sample_rate)
        return signal.oaconvolve(audio, ir[None, :], axes=-1)[:, : audio.shape[-1]].astype(np.float32)
