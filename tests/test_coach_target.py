"""The coach finds the target's note and where it starts: real Vital notes, a chord, noise and silence."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from models.coach.start import start_synth
from models.coach.target import DEFAULT_NOTE, match_patch_note, prepare_target
from models.errors import ReaTimbreError
from models.pitch import find_note, note_name

LEAD_SECONDS = 0.37


@pytest.fixture(scope="module")
def vital():
    return {preset: start_synth(preset, None) for preset in ("saw", "vintage_bells", "dirt_stab")}


def _note(synth, midi: int) -> np.ndarray:
    return synth.render(midi, 1.0, 1.0, 1.5)


def _lead_in(audio: np.ndarray, rate: int, seconds: float = LEAD_SECONDS) -> np.ndarray:
    return np.concatenate([np.zeros((audio.shape[0], int(seconds * rate)), np.float32), audio], axis=1)


@pytest.mark.parametrize("preset", ["saw", "vintage_bells", "dirt_stab"])
@pytest.mark.parametrize("midi", [36, 55, 60, 79])
def test_rendered_notes_are_heard_at_their_pitch_and_onset(vital, preset: str, midi: int) -> None:
    synth = vital[preset]
    rate = synth.sample_rate_hz
    prepared = prepare_target(_lead_in(_note(synth, midi), rate), rate)
    assert prepared.note == midi and prepared.estimate is not None and prepared.estimate.kind == "pitched"
    assert LEAD_SECONDS - 0.003 <= prepared.start_seconds <= LEAD_SECONDS + 0.003
    assert 0.3 < prepared.estimate.confidence <= 1.0
    assert f"heard {note_name(midi)} (MIDI {midi}), confidence" in prepared.message
    assert np.abs(prepared.clip[:, :441]).max() > 0.01 * np.abs(prepared.clip).max()  # the note, not the silence


def test_note_flag_overrides_what_is_heard(vital) -> None:
    synth = vital["saw"]
    prepared = prepare_target(_note(synth, 60), synth.sample_rate_hz, note=48)
    assert prepared.note == 48 and prepared.estimate.midi == 60
    assert "as given with --note" in prepared.message and "heard C4 (MIDI 60)" in prepared.message
    with pytest.raises(ReaTimbreError, match="MIDI note 0..127"):
        prepare_target(_note(synth, 60), synth.sample_rate_hz, note=200)


def test_a_long_target_is_cut_at_its_main_notes_onset(vital) -> None:
    """Quiet notes, then the loud main note 2.6 s in, then more: the clip starts at the main note."""
    synth = vital["dirt_stab"]
    rate = synth.sample_rate_hz
    quiet = 0.05 * _note(synth, 43)
    audio = np.concatenate([quiet, _lead_in(_note(synth, 67), rate, 1.1), 0.05 * _note(synth, 48)], axis=1)
    prepared = prepare_target(audio, rate)
    assert prepared.start_seconds == pytest.approx(1.5 + 1.1, abs=0.005)
    assert prepared.note == 67
    # played straight over a quieter note, with no silence between them
    legato = np.concatenate([0.1 * _note(synth, 43)[:, :rate], _note(synth, 67)], axis=1)
    prepared = prepare_target(legato, rate)
    assert prepared.start_seconds == pytest.approx(1.0, abs=0.005) and prepared.note == 67


def test_a_chord_is_called_polyphonic_and_plays_the_default_note(vital) -> None:
    for preset in ("saw", "vintage_bells"):
        synth = vital[preset]
        chord = _note(synth, 60) + _note(synth, 64) + _note(synth, 67)
        prepared = prepare_target(chord, synth.sample_rate_hz)
        assert prepared.estimate.kind == "polyphonic", (preset, prepared.estimate)
        assert prepared.note == DEFAULT_NOTE and "sounds like a chord" in prepared.message
        assert "--note" in prepared.message


def test_noise_is_unpitched_and_silence_is_refused() -> None:
    rate = 44_100
    noise = (0.3 * np.random.default_rng(0).standard_normal((2, rate))).astype(np.float32)
    prepared = prepare_target(noise, rate)
    assert prepared.estimate.kind == "unpitched" and prepared.note == DEFAULT_NOTE
    assert "no clear pitch" in prepared.message and "default C3 (MIDI 48)" in prepared.message
    with pytest.raises(ReaTimbreError, match="silent"):
        prepare_target(np.zeros((2, rate), np.float32), rate)
    assert find_note(np.zeros(rate, np.float32), rate).kind == "silent"
    # with both note and start given nothing is detected, as before
    assert prepare_target(noise, rate, start_seconds=0.0, note=50).estimate is None


def test_a_click_shorter_than_an_analysis_frame_is_heard_without_library_warnings() -> None:
    rate = 44_100
    click = (0.1 * np.random.default_rng(0).standard_normal(100)).astype(np.float32)  # 2 ms
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # librosa warns about frames longer than the signal
        estimate = find_note(click, rate)
    assert estimate.kind == "unpitched" and estimate.midi is None


def test_a_patch_that_sounds_an_octave_down_plays_the_note_that_matches() -> None:
    """power_fifths played at MIDI 48 sounds at C2 (its fifths imply a root an octave down): heard as 36, played 48."""
    fifths = start_synth("power_fifths", None)
    rate = fifths.sample_rate_hz
    prepared = prepare_target(fifths.render(48, 1.0, 1.0, 1.5), rate)
    assert prepared.note == 36 and prepared.estimate.midi == 36
    matched = match_patch_note(prepared, fifths)
    assert matched.note == 48 and "12 semitones below the note it plays, so it plays C3 (MIDI 48)" in matched.message
    same = start_synth("saw", None)
    assert match_patch_note(prepare_target(same.render(55, 1.0, 1.0, 1.5), rate), same).note == 55
    given = prepare_target(fifths.render(48, 1.0, 1.0, 1.5), rate, note=40)
    assert match_patch_note(given, fifths).note == 40  # --note is never moved
    heard_and_given = prepare_target(fifths.render(48, 1.0, 1.0, 1.5), rate, note=36)
    assert heard_and_given.estimate.midi == 36 and heard_and_given.note_given
    assert match_patch_note(heard_and_given, fifths).note == 36  # not even when it is the note heard
