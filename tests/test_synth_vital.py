"""Vital through vita: rendering, controls, patch load/save, and the SerumRNN features of its renders."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest

from models.errors import ReaTimbreError
from models.synth.features import CLIP_FRAMES, CLIP_SAMPLES, clip_features, clip_mel_db80
from models.synth.presets import build_preset_patch
from models.synth.vital import VitalSynth

CLIP_SECONDS = CLIP_SAMPLES / 44100


@pytest.fixture(scope="module")
def synth() -> VitalSynth:
    return VitalSynth()


@pytest.fixture()
def sine(synth: VitalSynth) -> VitalSynth:
    synth.load_init_patch()
    synth.load_patch_json(build_preset_patch("sine", synth.patch_json()))
    return synth


def fundamental_hz(audio: np.ndarray, sample_rate_hz: int = 44100) -> float:
    spectrum = np.abs(np.fft.rfft(audio.mean(axis=0) * np.hanning(audio.shape[1])))
    return float(np.argmax(spectrum) * sample_rate_hz / audio.shape[1])


def test_render_is_stereo_float32_of_the_asked_length_at_the_notes_pitch(sine: VitalSynth) -> None:
    audio = sine.render(48, 1.0, 1.0, CLIP_SECONDS)
    assert audio.shape == (2, CLIP_SAMPLES) and audio.dtype == np.float32
    assert 0.05 < np.abs(audio).max() < 1.0
    assert fundamental_hz(audio) == pytest.approx(130.81, abs=1.5)  # MIDI 48 = 130.8 Hz (SerumRNN calls it C4)
    assert fundamental_hz(sine.render(60, 1.0, 0.5, 0.5)) == pytest.approx(261.63, abs=3.0)


def test_note_seconds_ends_the_note(sine: VitalSynth) -> None:
    audio = sine.render(48, 1.0, 0.3, 1.0)
    assert np.abs(audio[:, : int(0.25 * 44100)]).max() > 0.1
    assert np.abs(audio[:, int(0.6 * 44100) :]).max() < 1e-3  # init patch release is ~0.09 s


def test_render_rejects_bad_arguments(sine: VitalSynth) -> None:
    for bad in [dict(note=128), dict(note=-1), dict(velocity=0.0), dict(velocity=1.5), dict(render_seconds=0)]:
        kwargs = dict(note=48, velocity=1.0, note_seconds=0.2, render_seconds=0.2) | bad
        with pytest.raises(ReaTimbreError):
            sine.render(**kwargs)


def test_set_controls_validates_names_and_ranges_before_setting_anything(synth: VitalSynth) -> None:
    synth.load_init_patch()
    before = synth.get_control("distortion_drive")
    with pytest.raises(ReaTimbreError, match="no control named 'no_such_knob'"):
        synth.set_controls({"distortion_drive": 12.0, "no_such_knob": 1.0})
    assert synth.get_control("distortion_drive") == before
    with pytest.raises(ReaTimbreError, match="-30..30"):
        synth.set_controls({"distortion_drive": 31.0})
    with pytest.raises(ReaTimbreError, match="finite"):
        synth.set_controls({"distortion_drive": float("nan")})
    synth.set_controls({"distortion_drive": 12.0, "distortion_type": 1})
    assert synth.get_control("distortion_drive") == pytest.approx(12.0)
    assert synth.control_text("distortion_type") == "Hard Clip"
    assert synth.control_text("distortion_drive").startswith("12")
    assert synth.display_name("distortion_drive") == "Distortion Drive"
    assert synth.normalized_value("distortion_drive") == pytest.approx((12.0 + 30.0) / 60.0)


def test_patch_save_load_round_trip_and_never_overwrites(synth: VitalSynth, tmp_path) -> None:
    synth.load_init_patch()
    synth.set_controls({"distortion_on": 1, "distortion_drive": 7.5, "reverb_dry_wet": 0.4})
    path = synth.save_patch(tmp_path / "mine.vital")
    saved = json.loads(path.read_text())
    assert saved["settings"]["distortion_drive"] == pytest.approx(7.5)
    # the user's random-phase setting is kept in the file although renders run with it off
    assert saved["settings"]["osc_1_random_phase"] == pytest.approx(1.0)
    with pytest.raises(ReaTimbreError, match="already exists"):
        synth.save_patch(path)
    other = VitalSynth()
    other.load_patch(path)
    assert other.get_control("distortion_drive") == pytest.approx(7.5)
    assert other.get_control("reverb_dry_wet") == pytest.approx(0.4)
    assert other.get_control("osc_1_random_phase") == pytest.approx(1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.vital"]  # no temporary files left behind


def test_malformed_patches_raise_one_clear_error(synth: VitalSynth, tmp_path) -> None:
    synth.load_init_patch()
    synth.set_controls({"distortion_drive": 3.0})
    (tmp_path / "bad.vital").write_text("{not json")
    with pytest.raises(ReaTimbreError, match="invalid JSON"):
        synth.load_patch(tmp_path / "bad.vital")
    (tmp_path / "empty.vital").write_text('{"author": "x"}')
    with pytest.raises(ReaTimbreError, match="no 'settings'"):
        synth.load_patch(tmp_path / "empty.vital")
    with pytest.raises(ReaTimbreError, match="cannot read"):
        synth.load_patch(tmp_path / "missing.vital")
    assert synth.get_control("distortion_drive") == pytest.approx(3.0)  # unchanged


def test_features_match_librosa_and_have_the_papers_shape(sine: VitalSynth) -> None:
    sine.set_controls({"distortion_on": 1, "distortion_drive": 12.0})
    audio = sine.render(48, 1.0, 1.0, CLIP_SECONDS)
    features = clip_features(audio)
    assert features.mel_db80.shape == (128, CLIP_FRAMES) == (128, 88)
    assert features.mfcc.shape == (30, 88)
    power = librosa.feature.melspectrogram(
        y=audio.mean(axis=0), sr=44100, n_fft=2048, hop_length=512, n_mels=128, fmin=20, fmax=16000
    )
    db = librosa.power_to_db(power, ref=1.0, top_db=80.0)
    np.testing.assert_allclose(features.mel_db80 * 80.0, db, atol=1e-3)
    np.testing.assert_allclose(features.mfcc, librosa.feature.mfcc(S=db, n_mfcc=30), atol=2e-3)
    assert features.mel_db80.max() - features.mel_db80.min() <= 1.0 + 1e-6  # top_db 80 → span ≤ 1


def test_features_of_a_batch_equal_per_clip_features(sine: VitalSynth) -> None:
    a = sine.render(48, 1.0, 1.0, CLIP_SECONDS)
    b = sine.render(55, 1.0, 1.0, CLIP_SECONDS)
    batch = clip_features(np.stack([a, b]))
    np.testing.assert_allclose(batch.mel_db80[1], clip_features(b).mel_db80, atol=1e-6)
    np.testing.assert_array_equal(clip_mel_db80(np.stack([a, b])), batch.mel_db80)  # what match compares renders by
