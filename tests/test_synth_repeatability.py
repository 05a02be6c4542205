"""Renders repeat whatever was rendered before: the measured noise floor on every metric.

Measured here (see docs/synth.md), worst case over 16 random coach dataset clips: with the default 0.3 s settling
pass LSD ≈ 0.0006 dB and MFCC distance ≈ 0.004; with 0.2 s, LSD ≈ 0.035 dB (compressor and bit-crusher state);
without it, LSD ≈ 3.4 dB and MFCC distance ≈ 31 — as large as a real effect step.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.synth.features import CLIP_SAMPLES, clip_features
from models.synth.presets import build_preset_patch
from models.synth.repeatability import vital_noise_floor
from models.synth.vital import VitalSynth


def test_vital_noise_floor_with_settling_is_far_below_any_effect_step() -> None:
    floor = vital_noise_floor(group="all", clips=6)
    assert floor["mse"] < 1e-7
    assert floor["mae"] < 1e-4
    assert floor["lsd_db"] < 0.01
    assert floor["mfcc_distance"] < 0.1


def test_without_settling_vital_renders_depend_on_history() -> None:
    floor = vital_noise_floor(group="all", clips=4, settle_seconds=0.0)
    assert floor["lsd_db"] > 0.3  # the mechanism is what makes renders repeat


def test_random_oscillator_phase_is_neutralised_for_rendering() -> None:
    renders = []
    for _ in range(2):
        synth = VitalSynth()
        synth.load_patch_json(build_preset_patch("power_fifths", synth.patch_json()))  # 3-voice unison
        renders.append(synth.render(48, 1.0, 1.0, CLIP_SAMPLES / 44100))
    np.testing.assert_array_equal(renders[0], renders[1])


@pytest.mark.parametrize("history_note", [36, 72])
def test_same_patch_and_note_give_the_same_features_after_other_notes(history_note: int) -> None:
    synth = VitalSynth()
    synth.load_patch_json(build_preset_patch("dirt_stab", synth.patch_json()))
    synth.set_controls({"reverb_on": 1, "reverb_chorus_amount": 0.0, "distortion_on": 1, "distortion_drive": 12.0})
    first = clip_features(synth.render(48, 1.0, 1.0, CLIP_SAMPLES / 44100)).mel_db80
    synth.render(history_note, 1.0, 1.0, 1.0)
    synth.set_controls({"distortion_drive": -20.0})
    synth.render(history_note, 0.5, 0.2, 0.3)
    synth.set_controls({"distortion_drive": 12.0})
    again = clip_features(synth.render(48, 1.0, 1.0, CLIP_SAMPLES / 44100)).mel_db80
    assert np.abs(first - again).max() * 80 < 0.3  # dB, in every bin and frame


def test_a_match_patch_renders_the_same_whatever_patch_came_before() -> None:
    """``match`` refines by rendering patch after patch: the distance it keeps must be the patch's own. With a
    1 ms settling note, 3 of these 40 random Vital patches rendered differently right after another patch (up
    to 0.32 dB)."""
    from models.asp.infer import render_mel
    from models.metrics import lsd_db
    from models.synth.match_synths import VitalMatch

    synth = VitalMatch()
    rng = np.random.default_rng(5)
    distances = []
    for _ in range(40):
        patch = synth.random_patch(rng)
        after_another = render_mel(synth, patch, 57)
        distances.append(float(lsd_db(after_another, render_mel(synth, patch, 57))))
    assert max(distances) < 0.05, f"worst {max(distances):.3f} dB"
