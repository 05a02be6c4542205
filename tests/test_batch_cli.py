"""``reatimbre batch`` from the command line with a real (tiny) model: folders, resume, projects, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
from reaper_emulator import ReaperEmulator
from test_server_render import make_tiny_model, make_tone

from extension.rpp import RppProject
from server.cli import main


@pytest.fixture(autouse=True)
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REATIMBRE_DATA_DIR", str(tmp_path / "data"))
    make_tiny_model(tmp_path / "data")


def test_folder_batch_renders_reports_failures_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name, seconds in (("a.wav", 0.3), ("b.wav", 0.4)):
        make_tone(tmp_path / "in" / name, seconds)
    (tmp_path / "in" / "broken.wav").write_bytes(b"not a wave file")
    command = ["batch", str(tmp_path / "in"), "--effect", "tiny", "--knob", "drive=0.9", "--out", str(tmp_path / "out")]
    assert main(command) == 1
    out, err = capsys.readouterr()
    assert "[3/3]" in out and "2 rendered, 0 skipped (already rendered), 1 failed" in err
    assert f"{tmp_path / 'in' / 'broken.wav'}:" in err
    for name in ("a", "b"):
        rendered = tmp_path / "out" / f"{name}-tiny.wav"
        assert sf.info(str(rendered)).frames == sf.info(str(tmp_path / "in" / f"{name}.wav")).frames
    before = (tmp_path / "out" / "a-tiny.wav").stat().st_mtime_ns
    assert main(command) == 1
    assert "0 rendered, 2 skipped (already rendered), 1 failed" in capsys.readouterr().err
    assert (tmp_path / "out" / "a-tiny.wav").stat().st_mtime_ns == before
    (tmp_path / "in" / "broken.wav").unlink()
    assert main(command) == 0


def test_project_batch_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    emu = ReaperEmulator.new(tmp_path / "song.rpp")
    track = emu.add_track("gtr")
    emu.add_item(track, make_tone(tmp_path / "Audio" / "gtr.wav", 0.5), 1.0, 0.5)
    project = emu.save(tmp_path / "song.rpp")
    assert main(["batch", str(project), "--effect", "tiny", "--tracks", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 takes added" in out and f"new project: {tmp_path / 'song-reatimbre.rpp'}" in out
    (item,) = RppProject.load(tmp_path / "song-reatimbre.rpp").items()
    assert item.active_take.name == "gtr.wav (neural: tiny)" and item.active_take.path.is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--effect", "tiny"], "give audio files"),
        (["IN", "--effect", "tiny"], "--out is required"),
        (["IN", "--effect", "tiny", "--out", "OUT", "--mix", "2"], "--mix must be within 0..1"),
        (["IN", "--effect", "tiny", "--out", "OUT", "--knob", "drive"], "--knob expects NAME=VALUE"),
        (["song.rpp", "--effect", "tiny", "--reaper-render"], "--reaper-render needs the REAPER executable"),
        (["song.rpp", "IN", "--effect", "tiny"], "one .rpp project at a time"),
        (["--reapy", "--effect", "tiny"], "REAPER is not reachable through reapy"),
        (["IN", "--effect", "tiny", "--out", "IN/x.wav"], "is a file, not a folder; nothing was rendered"),
    ],
)
def test_bad_arguments_are_one_line(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REATIMBRE_REAPER", raising=False)
    make_tone(tmp_path / "IN" / "x.wav", 0.1)
    monkeypatch.chdir(tmp_path)
    assert main(["batch", *arguments]) == 1
    err = capsys.readouterr().err
    assert err.startswith("reatimbre: error: ") and message in err and err.count("\n") == 1
