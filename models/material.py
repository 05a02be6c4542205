"""Varied dry material made from scratch, for training and testing effect models.

Nothing is downloaded: notes, chords, plucks, drums, noise bursts, speech-like vowels and Vital synth notes are
synthesised here and laid out as a "program" with pauses and a wide spread of levels, so compressors see signal
above and below threshold and reverbs get room to ring out. :data:`TEST_SIGNALS` adds the McCool paper's test
signals (sine, square and sawtooth tones and exponential chirps, at the program's spread of levels); a program
uses them when its ``kinds`` name them (the default programs do not, so existing training material is unchanged).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal

from models.rates import SAMPLE_RATE_HZ
from models.resample import resample

Generator = Callable[[np.random.Generator, int], np.ndarray]


def _envelope(
    n: int, sample_rate: int, attack_s: float, decay_s: float, sustain: float, release_s: float
) -> np.ndarray:
    """ADSR envelope of ``n`` samples (release fills the end)."""
    a = max(1, int(attack_s * sample_rate))
    d = max(1, int(decay_s * sample_rate))
    r = max(1, int(release_s * sample_rate))
    s = max(0, n - a - d - r)
    env = np.concatenate(
        [np.linspace(0, 1, a), np.linspace(1, sustain, d), np.full(s, sustain), np.linspace(sustain, 0, r)]
    )
    return env[:n] if len(env) >= n else np.pad(env, (0, n - len(env)))


def _midi_hz(note: float | np.integer) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def _harmonic_tone(rng: np.random.Generator, sample_rate: int, f0: float, seconds: float) -> np.ndarray:
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    rolloff = rng.uniform(0.8, 2.0)
    odd_only = rng.random() < 0.3
    vibrato = 1 + rng.uniform(0, 0.006) * np.sin(2 * np.pi * rng.uniform(4, 6.5) * t)
    phase = 2 * np.pi * f0 * np.cumsum(vibrato) / sample_rate
    tone = np.zeros(n)
    for h in range(1, 40):
        if h * f0 > sample_rate / 2.2 or (odd_only and h % 2 == 0):
            continue
        tone += np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h**rolloff
    env = _envelope(
        n, sample_rate, rng.uniform(0.003, 0.15), rng.uniform(0.05, 0.4), rng.uniform(0.2, 0.9), rng.uniform(0.05, 0.5)
    )
    return tone * env


def note(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A sustained harmonic note with vibrato and an ADSR envelope."""
    return _harmonic_tone(rng, sample_rate, _midi_hz(rng.integers(36, 84)), rng.uniform(0.2, 1.5))


def chord(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Three or four notes of a major, minor or seventh chord."""
    root = rng.integers(40, 70)
    shape = [[0, 4, 7], [0, 3, 7], [0, 4, 7, 10], [0, 3, 7, 10], [0, 5, 7]][rng.integers(5)]
    seconds = rng.uniform(0.5, 2.0)
    mix = np.zeros(int(seconds * sample_rate))
    for i in shape:
        mix += _harmonic_tone(rng, sample_rate, _midi_hz(root + i), seconds)
    return mix / len(shape) ** 0.5


def pluck(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A Karplus-Strong plucked string."""
    period = max(2, int(sample_rate / _midi_hz(rng.integers(40, 88))))
    n = int(rng.uniform(0.3, 1.5) * sample_rate)
    burst = np.zeros(n)
    burst[:period] = rng.uniform(-1, 1, period)
    loss = rng.uniform(0.990, 0.999)
    denominator = np.zeros(period + 2)
    denominator[0] = 1.0
    denominator[period] = denominator[period + 1] = -0.5 * loss
    return signal.lfilter([1.0], denominator, burst)


def drum(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A kick, snare or hi-hat hit."""
    kind = rng.integers(3)
    n = int((0.5 if kind == 0 else 0.25 if kind == 1 else 0.1) * sample_rate)
    t = np.arange(n) / sample_rate
    if kind == 0:
        f = 45 + 110 * np.exp(-t * rng.uniform(20, 40))
        return np.sin(2 * np.pi * np.cumsum(f) / sample_rate) * np.exp(-t * rng.uniform(6, 12))
    noise = rng.standard_normal(n)
    if kind == 1:
        body = np.sin(2 * np.pi * rng.uniform(160, 240) * t) * np.exp(-t * 30)
        snap = signal.sosfilt(signal.butter(2, [1000, 8000], "bandpass", fs=sample_rate, output="sos"), noise)
        return (0.6 * body + snap) * np.exp(-t * rng.uniform(15, 30))
    hat = signal.sosfilt(signal.butter(4, 7000, "highpass", fs=sample_rate, output="sos"), noise)
    return hat * np.exp(-t * rng.uniform(40, 90))


def noise_burst(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Band-limited noise with a swelling or decaying envelope."""
    n = int(rng.uniform(0.05, 0.8) * sample_rate)
    low = rng.uniform(50, 2000)
    high = min(low * rng.uniform(2, 20), sample_rate / 2.2)
    sos = signal.butter(2, [low, high], "bandpass", fs=sample_rate, output="sos")
    shape = np.linspace(0, 1, n) ** rng.uniform(0.3, 3)
    return signal.sosfilt(sos, rng.standard_normal(n)) * (shape if rng.random() < 0.5 else shape[::-1])


_VOWELS_HZ = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]])


def speech_like(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Syllables: a glottal pulse train with drifting pitch through moving vowel formants."""
    syllables = rng.integers(2, 7)
    syllable_s = rng.uniform(0.12, 0.3)
    n = int(syllables * syllable_s * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(90, 240) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = np.cumsum(f0) / sample_rate
    pulses = np.diff(np.floor(phase), prepend=0.0) + 0.02 * rng.standard_normal(n)
    out = np.zeros(n)
    hop = int(syllable_s * sample_rate)
    for i in range(syllables):
        seg = slice(i * hop, min(n, (i + 1) * hop))
        vowel = _VOWELS_HZ[rng.integers(len(_VOWELS_HZ))]
        voiced = np.zeros(seg.stop - seg.start)
        for formant, gain in zip(vowel, (1.0, 0.5, 0.25), strict=True):
            b, a = signal.iirpeak(formant, 8, fs=sample_rate)
            voiced += gain * signal.lfilter(b, a, pulses[seg])
        out[seg] = voiced * np.hanning(len(voiced)) ** 0.5
    return out


def vital_note(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A note from the Vital synth (via ``vita``) with a randomised oscillator and filter, the same for the same
    ``rng`` state: Vital's own random oscillator phases (its RNG has no seed) are turned off."""
    import vita

    from models.synth.vital import RANDOM_PHASE_CONTROLS

    synth = vita.Synth()
    controls = synth.get_controls()
    for name in RANDOM_PHASE_CONTROLS:
        controls[name].set(0.0)
    controls["osc_1_wave_frame"].set(float(rng.uniform(0, 256)))
    controls["osc_1_unison_voices"].set(float(rng.integers(1, 6)))
    controls["filter_1_on"].set(float(rng.random() < 0.6))
    controls["filter_1_cutoff"].set(float(rng.uniform(50, 130)))  # semitones
    seconds = float(rng.uniform(0.3, 1.2))
    audio = synth.render(int(rng.integers(36, 84)), float(rng.uniform(0.5, 1.0)), seconds, seconds + 0.3)
    return resample(np.asarray(audio, dtype=np.float32).mean(axis=0), SAMPLE_RATE_HZ, sample_rate)


def _test_tone(rng: np.random.Generator, sample_rate: int, shape: str) -> np.ndarray:
    """A steady ``shape`` tone (sine, square or band-limited sawtooth) of 0.3..1.5 s, 5 ms fades."""
    n = int(rng.uniform(0.3, 1.5) * sample_rate)
    f0 = _midi_hz(rng.integers(28, 96))
    phase = 2 * np.pi * f0 * np.arange(n) / sample_rate + rng.uniform(0, 2 * np.pi)
    harmonics = [h for h in range(1, 200) if h * f0 < sample_rate / 2.2]
    tone = np.zeros(n)
    if shape == "sine":
        tone = np.sin(phase)
    elif shape == "square":  # band-limited: odd harmonics at 1/h
        for h in harmonics[::2]:
            tone += np.sin(h * phase) * (4 / np.pi / h)
    else:  # sawtooth: every harmonic at 1/h
        for h in harmonics:
            tone += np.sin(h * phase) * (2 / np.pi / h)
    return tone * _envelope(n, sample_rate, 0.005, 0.001, 1.0, 0.005)


def sine(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A steady sine tone (one of the McCool paper's test signals)."""
    return _test_tone(rng, sample_rate, "sine")


def square(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A steady band-limited square wave."""
    return _test_tone(rng, sample_rate, "square")


def sawtooth(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A steady band-limited sawtooth wave."""
    return _test_tone(rng, sample_rate, "sawtooth")


def chirp(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """An exponential sine sweep, up or down, between 30 Hz and 16 kHz, 0.5..3 s."""
    n = int(rng.uniform(0.5, 3.0) * sample_rate)
    t = np.arange(n) / sample_rate
    low, high = 30.0 * 2 ** rng.uniform(0, 3), 16_000.0 / 2 ** rng.uniform(0, 3)
    sweep = signal.chirp(t, low, t[-1], high, method="logarithmic", phi=-90)
    sweep = sweep[::-1] if rng.random() < 0.5 else sweep
    return sweep * _envelope(n, sample_rate, 0.01, 0.001, 1.0, 0.01)


TEST_SIGNALS: dict[str, Generator] = {"sine": sine, "square": square, "sawtooth": sawtooth, "chirp": chirp}

GENERATORS: dict[str, Generator] = {
    "note": note,
    "chord": chord,
    "pluck": pluck,
    "drum": drum,
    "noise_burst": noise_burst,
    "speech_like": speech_like,
    "vital_note": vital_note,
}


def make_program(
    seconds: float, sample_rate: int, rng: np.random.Generator, kinds: list[str] | None = None
) -> np.ndarray:
    """A mono program of ``seconds``: random events at levels from -40 to -1 dBFS peak, with pauses.

    Events overlap sometimes (chords over drums) and are separated by gaps of up to 0.6 s.
    """
    kinds = kinds or list(GENERATORS)
    generators = {**GENERATORS, **TEST_SIGNALS}
    unknown = sorted(set(kinds) - set(generators))
    if unknown:
        raise ValueError(f"no material generator {unknown[0]!r} (known: {', '.join(generators)})")
    n = int(seconds * sample_rate)
    out = np.zeros(n)
    position = 0
    while position < n:
        event = generators[kinds[rng.integers(len(kinds))]](rng, sample_rate)
        peak = np.max(np.abs(event))
        if peak > 0:
            event = event / peak * 10 ** (rng.uniform(-40, -1) / 20)
        end = min(n, position + len(event))
        out[position:end] += event[: end - position]
        step = len(event) * rng.uniform(0.3, 1.0) if rng.random() < 0.3 else len(event)
        position += int(step + rng.uniform(0.0, 0.6) * sample_rate * (rng.random() < 0.6))
    peak = np.max(np.abs(out))
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)
