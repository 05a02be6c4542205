"""The 12 Vital presets in SerumRNN's 3 groups: structure, waveforms, and timbre that moves when it should."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.errors import ReaTimbreError
from models.synth.features import CLIP_SAMPLES, clip_features
from models.synth.presets import build_preset_patch, preset_groups, preset_names, preset_spec, single_cycle
from models.synth.vital import VitalSynth

CLIP_SECONDS = CLIP_SAMPLES / 44100


@pytest.fixture(scope="module")
def vital() -> VitalSynth:
    return VitalSynth()


@pytest.fixture(scope="module")
def init_patch(vital: VitalSynth) -> dict:
    vital.load_init_patch()
    return vital.patch_json()


def render(vital: VitalSynth, patch: dict) -> np.ndarray:
    vital.load_patch_json(patch)
    return vital.render(48, 1.0, 1.0, CLIP_SECONDS)


def harmonic_levels_db(audio: np.ndarray, count: int = 6) -> np.ndarray:
    """Levels of harmonics 1..count of MIDI 48 relative to the fundamental, from the sustained middle."""
    mono = audio.mean(axis=0)[11025:33075]
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    f0_bin = 130.8128 * mono.size / 44100
    peaks = np.array(
        [spectrum[int(round(k * f0_bin)) - 3 : int(round(k * f0_bin)) + 4].max() for k in range(1, count + 1)]
    )
    return 20 * np.log10(peaks / peaks[0] + 1e-12)


def timbre_motion(audio: np.ndarray) -> float:
    """Mean distance of each sustained frame's dB-mel/80 from the clip's mean frame."""
    mel = clip_features(audio).mel_db80[:, 12:84]
    return float(np.mean(np.abs(mel - mel.mean(axis=1, keepdims=True))))


def test_twelve_presets_in_the_papers_three_groups_of_four() -> None:
    groups = preset_groups()
    assert list(groups) == ["basic_shapes", "advanced_shapes", "advanced_modulating_shapes"]
    assert all(len(names) == 4 for names in groups.values())
    assert groups["basic_shapes"] == ("sine", "triangle", "saw", "square")
    assert len(set(preset_names())) == 12
    for name in groups["advanced_shapes"]:
        spec = preset_spec(name)
        assert len(spec.wavetables) >= 2 and not spec.modulations  # multi-oscillator, no modulation
    for name in groups["advanced_modulating_shapes"]:
        assert preset_spec(name).modulations
    with pytest.raises(ReaTimbreError, match="unknown preset group"):
        preset_names("pads")


def test_single_cycles_have_their_textbook_shapes() -> None:
    assert single_cycle("sine")[512] == pytest.approx(1.0)
    assert single_cycle("square").mean() == pytest.approx(0.0)
    assert single_cycle("triangle").max() == pytest.approx(1.0) and single_cycle("triangle").min() == pytest.approx(
        -1.0
    )
    assert np.all(np.diff(single_cycle("saw")[:1024]) > 0)


def test_basic_shapes_render_their_harmonic_series(vital: VitalSynth, init_patch: dict) -> None:
    levels = {
        name: harmonic_levels_db(render(vital, build_preset_patch(name, init_patch)))
        for name in preset_names("basic_shapes")
    }
    assert np.all(levels["sine"][1:] < -40)
    assert levels["saw"][1] == pytest.approx(-6.0, abs=1.5) and levels["saw"][2] == pytest.approx(-9.5, abs=1.5)
    assert levels["square"][2] == pytest.approx(-9.5, abs=1.5) and levels["square"][1] < -30  # odd harmonics only
    assert levels["triangle"][2] == pytest.approx(-19.1, abs=1.5) and levels["triangle"][1] < -30


def test_every_preset_is_audible_and_distinct(vital: VitalSynth, init_patch: dict) -> None:
    mels = {}
    for name in preset_names():
        audio = render(vital, build_preset_patch(name, init_patch))
        assert 0.02 < np.abs(audio).max() < 1.0, name
        mels[name] = clip_features(audio).mel_db80
    names = list(mels)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.mean(np.abs(mels[a] - mels[b])) > 0.01, (a, b)


def test_modulating_presets_change_timbre_over_the_note_because_of_their_modulation(
    vital: VitalSynth, init_patch: dict
) -> None:
    for name in preset_names("advanced_modulating_shapes"):
        patch = build_preset_patch(name, init_patch)
        moving = timbre_motion(render(vital, patch))
        still = json.loads(json.dumps(patch))
        for slot in range(1, len(preset_spec(name).modulations) + 1):
            still["settings"][f"modulation_{slot}_amount"] = 0.0
        assert moving > 5 * timbre_motion(render(vital, still)), name


def test_built_patches_keep_effects_off_and_name_the_preset(init_patch: dict) -> None:
    patch = build_preset_patch("wobble_fifths", init_patch)
    assert patch["preset_name"] == "wobble_fifths"
    for effect in ("compressor", "distortion", "eq", "phaser", "reverb"):
        assert patch["settings"][f"{effect}_on"] == 0
    assert patch["settings"]["modulations"][0] == {"source": "lfo_1", "destination": "filter_1_cutoff"}
    assert init_patch["settings"]["modulations"][0]["source"] == ""  # the init patch is not modified
