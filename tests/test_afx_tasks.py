"""The afx tasks on hand-made cases: EQ gains, the Leslie's Doppler and tremolo, reverb tails, held-out material."""

import numpy as np
import pytest
from scipy import signal

from models.afx import leslie
from models.afx.dsp import biquad, delayed, fir, sox_overdrive
from models.afx.heldout import heldout_material
from models.afx.metrics import t60_seconds
from models.afx.reverbs import plate, plate_available, spring
from models.afx.tasks import TASKS, pair, segments, task
from models.afx.tube import tube, tube_available

RATE = 16_000


def test_table_4_2_filters() -> None:
    shelf = dict(freq_hz=500.0, q=0.707, gain_db=10.0)
    t = np.arange(RATE) / RATE

    def gain(kind: str, f: float) -> float:
        tone = np.sin(2 * np.pi * f * t)
        out = biquad(kind, tone, RATE, **shelf)
        return 20 * np.log10(np.std(out[RATE // 2 :]) / np.std(tone[RATE // 2 :]))

    assert gain("lowshelf", 40.0) == pytest.approx(10.0, abs=0.3) and abs(gain("lowshelf", 6000.0)) < 0.3
    assert gain("peak", 500.0) == pytest.approx(10.0, abs=0.1) and abs(gain("peak", 7000.0)) < 0.5
    low = fir(np.sin(2 * np.pi * 3000 * t), RATE, 50, 500.0, highpass=False)
    high = fir(np.sin(2 * np.pi * 100 * t), RATE, 50, 500.0, highpass=True)
    assert np.std(low[RATE // 2 :]) < 0.02 and np.std(high[RATE // 2 :]) < 0.2


def test_sox_overdrive_is_bounded_and_blocks_dc() -> None:
    x = np.full(RATE, 0.5)
    y = sox_overdrive(x)
    assert np.max(np.abs(y)) <= 1 / 3 + 1e-9 and abs(y[-1]) < 1e-3  # 0.5 * 2/3 at most; DC decays away


def test_fractional_delay() -> None:
    x = np.sin(2 * np.pi * 50 * np.arange(1000) / RATE)
    np.testing.assert_allclose(delayed(x, np.full(1000, 3.0))[3:], x[:-3], atol=1e-12)
    half = delayed(x, np.full(1000, 2.5))
    np.testing.assert_allclose(half[3:], 0.5 * (x[:-3] + x[1:-2]), atol=1e-12)


def test_leslie_horn_doppler_and_amplitude_modulation() -> None:
    """A 1.5 kHz tone through the fast horn: its frequency swings by about the horn mouth's speed over c (2 pi r f / c,
    r 15 cm at 6.7 Hz: 1.8 %; the listener at 1 m sees a little less of it), its level by the horn's depth 0.5."""
    t = np.arange(2 * RATE) / RATE
    tone = np.sin(2 * np.pi * 1500 * t)
    out = leslie.horn(tone, RATE, 1.0)[RATE // 4 :]
    analytic = signal.hilbert(out)
    frequency = np.diff(np.unwrap(np.angle(analytic))) * RATE / (2 * np.pi)
    frequency = signal.medfilt(frequency, 51)[100:-100]
    speed_ratio = 2 * np.pi * 0.15 * 6.7 / 343.0  # the horn mouth's speed over c
    swing = (frequency.max() - frequency.min()) / 2 / 1500
    assert swing == pytest.approx(speed_ratio * 1.0 / (1 + 0.15), rel=0.25)
    envelope = np.abs(analytic)[100:-100]
    # the linear-interpolation delay's own ripple (cos(pi f / fs) at half-sample delays) is a few % at 1.5 kHz
    assert envelope.min() / envelope.max() == pytest.approx(0.5, abs=0.06)
    assert leslie.rates_hz(0.0) == (0.8, 0.7) and leslie.rates_hz(1.0) == pytest.approx((6.7, 5.7))


def test_spring_is_an_approximation_with_its_decay() -> None:
    impulse = np.zeros(4 * RATE)
    impulse[0] = 1.0
    tail = spring(impulse, RATE, 2.0) - 0.6 * impulse
    assert t60_seconds(tail, RATE) == pytest.approx(2.0, rel=0.2)


@pytest.mark.skipif(not plate_available(), reason="Debian's dragonfly-reverb-vst is not installed")
def test_plate_decay_knob_sets_the_tail() -> None:
    impulse = np.zeros(5 * RATE)
    impulse[0] = 1.0
    short, long = (t60_seconds(plate(impulse, RATE, d) - 0.8 * impulse, RATE) for d in (0.5, 3.0))
    assert 0.2 < short < 1.0 and long > 2 * short


@pytest.mark.skipif(not tube_available(), reason="Debian's zam-plugins is not installed")
def test_tube_distorts_more_when_louder() -> None:
    t = np.arange(RATE) / RATE

    def second_harmonic_db(level: float) -> float:
        spectrum = np.abs(np.fft.rfft(tube(level * np.sin(2 * np.pi * 200 * t), RATE)[RATE // 2 :]))
        return 20 * np.log10(spectrum[200] / spectrum[100])  # 400 Hz over 200 Hz (bins of 2 Hz)

    assert second_harmonic_db(0.3) > second_harmonic_db(0.05) + 15


def test_heldout_material_is_deterministic_and_has_gaps() -> None:
    a, b = heldout_material(10.0, RATE, 3), heldout_material(10.0, RATE, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, heldout_material(10.0, RATE, 4))
    silent = np.convolve(np.abs(a) < 1e-6, np.ones(RATE // 5), "valid") == RATE // 5
    assert silent.any() and 0.01 < np.sqrt(np.mean(a**2)) < 0.5


def test_knob_tasks_make_one_segment_per_training_value() -> None:
    made = segments("leslie", 2.0, RATE, 0)
    assert [s.control.tolist() for s in made] == [[0.0], [1.0]]
    assert not np.allclose(made[0].wet, leslie.leslie(made[0].dry.astype(np.float64), RATE, 1.0))
    assert [s.control.tolist() for s in segments("eq-peak", 1.0, RATE, 0)] == [[]]
    dry, wet = pair("reverb", 1.0, RATE, 0)
    assert len(dry) == RATE + int(task("reverb").tail_seconds * RATE) and not dry[RATE:].any() and wet[RATE:].any()


@pytest.mark.parametrize("name", [n for n in TASKS if TASKS[n].family != "reverb" or n in ("spring", "reverb")])
def test_every_task_changes_the_sound_and_keeps_its_length(name: str) -> None:
    dry, wet = pair(name, 1.5, RATE, seed=3, heldout=True)
    assert dry.shape == wet.shape and wet.dtype == np.float32 and np.isfinite(wet).all()
    assert np.sqrt(np.mean((wet - dry) ** 2)) > 0.05 * np.sqrt(np.mean(dry**2))
