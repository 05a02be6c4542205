"""Effect profiles: the data files, their mapping onto Vital's controls, sampling, and what each effect does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import metrics
from models.errors import ReaTimbreError
from models.synth.features import CLIP_SAMPLES, clip_features
from models.synth.presets import build_preset_patch
from models.synth.profiles import EFFECT_NAMES, available_profiles, load_profile, parse_profile
from models.synth.vital import VitalSynth

CLIP_SECONDS = CLIP_SAMPLES / 44100


@pytest.fixture(scope="module")
def vital() -> VitalSynth:
    return VitalSynth()


def test_both_profiles_ship_with_the_five_coach_effects() -> None:
    assert {"vital", "serum1"} <= set(available_profiles())
    for name in ("vital", "serum1"):
        profile = load_profile(name)
        assert profile.effect_names == EFFECT_NAMES
        assert sum(len(e.parameters) for e in profile.effects) == 14  # SerumRNN Table 2
        ccs = [p.midi_cc for e in profile.effects for p in e.parameters] + [e.switch.midi_cc for e in profile.effects]
        assert len(set(ccs)) == len(ccs)  # one CC per host parameter


def test_serum_profile_uses_the_reference_parameter_indices_and_ranges() -> None:
    profile = load_profile("serum1")
    indices = {f"{e.name}.{p.name}": p.host_index for e in profile.effects for p in e.parameters}
    assert indices == {
        "compressor.low_band": 270, "compressor.mid_band": 271, "compressor.high_band": 272,
        "distortion.mode": 99, "distortion.drive": 97,
        "eq.high_frequency": 89, "eq.high_resonance": 91, "eq.high_gain": 93,
        "phaser.lfo_depth": 112, "phaser.frequency": 113, "phaser.feedback": 114,
        "reverb.mix": 81, "reverb.low_cut": 84, "reverb.high_cut": 86,
    }  # fmt: skip
    mode = profile.effect("distortion").parameter("mode")
    assert len(mode.classes) == 12 and mode.host_normalized(11) == pytest.approx(1.0)
    assert profile.effect("distortion").parameter("drive").sample_ranges == ((0.3, 1.0),)
    assert profile.effect("eq").parameter("high_gain").sample_ranges == ((0.0, 0.4), (0.6, 1.0))
    assert profile.effect("reverb").parameter("mix").sample_ranges == ((0.3, 0.7),)
    assert profile.effect("eq").parameter("high_frequency").sample_ranges == ((0.5, 0.95),)


def test_vital_profile_controls_exist_with_vitals_own_ranges_and_names(vital: VitalSynth) -> None:
    profile = load_profile("vital")
    for effect in profile.effects:
        assert effect.switch.control in vital.control_names()
        assert set(effect.fixed) <= set(vital.control_names())
        for p in effect.parameters:
            details = vital.control_details(p.control)
            assert (p.control_min, p.control_max) == pytest.approx((details.min, details.max))
            assert p.display_name == details.display_name
            if p.is_categorical:  # Vital's options in order (distortion leaves out Down Sample: not repeatable)
                assert list(p.classes) == list(details.options)[: len(p.classes)]
                assert list(p.class_values) == list(range(len(p.classes)))
            else:
                for u in (0.0, 1.0):
                    assert details.min <= p.to_native(u) <= details.max


def test_sampling_follows_the_papers_ranges_on_a_001_grid() -> None:
    rng = np.random.default_rng(0)
    profile = load_profile("vital")
    gains = [profile.effect("eq").parameter("high_gain").sample(rng) for _ in range(400)]
    assert all(g <= 0.4 or g >= 0.6 for g in gains) and min(gains) < 0.2 and max(gains) > 0.8
    drives = [profile.effect("distortion").parameter("drive").sample(rng) for _ in range(300)]
    assert min(drives) >= 0.3 and all(abs(d * 100 - round(d * 100)) < 1e-6 for d in drives)
    modes = {profile.effect("distortion").parameter("mode").sample(rng) for _ in range(300)}
    assert modes == {0.0, 1.0, 2.0, 3.0, 4.0}


def test_values_map_to_native_host_normalised_and_midi_cc() -> None:
    drive = load_profile("vital").effect("distortion").parameter("drive")
    assert drive.to_native(0.5) == pytest.approx(14.0)  # dB, u 0..1 → 0..28 dB
    assert drive.host_normalized(0.5) == pytest.approx((14.0 + 30.0) / 60.0)
    assert drive.midi_cc_value(1.0) == round((28.0 + 30.0) / 60.0 * 127)
    assert drive.from_native(14.0) == pytest.approx(0.5)
    assert drive.display_text(0.5) == "+14.0 dB"
    with pytest.raises(ReaTimbreError):
        drive.to_native(1.5)
    rows = load_profile("vital").host_values({"distortion": {"mode": 1, "drive": 0.5}})
    assert rows[0]["text"] == "Hard Clip" and rows[0]["normalized"] == pytest.approx(0.2)
    describe = load_profile("vital").effect("distortion").describe({"mode": 1, "drive": 0.5})
    assert describe == "Distortion on: Hard Clip, Distortion Drive +14.0 dB"


def test_rack_settings_turn_listed_effects_on_and_others_off() -> None:
    profile = load_profile("vital")
    rng = np.random.default_rng(3)
    controls = profile.controls({"reverb": profile.effect("reverb").sample(rng)})
    assert controls["reverb_on"] == 1 and controls["reverb_chorus_amount"] == 0.0
    assert all(controls[f"{name}_on"] == 0 for name in ("compressor", "distortion", "eq", "phaser"))
    with pytest.raises(ReaTimbreError, match="needs values"):
        profile.controls({"reverb": {"mix": 0.5}})
    with pytest.raises(ReaTimbreError, match="unknown effect"):
        profile.controls({"chorus": {}})


def test_malformed_profiles_are_refused(tmp_path) -> None:
    raw = json.loads(json.dumps(load_profile("vital").source))
    raw["effects"] = raw["effects"][:4]
    with pytest.raises(ReaTimbreError, match="effects must be"):
        parse_profile(raw)
    raw = json.loads(json.dumps(load_profile("vital").source))
    raw["effects"][0]["parameters"][0]["sample_ranges"] = [[0.5, 1.5]]
    with pytest.raises(ReaTimbreError, match="sample_ranges"):
        parse_profile(raw)
    with pytest.raises(ReaTimbreError, match="no effect profile"):
        load_profile("dx7")


def _render(
    vital: VitalSynth,
    settings: dict,
    preset: str = "saw",
    note_seconds: float = 1.0,
    render_seconds: float = CLIP_SECONDS,
) -> np.ndarray:
    vital.load_init_patch()
    vital.load_patch_json(build_preset_patch(preset, vital.patch_json()))
    vital.set_controls(load_profile("vital").controls(settings))
    return vital.render(48, 1.0, note_seconds, render_seconds)


def _band_db(audio: np.ndarray, lo_bin: int, hi_bin: int) -> float:
    return float(np.mean(clip_features(audio).mel_db80[lo_bin:hi_bin, 10:80]) * 80)


def test_each_effect_changes_the_sound_the_way_its_parameters_say(vital: VitalSynth) -> None:
    dry = _render(vital, {})
    # EQ high band: +15 dB shelf at ~2 kHz raises the top, -15 dB lowers it
    eq_up = _render(vital, {"eq": {"high_frequency": 0.65, "high_resonance": 0.3, "high_gain": 1.0}})
    eq_down = _render(vital, {"eq": {"high_frequency": 0.65, "high_resonance": 0.3, "high_gain": 0.0}})
    top = (100, 128)
    assert _band_db(eq_up, *top) > _band_db(dry, *top) + 6 > _band_db(eq_down, *top) + 12
    # distortion: a hard clipper driven harder adds harmonics above a sine
    soft = _render(vital, {"distortion": {"mode": 1, "drive": 0.3}}, "sine")
    hard = _render(vital, {"distortion": {"mode": 1, "drive": 1.0}}, "sine")
    assert _band_db(hard, 40, 100) > _band_db(soft, 40, 100) + 10
    # reverb: 0.3 s after a 0.5 s note ends, the dry synth is silent and the hall still rings
    hall = {"reverb": {"mix": 0.7, "low_cut": 0.0, "high_cut": 1.0}}
    dry_tail = np.abs(_render(vital, {}, note_seconds=0.5, render_seconds=1.0)[:, int(0.8 * 44100) :]).max()
    wet_tail = np.abs(_render(vital, hall, note_seconds=0.5, render_seconds=1.0)[:, int(0.8 * 44100) :]).max()
    assert dry_tail < 1e-3 < 0.02 < wet_tail
    # compressor and phaser audibly change the clip (the phaser least, as the paper notes)
    dry_mel = clip_features(dry).mel_db80
    for name, values in {
        "compressor": {"low_band": 1.0, "mid_band": 0.0, "high_band": 1.0},
        "phaser": {"lfo_depth": 1.0, "frequency": 0.8, "feedback": 0.9},
    }.items():
        wet_mel = clip_features(_render(vital, {name: values})).mel_db80
        assert metrics.lsd_db(dry_mel, wet_mel) > 1.0, name


def test_settings_read_back_from_a_patch(vital: VitalSynth, tmp_path) -> None:
    profile = load_profile("vital")
    rng = np.random.default_rng(7)
    settings = {name: profile.effect(name).sample(rng) for name in ("distortion", "eq", "reverb")}
    vital.load_preset("vintage_bells")
    vital.set_controls(profile.controls(settings))
    path = vital.save_patch(tmp_path / "bells.vital")
    other = VitalSynth()
    other.load_patch(path)
    read = profile.read_settings(other)
    assert set(read) == {"distortion", "eq", "reverb"}
    for effect, values in settings.items():
        assert read[effect] == pytest.approx(values, abs=1e-6)
    with pytest.raises(ReaTimbreError, match="cannot read"):
        load_profile("serum1").read_settings(other)
