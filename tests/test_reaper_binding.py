"""The emulated binding is REAPER's: its C-signature table against the reference, and the generated behaviour."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from reaper_emulator import ReaperEmulator
from reaper_emulator.reaper_binding import C_SIGNATURES, SIGNATURES, parse_signature

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).parent / "fixtures" / "reaper_binding" / "reference_signatures.tsv"
MAIN_BUILTINS = {"defer", "atexit", "runloop"}
EMULATOR_ONLY = {"DeleteTrackMediaItem"}  # the tests' stand-in for a user deleting an item
POINTER = re.compile(r"^\((\w+\*)\)0x[0-9A-F]{16}$")


def _reference() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, signature, returns = line.split("\t")
            rows[name] = (signature, tuple(part.strip() for part in returns.split(",")))
    return rows


def _types(name: str, text: str) -> tuple[str, tuple[str, ...]]:
    """A signature's return type and parameter types (the reference abridges parameter names)."""
    types = []
    for raw in re.fullmatch(r"\s*.+?\s*\((.*)\)\s*", text).group(1).split(","):
        raw = raw.strip()
        if raw:
            kind = re.match(r"^(const\s+)?\w+\s*\*?", raw).group(0).replace(" *", "*")
            types.append(re.sub(r"\s+", " ", kind).strip())
    return parse_signature(name, text).returns, tuple(types)


def _names_used_by_the_code() -> set[str]:
    """Every REAPER function named in extension/, reaper_scripts/ and server/ (``RPR_x`` or ``call("x", ...)``)."""
    names: set[str] = set()
    for folder in ("extension", "reaper_scripts", "server"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names.update(re.findall(r"\bRPR_([A-Za-z]\w*)", text))
            names.update(re.findall(r"\bcall\(\s*\"([A-Z]\w*)\"", text))
    return names


def test_every_function_the_code_calls_is_in_the_reference_and_the_table() -> None:
    reference = _reference()
    used = _names_used_by_the_code() - MAIN_BUILTINS
    assert used, "no REAPER calls found: the scan is broken"
    assert sorted(used - set(reference)) == []
    assert sorted(used - set(C_SIGNATURES)) == []


@pytest.mark.parametrize("name", sorted(set(C_SIGNATURES) - EMULATOR_ONLY))
def test_table_signature_and_python_return_match_the_reference(name: str) -> None:
    signature, returns = _reference()[name]
    assert _types(name, C_SIGNATURES[name]) == _types(name, signature)
    assert SIGNATURES[name].python_return() == returns


def test_defer_and_atexit_are_not_in_reaper_python(tmp_path: Path) -> None:
    emu = ReaperEmulator.new(tmp_path / "song.rpp")
    module = emu.module()
    assert not {"RPR_defer", "RPR_atexit", "RPR_runloop"} & set(dir(module))
    script = tmp_path / "script.py"
    script.write_text(
        "import sys\nfrom reaper_python import *\n"
        "HAS_FILE = '__file__' in globals()\nFOLDER = sys.path[0]\n"
        "def later():\n    RPR_ShowConsoleMsg('deferred ran\\n')\n"
        "RPR_defer('later()')\n"
        "import __main__\nSAME = __main__.RPR_defer is RPR_defer\n"
    )
    scope = emu.run_script(script)
    assert scope["HAS_FILE"] is False and scope["FOLDER"] == str(tmp_path) and scope["SAME"] is True
    assert emu.run_deferred() == 1 and emu.console == ["deferred ran\n"]
    assert emu.run_script(script, define_file=True)["HAS_FILE"] is True
    assert "__main__" in sys.modules and sys.modules["__main__"].__dict__ is not scope


@pytest.fixture
def emu(tmp_path: Path) -> ReaperEmulator:
    emulator = ReaperEmulator.new(tmp_path / "song.rpp", bpm=120, numerator=3)
    track = emulator.add_track("audio", selected=True)
    wav = tmp_path / "Audio" / "a.wav"
    wav.parent.mkdir()
    sf.write(wav, np.zeros(4410, dtype=np.float32), 44100)
    emulator.add_item(track, wav, 0.0, 0.1)
    return emulator


def test_void_functions_return_their_arguments_without_a_return_value(emu: ReaperEmulator, tmp_path: Path) -> None:
    assert emu.RPR_GetProjectPath("", 4096) == (str(tmp_path), 4096)
    assert emu.RPR_TimeMap_GetTimeSigAtTime(0, 1.0, 0, 0, 0.0) == (0, 1.0, 3, 4, 120.0)
    take = emu.RPR_GetActiveTake(emu.RPR_GetSelectedMediaItem(0, 0))
    source = emu.RPR_GetMediaItemTake_Source(take)
    assert emu.RPR_GetMediaSourceFileName(source, "", 4096) == (source, str(tmp_path / "Audio" / "a.wav"), 4096)
    assert emu.RPR_Main_OnCommand(0, 0) is None


def test_tuples_bools_and_pointer_strings(emu: ReaperEmulator) -> None:
    track = emu.RPR_GetTrack(0, 0)
    assert POINTER.match(track).group(1) == "MediaTrack*"
    midi = emu.RPR_CreateNewMIDIItemInProj(track, 1.0, 2.0, False)
    assert type(midi) is tuple and len(midi) == 5 and midi[1:] == (track, 1.0, 2.0, 0)
    assert POINTER.match(midi[0]).group(1) == "MediaItem*"
    take = emu.RPR_GetActiveTake(midi[0])
    assert emu.RPR_TakeIsMIDI(take) == 1 and type(emu.RPR_TakeIsMIDI(take)) is int
    assert emu.RPR_HasExtState("s", "k") == 0
    assert emu.RPR_GetTrack(0, 9) == "(MediaTrack*)0x0000000000000000"
    envelope_point = emu.RPR_InsertEnvelopePoint
    assert envelope_point("(TrackEnvelope*)0x0000000000000000", 0.0, 0.5, 0, 0.0, False, True) == (
        0,
        "(TrackEnvelope*)0x0000000000000000",
        0.0,
        0.5,
        0,
        0.0,
        False,
        1,
    )


def test_bad_pointers_become_null_silently(emu: ReaperEmulator) -> None:
    item = emu.RPR_GetSelectedMediaItem(0, 0)
    take = emu.RPR_GetActiveTake(item)
    assert emu.RPR_GetTakeName(take) == "a.wav"
    assert emu.RPR_GetTakeName(item) == ""  # an item where a take is expected: NULL
    assert emu.RPR_GetTakeName(take.lower().replace("(media", "(Media").replace("_take", "_Take")) == ""
    assert emu.RPR_GetTakeName(0) == "" and emu.RPR_GetTakeName(None) == ""
    assert emu.RPR_ValidatePtr2(0, item, "MediaItem*") == 1
    assert emu.RPR_ValidatePtr2(0, item, "MediaItem_Take*") == 0
    emu.delete_item(item)
    assert emu.RPR_ValidatePtr2(0, item, "MediaItem*") == 0
    assert emu.RPR_GetMediaItemInfo_Value(item, "D_LENGTH") == 0.0  # a deleted item: NULL, no error
    assert emu.RPR_GetActiveTake(item) == "(MediaItem_Take*)0x0000000000000000"
    with pytest.raises(ValueError):
        emu.RPR_GetTakeName("(MediaItem_Take*)0x0001")  # the binding cannot unpack short hex


def test_argument_types_are_checked_as_ctypes_does(emu: ReaperEmulator) -> None:
    with pytest.raises(TypeError):
        emu.RPR_GetTrack(0, 1.0)  # int parameter given a float
    with pytest.raises(TypeError):
        emu.RPR_TimeMap_GetTimeSigAtTime(0, 1.0, 0.0, 0.0, 0.0)  # int* placeholder given a float
    with pytest.raises(TypeError):
        emu.RPR_SetEditCurPos(1.0, None, False)  # bool parameter given None
    with pytest.raises(TypeError):
        emu.RPR_GetTrack(0)  # every parameter is required
    emu.RPR_SetExtState("s", "k", None, False)
    assert emu.RPR_GetExtState("s", "k") == "None"  # const char* inputs go through str()
    with pytest.raises(AttributeError):
        emu.RPR_NoSuchFunction  # noqa: B018
