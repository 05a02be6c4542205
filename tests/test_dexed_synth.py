"""Dexed (DX7 FM through dexed-py) as a :class:`Synth`: controls in DX7 values, repeatable renders, cartridges."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ReaTimbreError
from models.synth.dexed import CONTROLS, DexedSynth, voice_from_bytes
from models.synth.features import clip_features


def test_controls_cover_the_voice_and_clip_to_dx7_ranges() -> None:
    synth = DexedSynth()
    assert len(CONTROLS) == 145 and len({offset for offset, _ in CONTROLS.values()}) == 145
    synth.set_controls({"op1_output_level": 120.4, "algorithm": 4.6, "op2_detune": -3})
    assert synth.get_control("op1_output_level") == 99.0  # clipped to the DX7's maximum
    assert synth.get_control("algorithm") == 5.0 and synth.control_text("algorithm") == "6"  # shown 1-based
    assert synth.get_control("op2_detune") == 0.0
    assert synth.normalized_value("algorithm") == pytest.approx(5 / 31)
    with pytest.raises(ReaTimbreError, match="no control named 'op7_rate1'"):
        synth.set_controls({"op7_rate1": 1.0})


def test_init_voice_is_a_sine_at_the_midi_note() -> None:
    audio = DexedSynth().render(57, 1.0, 0.75, 1.01)  # A3
    assert audio.shape == (2, 44541) and np.array_equal(audio[0], audio[1])
    spectrum = np.abs(np.fft.rfft(audio[0, :32768] * np.hanning(32768)))
    assert np.argmax(spectrum) * 44100 / 32768 == pytest.approx(220.0, abs=2.0)
    assert float(np.sort(spectrum)[-2] / spectrum.max()) > 0.3  # the peak's neighbour bin: one partial only
    assert spectrum[int(440 * 32768 / 44100)] < 1e-3 * spectrum.max()


def test_renders_do_not_depend_on_what_was_rendered_before() -> None:
    synth = DexedSynth()
    bell = {"algorithm": 4.0, "op2_output_level": 85.0, "op2_frequency_coarse": 3.0, "op1_rate2": 30.0,
            "op1_level2": 0.0, "feedback": 6.0}  # fmt: skip
    synth.set_controls(bell)
    first = synth.render(50, 1.0, 0.75, 1.01)
    synth.set_controls({"op2_output_level": 99.0, "feedback": 7.0})
    synth.render(62, 0.5, 0.2, 0.5)
    synth.set_controls({"op2_output_level": 85.0, "feedback": 6.0})
    assert np.array_equal(first, synth.render(50, 1.0, 0.75, 1.01))
    sine = clip_features(DexedSynth().render(50, 1.0, 0.75, 1.01)).mel_db80
    assert float(np.abs(clip_features(first).mel_db80 - sine).mean()) > 0.05  # FM changed the sound


def test_a_voice_renders_as_dexed_py_loads_it_and_values_round_as_the_dx7_stores_them() -> None:
    """The renderer hands dexed-py's engine the voice's sysex directly; dexed-py's own Patch route must give the
    same audio (a newer dexed-py that parsed voices differently would fail here), and setting a whole voice at
    once must store what setting each value alone does (half-way values round to even, as Python's round)."""
    import dexed

    rng = np.random.default_rng(5)
    synth, one_by_one = DexedSynth(), DexedSynth()
    values = {name: float(rng.uniform(-3.0, maximum + 3.0)) for name, (_, maximum) in CONTROLS.items()}
    values.update(algorithm=16.5, feedback=2.5, op1_output_level=99.0, op3_detune=7.5)
    synth.set_controls(values)
    for name, value in values.items():
        one_by_one.set_controls({name: value})
    assert synth.voice_bytes() == one_by_one.voice_bytes()
    assert synth.get_control("algorithm") == 16.0 and synth.get_control("op3_detune") == 8.0
    with pytest.raises(ReaTimbreError, match="finite"):
        synth.set_controls({"feedback": float("nan")})
    assert synth.voice_bytes() == one_by_one.voice_bytes()  # nothing set
    public = dexed.DexedSynth(sample_rate=44100.0)
    public.load_patch(dexed.Patch.from_sysex(synth.voice_bytes() + b"\x3f"))
    expected = np.asarray(public.render(57, 127, 0.75, 1.01), dtype=np.float32)
    assert np.array_equal(synth.render(57, 1.0, 0.75, 1.01)[0, : expected.shape[0]], expected)


def test_cartridge_round_trip_and_bad_files(tmp_path) -> None:
    synth = DexedSynth()
    synth.set_controls({"algorithm": 17.0, "op3_frequency_coarse": 5.0, "op6_rate4": 12.0, "transpose": 36.0})
    synth.voice_name = "ÜBER BASS 2000"
    path = synth.save_patch(tmp_path / "voice.syx")
    again = DexedSynth()
    again.load_patch(path)
    assert again.voice_bytes() == synth.voice_bytes() and again.voice_name == "_BER BASS"
    with pytest.raises(ReaTimbreError, match="already exists"):
        synth.save_patch(path)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    with pytest.raises(ReaTimbreError, match="checksum"):
        again.load_patch_bytes(bytes(data))
    with pytest.raises(ReaTimbreError, match="not a DX7 voice"):
        again.load_patch_bytes(b"\xf0\x43" + bytes(40))
    single = bytes([0xF0, 0x43, 0x00, 0x00, 0x01, 0x1B]) + synth.voice_bytes()
    single += bytes([(-sum(synth.voice_bytes())) & 0x7F, 0xF7])
    again.load_patch_bytes(single)
    assert again.voice_bytes() == synth.voice_bytes()
    bad = bytearray(synth.voice_bytes())
    bad[CONTROLS["algorithm"][0]] = 40
    with pytest.raises(ReaTimbreError, match="algorithm is 40"):
        again.load_patch_bytes(bytes(bad))
    assert again.voice_bytes() == synth.voice_bytes()  # a refused file changes nothing
    assert len(voice_from_bytes(synth.patch_bytes())) == 155
