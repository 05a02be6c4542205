# @description ReaTimbre: self-test in this REAPER
# @version 0.1.0
# @author ReaTimbre
# @about
#   Checks, in about a minute, that this REAPER's Python binding behaves as ReaTimbre expects: it opens a new
#   project tab, calls every REAPER function ReaTimbre uses on a test track and item there, prints one
#   pass/FAIL line per function in the ReaScript console, and closes the tab without saving (REAPER asks
#   whether to save it: answer No). Needs no server. Run it after installing or updating REAPER or ReaTimbre.
import math
import os
import re
import struct
import sys
import tempfile
import wave

from reaper_python import *  # noqa: F403

# ruff: noqa: F405 - the RPR_ functions come from REAPER's star import

NEW_PROJECT_TAB = 40859  # File: New project tab
CLOSE_PROJECT_TAB = 40860  # File: Close current project tab
INSERT_NEW_TRACK = 40001  # Track: Insert new track
SECTION = "ReaTimbre_selftest"
POINTER = re.compile(r"^\((\w+\*)\)0x[0-9A-F]{16}$")
NULL = "0x0000000000000000"

results = []


def report(name, ok, detail=""):
    results.append((name, bool(ok)))
    RPR_ShowConsoleMsg(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else "") + "\n")


def check(name, call, expect, detail=None):
    """Call ``call()``; pass when ``expect(result)`` is true. Returns the result (None if the call raised)."""
    try:
        result = call()
    except Exception as exc:  # one line per call, whatever went wrong
        report(name, False, f"{type(exc).__name__}: {exc}")
        return None
    try:
        ok = bool(expect(result))
    except Exception as exc:
        ok, detail = False, f"unexpected result {result!r} ({type(exc).__name__})"
    report(name, ok, (detail or "") if ok else f"got {result!r}" + (f"; {detail}" if detail else ""))
    return result


def is_ptr(value, ctype):
    return isinstance(value, str) and bool(POINTER.match(value)) and value.startswith(f"({ctype})")


def live_ptr(value, ctype):
    return is_ptr(value, ctype) and not value.endswith(NULL)


def shape(value, *types):
    """A tuple whose elements have these types (None: any)."""
    return (
        type(value) is tuple
        and len(value) == len(types)
        and all(t is None or type(v) is t for v, t in zip(value, types, strict=True))
    )


def write_test_wav(path, seconds=1.0, rate=44100):
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * n / rate))) for n in range(int(seconds * rate))
    )
    with wave.open(path, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(frames)


def run():
    check(
        "ShowConsoleMsg",
        lambda: RPR_ShowConsoleMsg("ReaTimbre self-test: one line per REAPER function ReaTimbre calls\n"),
        lambda r: r is None,
    )
    check("GetAppVersion", lambda: RPR_GetAppVersion(), lambda r: isinstance(r, str) and r)
    check("GetResourcePath", lambda: RPR_GetResourcePath(), lambda r: isinstance(r, str) and r)
    check("GetExePath", lambda: RPR_GetExePath(), lambda r: isinstance(r, str) and r)
    check("GetPlayState", lambda: RPR_GetPlayState(), lambda r: type(r) is int)
    check("NamedCommandLookup", lambda: RPR_NamedCommandLookup("_ReaTimbre_no_such_action"), lambda r: type(r) is int)
    first = check(
        "EnumProjects",
        lambda: RPR_EnumProjects(-1, "", 4096),
        lambda r: shape(r, str, int, str, int) and live_ptr(r[0], "ReaProject*"),
    )
    original = first[0] if first else None
    folder = tempfile.mkdtemp(prefix="reatimbre-selftest-")
    media = os.path.join(folder, "selftest.wav")
    write_test_wav(media)

    check("Main_OnCommand", lambda: RPR_Main_OnCommand(NEW_PROJECT_TAB, 0), lambda r: r is None, "new project tab")
    project = RPR_EnumProjects(-1, "", 4096)[0]
    if project == original:
        report("new project tab", False, "REAPER did not open a new tab; stopping so your project is untouched")
        return finish(folder, original)
    try:
        exercise(media)
    finally:
        finish(folder, original)


def exercise(media):
    check("GetProjectPath", lambda: RPR_GetProjectPath("", 4096), lambda r: shape(r, str, int) and r[1] == 4096)
    check("GetProjectName", lambda: RPR_GetProjectName(0, "", 4096), lambda r: shape(r, int, str, int))
    check("CountTracks", lambda: RPR_CountTracks(0), lambda r: r == 0, "empty new project")
    RPR_Main_OnCommand(INSERT_NEW_TRACK, 0)
    track = check("GetTrack", lambda: RPR_GetTrack(0, 0), lambda r: live_ptr(r, "MediaTrack*"))
    check("GetMediaTrackInfo_Value", lambda: RPR_GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER"), lambda r: r == 1.0)
    check(
        "GetSetMediaTrackInfo_String",
        lambda: RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "ReaTimbre self-test", True),
        lambda r: shape(r, int, str, str, str, bool) and r[0] == 1,
    )
    check("SetTrackSelected", lambda: RPR_SetTrackSelected(track, True), lambda r: r is None)
    check("CountSelectedTracks", lambda: RPR_CountSelectedTracks(0), lambda r: r == 1)
    check("GetSelectedTrack", lambda: RPR_GetSelectedTrack(0, 0), lambda r: r == track)
    check("SetEditCurPos", lambda: RPR_SetEditCurPos(0.0, False, False), lambda r: r is None)
    check("GetCursorPosition", lambda: RPR_GetCursorPosition(), lambda r: r == 0.0)

    check("InsertMedia", lambda: RPR_InsertMedia(media, 0), lambda r: type(r) is int)
    check("CountSelectedMediaItems", lambda: RPR_CountSelectedMediaItems(0), lambda r: r == 1)
    item = check("GetSelectedMediaItem", lambda: RPR_GetSelectedMediaItem(0, 0), lambda r: live_ptr(r, "MediaItem*"))
    check("GetMediaItemInfo_Value", lambda: RPR_GetMediaItemInfo_Value(item, "D_LENGTH"), lambda r: abs(r - 1.0) < 0.01)
    check("GetMediaItem_Track", lambda: RPR_GetMediaItem_Track(item), lambda r: r == track)
    check("CountTakes", lambda: RPR_CountTakes(item), lambda r: r == 1)
    take = check("GetActiveTake", lambda: RPR_GetActiveTake(item), lambda r: live_ptr(r, "MediaItem_Take*"))
    check("GetTake", lambda: RPR_GetTake(item, 0), lambda r: r == take)
    check("GetTakeName", lambda: RPR_GetTakeName(take), lambda r: isinstance(r, str))
    check("GetMediaItemTake_Item", lambda: RPR_GetMediaItemTake_Item(take), lambda r: r == item)
    check("TakeIsMIDI", lambda: RPR_TakeIsMIDI(take), lambda r: r == 0 and type(r) is int, "0, an int, not False")
    source = check(
        "GetMediaItemTake_Source",
        lambda: RPR_GetMediaItemTake_Source(take),
        lambda r: live_ptr(r, "PCM_source*"),
    )
    check(
        "GetMediaSourceFileName",
        lambda: RPR_GetMediaSourceFileName(source, "", 4096),
        lambda r: shape(r, str, str, int) and os.path.basename(r[1]) == "selftest.wav",
        "void: (source, file name, size)",
    )
    check("GetMediaItemTakeInfo_Value", lambda: RPR_GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"), lambda r: r == 1.0)
    check(
        "SetMediaItemTakeInfo_Value", lambda: RPR_SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", 0.0), lambda r: r == 1
    )
    check(
        "GetSetMediaItemTakeInfo_String",
        lambda: RPR_GetSetMediaItemTakeInfo_String(take, "P_NAME", "self-test take", True),
        lambda r: shape(r, int, str, str, str, bool) and r[0] == 1,
    )
    new_take = check(
        "AddTakeToMediaItem", lambda: RPR_AddTakeToMediaItem(item), lambda r: live_ptr(r, "MediaItem_Take*")
    )
    new_source = check(
        "PCM_Source_CreateFromFile",
        lambda: RPR_PCM_Source_CreateFromFile(media),
        lambda r: live_ptr(r, "PCM_source*"),
    )
    check("SetMediaItemTake_Source", lambda: RPR_SetMediaItemTake_Source(new_take, new_source), lambda r: r == 1)
    check("SetActiveTake", lambda: RPR_SetActiveTake(new_take), lambda r: r is None)
    check("UpdateItemInProject", lambda: RPR_UpdateItemInProject(item), lambda r: r is None)
    check("SetMediaItemSelected", lambda: RPR_SetMediaItemSelected(item, True), lambda r: r is None)
    check("SetMediaItemInfo_Value", lambda: RPR_SetMediaItemInfo_Value(item, "B_UISEL", 1.0), lambda r: r == 1)
    check(
        "ValidatePtr2",
        lambda: RPR_ValidatePtr2(0, item, "MediaItem*"),
        lambda r: type(r) is int,
        None,
    )

    check("TimeMap2_timeToQN", lambda: RPR_TimeMap2_timeToQN(0, 1.0), lambda r: isinstance(r, float) and r > 0)
    check("TimeMap2_QNToTime", lambda: RPR_TimeMap2_QNToTime(0, 4.0), lambda r: isinstance(r, float) and r > 0)
    check(
        "TimeMap_GetTimeSigAtTime",
        lambda: RPR_TimeMap_GetTimeSigAtTime(0, 0.0, 0, 0, 0.0),
        lambda r: shape(r, int, float, int, int, float) and r[2] > 0 and r[3] > 0 and r[4] > 0,
        "void: (proj, time, numerator, denominator, tempo)",
    )

    midi = check(
        "CreateNewMIDIItemInProj",
        lambda: RPR_CreateNewMIDIItemInProj(track, 2.0, 3.0, False),
        lambda r: shape(r, str, str, float, float, int) and live_ptr(r[0], "MediaItem*"),
        "a 5-tuple",
    )
    midi_take = RPR_GetActiveTake(midi[0]) if midi else ""
    check("MIDI_GetPPQPosFromProjTime", lambda: RPR_MIDI_GetPPQPosFromProjTime(midi_take, 2.0), lambda r: r == 0.0)
    check(
        "MIDI_InsertCC",
        lambda: RPR_MIDI_InsertCC(midi_take, False, False, 0.0, 0xB0, 0, 20, 64),
        lambda r: r == 1,
    )
    check("MIDI_Sort", lambda: RPR_MIDI_Sort(midi_take), lambda r: r is None)
    check(
        "MIDI_CountEvts",
        lambda: RPR_MIDI_CountEvts(midi_take, 0, 0, 0),
        lambda r: shape(r, int, str, int, int, int) and r[3] == 1,
    )
    check(
        "MIDI_GetCC",
        lambda: RPR_MIDI_GetCC(midi_take, 0, 0, 0, 0.0, 0, 0, 0, 0),
        lambda r: shape(r, int, str, int, int, int, float, int, int, int, int) and r[8:] == (20, 64),
    )

    # The test track has no plug-in, so these check the binding's shapes on FX 0 of an empty chain: the answers
    # are the "nothing there" ones.
    empty = "shape only: the test track has no FX"
    check("TrackFX_GetCount", lambda: RPR_TrackFX_GetCount(track), lambda r: r == 0)
    check(
        "TrackFX_GetFXName",
        lambda: RPR_TrackFX_GetFXName(track, 0, "", 4096),
        lambda r: shape(r, int, str, int, str, int),
        empty,
    )
    check("TrackFX_GetNumParams", lambda: RPR_TrackFX_GetNumParams(track, 0), lambda r: r == 0)
    check(
        "TrackFX_GetParamName",
        lambda: RPR_TrackFX_GetParamName(track, 0, 0, "", 4096),
        lambda r: shape(r, int, str, int, int, str, int),
        empty,
    )
    check(
        "TrackFX_GetFormattedParamValue",
        lambda: RPR_TrackFX_GetFormattedParamValue(track, 0, 0, "", 4096),
        lambda r: shape(r, int, str, int, int, str, int),
        empty,
    )
    check(
        "TrackFX_GetParam",
        lambda: RPR_TrackFX_GetParam(track, 0, 0, 0.0, 0.0),
        lambda r: shape(r, float, str, int, int, float, float),
        empty,
    )
    check("TrackFX_GetParamNormalized", lambda: RPR_TrackFX_GetParamNormalized(track, 0, 0), lambda r: type(r) is float)
    check("TrackFX_SetParamNormalized", lambda: RPR_TrackFX_SetParamNormalized(track, 0, 0, 0.5), lambda r: r == 0)
    env = check(
        "GetFXEnvelope",
        lambda: RPR_GetFXEnvelope(track, 0, 0, False),
        lambda r: is_ptr(r, "TrackEnvelope*"),
        empty,
    )
    check("CountEnvelopePoints", lambda: RPR_CountEnvelopePoints(env), lambda r: r == 0, empty)
    check(
        "InsertEnvelopePoint",
        lambda: RPR_InsertEnvelopePoint(env, 0.0, 0.5, 1, 0.0, False, True),
        lambda r: shape(r, int, str, float, float, int, float, bool, int),
        empty,
    )
    check(
        "GetEnvelopePoint",
        lambda: RPR_GetEnvelopePoint(env, 0, 0.0, 0.0, 0, 0.0, 0),
        lambda r: shape(r, int, str, int, float, float, int, float, int),
        empty,
    )
    check("Envelope_SortPoints", lambda: RPR_Envelope_SortPoints(env), lambda r: type(r) is int, empty)
    check(
        "DeleteEnvelopePointRange",
        lambda: RPR_DeleteEnvelopePointRange(env, 0.0, 1.0),
        lambda r: type(r) is int,
        empty,
    )

    # The match action adds a synth on a new track: REAPER's own ReaEQ (every REAPER has it) on a second track,
    # which is then deleted again.
    check("InsertTrackAtIndex", lambda: RPR_InsertTrackAtIndex(1, False), lambda r: r is None)
    second = RPR_GetTrack(0, 1)
    check("CountTracks", lambda: RPR_CountTracks(0), lambda r: r == 2, "after InsertTrackAtIndex")
    check(
        "TrackFX_AddByName",
        lambda: (
            RPR_TrackFX_AddByName(second, "ReaEQ", False, 0),
            RPR_TrackFX_AddByName(second, "ReaEQ", False, 1),
            RPR_TrackFX_AddByName(second, "ReaEQ", False, 1),
        ),
        lambda r: r == (-1, 0, 0) and RPR_TrackFX_GetNumParams(second, 0) > 0,
        "query: -1; add when not found: 0; again: the same 0",
    )
    check("DeleteTrack", lambda: RPR_DeleteTrack(second), lambda r: r is None and RPR_CountTracks(0) == 1)

    check("SetExtState", lambda: RPR_SetExtState(SECTION, "key", "value", False), lambda r: r is None)
    check("GetExtState", lambda: RPR_GetExtState(SECTION, "key"), lambda r: r == "value")
    check("HasExtState", lambda: RPR_HasExtState(SECTION, "key"), lambda r: r == 1 and type(r) is int)
    check("DeleteExtState", lambda: RPR_DeleteExtState(SECTION, "key", False), lambda r: r is None)
    check("Undo_BeginBlock2", lambda: RPR_Undo_BeginBlock2(0), lambda r: r is None)
    check("Undo_EndBlock2", lambda: RPR_Undo_EndBlock2(0, "ReaTimbre self-test", -1), lambda r: r is None)
    check("UpdateArrange", lambda: RPR_UpdateArrange(), lambda r: r is None)
    check(
        "GetUserInputs",
        lambda: RPR_GetUserInputs("ReaTimbre self-test", 1, "Press OK (or Cancel)", "ok", 4096),
        lambda r: shape(r, int, str, int, str, str, int),
    )


def finish(folder, original):
    RPR_ShowConsoleMsg("closing the test tab: if REAPER asks whether to save it, answer No\n")
    RPR_Main_OnCommand(CLOSE_PROJECT_TAB, 0)
    back = RPR_EnumProjects(-1, "", 4096)[0]
    report("back in your project", original is not None and back == original, "" if back == original else back)
    for name in os.listdir(folder):
        try:
            os.remove(os.path.join(folder, name))
        except OSError:
            pass
    try:
        os.rmdir(folder)
    except OSError:
        pass
    main = sys.modules["__main__"]
    main.RPR_atexit("selftest_at_exit()")
    main.RPR_defer("selftest_deferred()")


def selftest_deferred():
    report("defer", True, "RPR_defer from __main__ ran this on the next tick")
    failed = [name for name, ok in results if not ok]
    summary = f"{len(results) - len(failed)} of {len(results)} checks passed" + (
        f"; failed: {', '.join(failed)}" if failed else ""
    )
    RPR_ShowConsoleMsg(f"ReaTimbre self-test: {summary}\n")
    check(
        "ShowMessageBox",
        lambda: RPR_ShowMessageBox(summary + "\n(details in the ReaScript console)", "ReaTimbre self-test", 0),
        lambda r: type(r) is int,
    )


def selftest_at_exit():
    RPR_ShowConsoleMsg("pass  atexit  (RPR_atexit from __main__ ran this as the script ended)\n")


run()
