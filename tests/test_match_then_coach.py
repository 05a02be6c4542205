"""``reatimbre match --then-coach`` hands the coach the note the patch was matched at, and the coach keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

import server.cli
from models.audio_io import read_audio, write_audio
from models.coach.target import match_patch_note, prepare_target
from models.synth.match_synths import VitalMatch
from models.synth.vital import VitalSynth


def test_then_coach_plays_the_matched_patch_at_the_matched_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a fifths stack (oscillator 2 a fifth up): the pitch tracker hears such a patch an octave below its note
    target = tmp_path / "fifths.wav"
    native = {"osc_2_on": 1.0, "osc_2_transpose": 7.0, "osc_2_level": 1.0, "filter_1_on": 1.0}
    write_audio(target, VitalMatch().render(native, 54, 1.0, 0.75, 1.5), 44100)
    handed: list[list[str]] = []
    run_cli = server.cli.main
    monkeypatch.setattr(server.cli, "main", lambda argv: handed.append(list(argv)) or 0)
    out = tmp_path / "patches"
    assert run_cli(["match", str(target), "--synth", "vital", "--out", str(out), "--then-coach"]) == 0
    printed = capsys.readouterr().out
    (coach,) = handed
    note = int(coach[coach.index("--note") + 1])
    # heard an octave low (MIDI 42), the patch renders closest at the note that played the target
    assert "note 42 (detected pitched)" in printed and "at note 54" in printed and note == 54
    assert coach[:2] == ["coach", "--target"]
    patch = Path(coach[coach.index("--patch") + 1])
    assert patch == out / "fifths-vital.vital"
    synth = VitalSynth()
    synth.load_patch_bytes(patch.read_bytes())
    audio, rate = read_audio(target)
    prepared = prepare_target(audio, rate, None, note)  # what the coach does with the handed arguments
    assert match_patch_note(prepared, synth).note == note


def test_a_given_note_is_the_only_one_tried() -> None:
    import numpy as np

    from models.asp.infer import Target, candidate_notes

    mel = np.zeros((128, 88), np.float32)
    assert candidate_notes(Target(mel, 60, None, 0.0)) == [60]  # --note: never moved
    heard = prepare_target(VitalMatch().render({}, 60, 1.0, 0.75, 1.5), 44100).estimate
    assert candidate_notes(Target(mel, 60, heard, 0.0)) == [60, 48, 72]
    assert candidate_notes(Target(mel, 5, heard, 0.0)) == [5, 17]
