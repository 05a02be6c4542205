"""The pedal board's reference effects (issue 29): every knob mapping against the real chain built by hand, what
each knob does to the sound, the octave's measured latency, and the paper's test signals in the material."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
from scipy.signal import hilbert

from models.effects import PEDALS, REFERENCE_EFFECTS, emulated_effect
from models.material import TEST_SIGNALS, make_program
from models.pedals.dsp import AsymmetricClipper, Cabinet, FlipFlopOctave, cabinet_ir

SR = 44_100
RNG = np.random.default_rng(29)
NOISE = (RNG.standard_normal((1, SR // 2)) * 0.2).astype(np.float32)


def _tone(hz: float, seconds: float = 0.5, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)).astype(np.float32)[None, :]


def _by_hand(name: str, p: dict[str, float]) -> list:
    """Each pedal's chain written out from its parameters, independently of models.effects."""
    if name == "fuzz":
        return [
            pedalboard.HighpassFilter(p["input_highpass_hz"]),
            pedalboard.Gain(p["gain_db"]),
            AsymmetricClipper(p["clip_bias"]),
            pedalboard.HighpassFilter(p["dc_block_hz"]),
            pedalboard.LowpassFilter(p["tone_lowpass_hz"]),
            pedalboard.Gain(p["output_gain_db"]),
        ]
    if name == "amp":
        return [
            pedalboard.HighpassFilter(p["input_highpass_hz"]),
            pedalboard.Distortion(p["drive_db"]),
            pedalboard.HighShelfFilter(p["presence_hz"], p["presence_gain_db"]),
            pedalboard.PeakFilter(p["mid_hz"], p["mid_gain_db"]),
            Cabinet(),
            pedalboard.Gain(p["output_gain_db"]),
        ]
    if name == "octave":
        return [FlipFlopOctave(p["mix"], p["sub_lowpass_hz"])]
    if name == "chorus":
        return [pedalboard.Chorus(p["rate_hz"], p["depth"], p["centre_delay_ms"], p["feedback"], p["mix"])]
    if name == "delay":
        return [pedalboard.Delay(p["delay_seconds"], p["feedback"], p["mix"])]
    return [pedalboard.LadderFilter(pedalboard.LadderFilter.Mode.LPF24, p["cutoff_hz"], p["resonance"], p["drive"])]


def _run_by_hand(stages: list, audio: np.ndarray) -> np.ndarray:
    for stage in stages:
        audio = stage(audio, SR, reset=True) if isinstance(stage, pedalboard.Plugin) else stage(audio, SR)
    return audio


@pytest.mark.parametrize("name", PEDALS)
def test_every_knob_mapping_drives_the_real_chain(name: str) -> None:
    effect = REFERENCE_EFFECTS[name]
    assert 2 <= len(effect.knobs) <= 3
    for position in (0.0, 0.3, 1.0):
        for moved in effect.knobs:  # each knob swept alone, the others at their defaults
            knobs = {k.name: k.default for k in effect.knobs} | {moved.name: moved.value_at(position)}
            parameters = effect.parameters(knobs)
            expected = _run_by_hand(_by_hand(name, parameters), NOISE)
            np.testing.assert_allclose(effect.process(NOISE, SR, knobs), expected, atol=1e-6)
            # the sidecar's record builds the same effect (formulas, chain, latency, LFO)
            record = {"knobs": [k.to_dict() for k in effect.knobs], "emulates": effect.describe(knobs)}
            rebuilt = emulated_effect(name, record)
            np.testing.assert_array_equal(rebuilt.process(NOISE, SR, knobs), effect.process(NOISE, SR, knobs))
            assert rebuilt.latency_samples == effect.latency_samples and rebuilt.lfo == effect.lfo


def _centroid_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio[0]))
    return float(np.sum(np.fft.rfftfreq(audio.shape[1], 1 / SR) * spectrum) / np.sum(spectrum))


def _harmonic_share(audio: np.ndarray, hz: float) -> float:
    """Share of the spectrum's power away from the fundamental ``hz`` (distortion products)."""
    spectrum = np.abs(np.fft.rfft(audio[0] * np.hanning(audio.shape[1]))) ** 2
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / SR)
    near = np.abs(freqs - hz) < 20
    return float(spectrum[~near].sum() / spectrum.sum())


def test_fuzz_gain_distorts_asymmetrically_and_tone_brightens() -> None:
    fuzz = REFERENCE_EFFECTS["fuzz"]
    tone = _tone(220.0)
    soft, hard = (fuzz.process(tone, SR, {"gain": g, "tone": 1.0}) for g in (10.0, 46.0))
    assert _harmonic_share(hard, 220.0) > 2 * _harmonic_share(soft, 220.0)
    medium = fuzz.process(tone, SR, {"gain": 20.0, "tone": 1.0})
    spectrum = np.abs(np.fft.rfft(medium[0, SR // 10 :] * np.hanning(medium.shape[1] - SR // 10)))
    freqs = np.fft.rfftfreq(medium.shape[1] - SR // 10, 1 / SR)
    second = spectrum[np.abs(freqs - 440) < 5].max() / spectrum[np.abs(freqs - 220) < 5].max()
    assert second > 0.05  # asymmetric clipping: even harmonics (a symmetric clipper gives almost none)
    dark, bright = (fuzz.process(tone, SR, {"gain": 30.0, "tone": t}) for t in (0.0, 1.0))
    assert _centroid_hz(bright) > 1.4 * _centroid_hz(dark)


def test_amp_gain_drives_and_tone_sets_presence_through_the_cabinet() -> None:
    amp = REFERENCE_EFFECTS["amp"]
    tone = _tone(330.0)
    clean, driven = (amp.process(tone, SR, {"gain": g, "tone": 0.5}) for g in (0.0, 40.0))
    assert _harmonic_share(driven, 330.0) > 3 * _harmonic_share(clean, 330.0)
    dark, bright = (amp.process(NOISE, SR, {"gain": 20.0, "tone": t}) for t in (0.0, 1.0))
    assert _centroid_hz(bright) > 1.3 * _centroid_hz(dark)
    ir = cabinet_ir(SR)
    response = np.abs(np.fft.rfft(ir, 8192))
    freqs = np.fft.rfftfreq(8192, 1 / SR)
    assert len(ir) == int(0.02 * SR) and np.isclose(response.max(), 1.0, atol=0.01)
    assert response[np.argmin(np.abs(freqs - 10_000))] < 0.05 < response[np.argmin(np.abs(freqs - 2400))]
    np.testing.assert_array_equal(cabinet_ir(SR), ir)  # the same every time: nothing random, nothing downloaded


def test_octave_mix_adds_the_octave_below_and_tone_darkens_it() -> None:
    octave = REFERENCE_EFFECTS["octave"]
    tone = _tone(220.0, seconds=1.0)
    for mix in (0.0, 0.5, 1.0):
        out = octave.process(tone, SR, {"mix": mix, "tone": 0.5})
        spectrum = np.abs(np.fft.rfft(out[0, SR // 4 :]))
        freqs = np.fft.rfftfreq(out.shape[1] - SR // 4, 1 / SR)
        sub = spectrum[np.abs(freqs - 110) < 3].max() / spectrum[np.abs(freqs - 220) < 3].max()
        assert (sub > 0.3) if mix == 1.0 else (sub > 0.1) if mix == 0.5 else (sub < 1e-3)
    dark, bright = (octave.process(NOISE, SR, {"mix": 1.0, "tone": t}) for t in (0.0, 1.0))
    assert _centroid_hz(bright) > 1.5 * _centroid_hz(dark)


def test_octave_latency_is_measured_and_declared() -> None:
    """The divider hears the input through a low-pass, so its sub lags; the dry path is delayed to match. The lag
    measured from the real chain (dry path of an impulse, sub of a low tone) is the latency the effect declares."""
    octave = REFERENCE_EFFECTS["octave"]
    impulse = np.zeros((1, 2048), np.float32)
    impulse[0, 100] = 0.5
    dry_lag = int(np.argmax(np.abs(octave.process(impulse, SR, {"mix": 0.0, "tone": 0.5})[0]))) - 100
    low = _tone(80.0, seconds=1.0)
    detected = FlipFlopOctave(1.0, 1e4).lowpassed(low[0].astype(np.float64), SR)
    lags = np.arange(0, 60)
    sub_lag = int(lags[np.argmax([np.dot(detected[lag:], low[0, : len(low[0]) - lag]) for lag in lags])])
    assert dry_lag == octave.latency_samples == FlipFlopOctave.latency_for(SR) > 0
    assert abs(sub_lag - octave.latency_samples) <= 2


def _swept_delay_ms(out: np.ndarray, tone_hz: float, reference: np.ndarray) -> np.ndarray:
    phase = np.unwrap(np.angle(hilbert(out))) - np.unwrap(np.angle(hilbert(reference)))
    return -phase / (2 * np.pi * tone_hz) * 1000


def test_chorus_rate_and_depth_move_the_delay_as_the_knobs_say() -> None:
    chorus = REFERENCE_EFFECTS["chorus"]
    tone = _tone(3000.0, seconds=2.0)
    t = np.arange(tone.shape[1]) / SR
    for rate, depth in ((0.5, 0.2), (2.0, 1.0)):
        wet = chorus.process(tone, SR, {"rate": rate, "depth": depth, "mix": 0.9})
        delay = _swept_delay_ms(wet[0], 3000.0, tone[0])[2000:-2000]
        # the LFO the effect declares: delay = centre + 10 ms * pedalboard depth * sin(2 pi rate t + start phase)
        lfo = np.sin(2 * np.pi * rate * t + chorus.lfo.start_phase)[2000:-2000]  # type: ignore[union-attr]
        swing = 10.0 * (0.05 + 0.45 * depth) * 0.9  # mixed at 0.9: the phase follows the wet voice's delay
        assert np.corrcoef(delay, lfo)[0, 1] > 0.98
        assert swing * 0.5 < (delay.max() - delay.min()) / 2 < swing * 1.5


def test_delay_time_feedback_and_mix_place_the_echoes() -> None:
    delay = REFERENCE_EFFECTS["delay"]
    impulse = np.zeros((1, SR), np.float32)
    impulse[0, 0] = 1.0
    out = delay.process(impulse, SR, {"time": 200.0, "feedback": 0.5, "mix": 0.4})[0]
    echo = int(0.2 * SR)
    assert out[0] == pytest.approx(0.6) and out[echo] == pytest.approx(0.4, rel=1e-3)
    assert out[2 * echo] == pytest.approx(0.2, rel=1e-3) and np.abs(out[1:echo]).max() < 1e-6


def test_filter_cutoff_and_resonance() -> None:
    ladder = REFERENCE_EFFECTS["filter"]
    low, high = (ladder.process(NOISE, SR, {"cutoff": c, "resonance": 0.0}) for c in (300.0, 5000.0))
    assert _centroid_hz(high) > 3 * _centroid_hz(low)
    flat, peaked = (ladder.process(_tone(1000.0), SR, {"cutoff": 1000.0, "resonance": r}) for r in (0.0, 0.9))
    assert np.abs(peaked).max() > 1.5 * np.abs(flat).max()


@pytest.mark.parametrize("kind", list(TEST_SIGNALS))
def test_the_papers_test_signals_are_in_the_training_material(kind: str) -> None:
    program = make_program(6.0, SR, np.random.default_rng(3), kinds=[kind])
    levels_db = 20 * np.log10(np.abs(program).max())
    assert program.shape == (6 * SR,) and -41 < levels_db <= 0
    again = make_program(6.0, SR, np.random.default_rng(3), kinds=[kind])
    np.testing.assert_array_equal(program, again)


def test_default_programs_are_unchanged_by_the_test_signals() -> None:
    """Existing models' training material must not change: the test signals come only when asked for."""
    plain = make_program(3.0, SR, np.random.default_rng(5), kinds=["note", "pluck", "drum"])
    assert plain.shape == (3 * SR,)
    with pytest.raises(ValueError, match="no material generator 'wobble'"):
        make_program(1.0, SR, np.random.default_rng(5), kinds=["wobble"])
