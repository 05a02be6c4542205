"""REAPER operations, written once against REAPER's API function names (standard library only).

Every operation takes an ``api`` object with ``call(name, *args)``, where ``name`` is a ReaScript function
name without the ``RPR_`` prefix (``"GetSelectedMediaItem"``). Two adapters provide it:

* :class:`InProcessApi` inside REAPER (a ReaScript), over the ``reaper_python`` module;
* :class:`ReapyApi` outside REAPER, over ``reapy.reascript_api`` (reapy's wire protocol).

Both keep REAPER's conventions (``shared/reference/reaper-python-binding.md`` §1): 0-based indices; a function
with a string buffer or a number pointer among its arguments returns a tuple (a list through reapy) of its
return value followed by all its arguments, **without** the return value when the C function is void
(``GetProjectPath`` → ``(path, size)``); ``bool`` comes back as 0/1; parameter values are normalised 0..1.
This module is copied next to the ReaScripts by ``install.py --reaper`` and must not import third-party code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from extension.coach_steps import CoachPlan, CoachStep, ParamChange
from extension.fx_names import resolve_fx_name
from models.errors import ReaTimbreError

BUFFER_SIZE = 4096
"""Size passed for string out-buffers."""

TIME_EPSILON_SECONDS = 1e-6
"""Points closer than this to a step's time are replaced when the step is written again."""

SQUARE_SHAPE = 1
"""Envelope point shape code for 'square' (hold the value until the next point)."""

CC_STATUS = 0xB0


class ReaperApi(Protocol):
    """Anything that can call a ReaScript function by its name (without ``RPR_``)."""

    def call(self, name: str, *args: Any) -> Any: ...


class InProcessApi:
    """The API inside REAPER: ``reaper_python``'s ``RPR_<name>`` functions."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def call(self, name: str, *args: Any) -> Any:
        function = getattr(self.module, "RPR_" + name, None)
        if function is None:
            raise ReaTimbreError(f"this REAPER has no API function {name} (update REAPER)")
        return function(*args)


class ReapyApi:
    """The API from outside REAPER through reapy (the module ``reapy.reascript_api``)."""

    def __init__(self, reascript_api: Any | None = None) -> None:
        if reascript_api is None:
            import reapy.reascript_api as reascript_api  # only outside REAPER
        self.module = reascript_api

    def call(self, name: str, *args: Any) -> Any:
        function = getattr(self.module, name, None)
        if function is None:
            raise ReaTimbreError(f"REAPER is not reachable through reapy, or it does not allow {name}")
        return function(*args)


def ret(result: Any) -> Any:
    """The return value of a non-void call, whether or not the binding returned it with its arguments.
    (A void function's tuple has no return value: read its out-arguments by position instead.)"""
    return result[0] if isinstance(result, (list, tuple)) else result


def is_null(pointer: Any) -> bool:
    """True for a NULL REAPER pointer (None, empty, or ``(Type*)0x0000…``)."""
    if not pointer:
        return True
    text = str(pointer)
    return text.endswith(")0x0000000000000000") or text.endswith(")0x00000000")


def current_project(api: ReaperApi) -> str:
    """The current project tab's pointer (``EnumProjects(-1, ...)``)."""
    return str(ret(api.call("EnumProjects", -1, "", BUFFER_SIZE)))


def is_valid(api: ReaperApi, project: str, pointer: str | None, ctype: str) -> bool:
    """Whether ``pointer`` (a ``ctype`` such as ``"MediaItem*"``) still exists in ``project``.

    Asks ``ValidatePtr2``; if that says no, a function taking the pointer's own type confirms it, because
    reapy reports that the stock binding's ``ValidatePtr2`` answers 0 for everything (its ``void*`` argument
    is validated as a ``"void*"``). The binding hands a function NULL for a deleted object, so the typed
    function's NULL answer is a reliable no.
    """
    if pointer is None or is_null(pointer):
        return False
    if ret(api.call("ValidatePtr2", project, pointer, ctype)):
        return True
    if ctype == "MediaItem*":
        return not is_null(ret(api.call("GetMediaItem_Track", pointer)))
    if ctype == "MediaItem_Take*":
        return not is_null(ret(api.call("GetMediaItemTake_Item", pointer)))
    if ctype == "MediaTrack*":
        return float(ret(api.call("GetMediaTrackInfo_Value", pointer, "IP_TRACKNUMBER"))) != 0.0
    return False


def still_there(api: ReaperApi, project: str, **pointers: str | None) -> str | None:
    """Why a job's result cannot be applied any more, or None: the user switched project tabs, or deleted one of
    ``pointers`` (keyword = what it is: ``item``, ``take``, ``track``) while the job ran."""
    if current_project(api) != project:
        return "the project tab was switched (or closed) while ReaTimbre worked; nothing was changed"
    kinds = {"item": "MediaItem*", "take": "MediaItem_Take*", "track": "MediaTrack*"}
    for what, pointer in pointers.items():
        if pointer is not None and not is_valid(api, project, pointer, kinds[what]):
            return f"the {what} was deleted while ReaTimbre worked; nothing was changed"
    return None


@contextlib.contextmanager
def undo_block(api: ReaperApi, description: str) -> Iterator[None]:
    """Group everything done inside into one undo point named ``description``.

    Blocks opened inside another (an action's block around several operations that each open one) are not
    passed to REAPER, so the outermost block alone makes the undo point, whatever REAPER does with nesting.
    """
    depth = getattr(api, _UNDO_NESTING, 0)
    setattr(api, _UNDO_NESTING, depth + 1)
    if depth == 0:
        api.call("Undo_BeginBlock2", 0)
    try:
        yield
    finally:
        setattr(api, _UNDO_NESTING, depth)
        if depth == 0:
            api.call("Undo_EndBlock2", 0, description, -1)
            api.call("UpdateArrange")


_UNDO_NESTING = "_reatimbre_undo_nesting"


# --------------------------------------------------------------------------- items and takes
@dataclass(frozen=True)
class SelectedItem:
    """A selected item with what a renderer needs to know about its active take."""

    item: str
    take: str | None
    track: str
    track_index: int
    """0-based."""
    source_path: str
    """The active take's media file ('' for MIDI or empty takes)."""
    take_name: str
    start_offset_seconds: float
    playrate: float
    position_seconds: float
    length_seconds: float


def track_index(api: ReaperApi, track: str) -> int:
    """0-based index of a track (REAPER's IP_TRACKNUMBER is 1-based)."""
    return int(ret(api.call("GetMediaTrackInfo_Value", track, "IP_TRACKNUMBER"))) - 1


def describe_item(api: ReaperApi, item: str) -> SelectedItem:
    """Read an item's position, length, track and active take."""
    take = ret(api.call("GetActiveTake", item))
    track = ret(api.call("GetMediaItem_Track", item))
    source_path, name, offset, rate = "", "", 0.0, 1.0
    if not is_null(take):
        source = ret(api.call("GetMediaItemTake_Source", take))
        if not is_null(source):
            source_path = str(api.call("GetMediaSourceFileName", source, "", BUFFER_SIZE)[1])  # void: (src, name, sz)
        name = str(ret(api.call("GetTakeName", take)) or "")
        offset = float(ret(api.call("GetMediaItemTakeInfo_Value", take, "D_STARTOFFS")))
        rate = float(ret(api.call("GetMediaItemTakeInfo_Value", take, "D_PLAYRATE")))
    return SelectedItem(
        item=item,
        take=None if is_null(take) else take,
        track=track,
        track_index=track_index(api, track),
        source_path=source_path,
        take_name=name,
        start_offset_seconds=offset,
        playrate=rate,
        position_seconds=float(ret(api.call("GetMediaItemInfo_Value", item, "D_POSITION"))),
        length_seconds=float(ret(api.call("GetMediaItemInfo_Value", item, "D_LENGTH"))),
    )


def selected_items(api: ReaperApi) -> list[SelectedItem]:
    """The selected items of the current project, in REAPER's selection order."""
    count = int(ret(api.call("CountSelectedMediaItems", 0)))
    return [describe_item(api, ret(api.call("GetSelectedMediaItem", 0, i))) for i in range(count)]


def rendered_take_name(effect: str, original: str) -> str:
    """Name of a rendered take: ``"<original> (neural: <effect>)"``."""
    return f"{original} (neural: {effect})" if original else f"neural: {effect}"


def add_rendered_take(api: ReaperApi, item: SelectedItem, media_path: str, effect: str) -> str:
    """Add ``media_path`` to the item as a new active take named after the effect (one undo point).

    The render covers the whole source file, so the new take keeps the old take's offset and playrate. That
    the take really plays the file is checked after ``SetMediaItemTake_Source``; if not, the empty take is
    removed and REAPER's own media insertion (``InsertMedia`` mode 3, add as a take) is tried instead.
    """
    with undo_block(api, f"ReaTimbre: render through {effect}"):
        take: str | None = None
        source = ret(api.call("PCM_Source_CreateFromFile", media_path))
        if not is_null(source):
            added: str = ret(api.call("AddTakeToMediaItem", item.item))
            if is_null(added):
                raise ReaTimbreError("REAPER refused to add a take to the item")
            api.call("SetMediaItemTake_Source", added, source)
            if take_plays(api, added, media_path):
                take = added
            else:
                _with_only_selected(api, item.item, lambda: _delete_take(api, added))
        if take is None:
            take = _with_only_selected(api, item.item, lambda: _insert_as_take(api, item.item, media_path))
        api.call("GetSetMediaItemTakeInfo_String", take, "P_NAME", rendered_take_name(effect, item.take_name), True)
        api.call("SetMediaItemTakeInfo_Value", take, "D_STARTOFFS", item.start_offset_seconds)
        api.call("SetMediaItemTakeInfo_Value", take, "D_PLAYRATE", item.playrate)
        api.call("SetActiveTake", take)
        api.call("UpdateItemInProject", item.item)
    return take


DELETE_ACTIVE_TAKE_COMMAND = 40129
"""REAPER's action "Take: Delete active take from items" (acts on the selected items)."""
INSERT_MEDIA_AS_TAKE = 3
"""``InsertMedia`` mode: add the file to the selected items as a new take."""


def take_plays(api: ReaperApi, take: str, media_path: str) -> bool:
    """Whether a take's source is the file ``media_path``."""
    source = ret(api.call("GetMediaItemTake_Source", take))
    if is_null(source):
        return False
    name = str(api.call("GetMediaSourceFileName", source, "", BUFFER_SIZE)[1])  # void: (src, name, sz)
    return bool(name) and _same_file(name, media_path)


def _same_file(a: str, b: str) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def _with_only_selected(api: ReaperApi, item: str, action: Callable[[], Any]) -> Any:
    """Run ``action`` with ``item`` the only selected item (for REAPER actions that act on the selection),
    then restore the selection."""
    count = int(ret(api.call("CountSelectedMediaItems", 0)))
    selected = [ret(api.call("GetSelectedMediaItem", 0, i)) for i in range(count)]
    for other in selected:
        api.call("SetMediaItemSelected", other, False)
    api.call("SetMediaItemSelected", item, True)
    try:
        return action()
    finally:
        api.call("SetMediaItemSelected", item, False)
        for other in selected:
            api.call("SetMediaItemSelected", other, True)


def _delete_take(api: ReaperApi, take: str) -> None:
    api.call("SetActiveTake", take)
    api.call("Main_OnCommand", DELETE_ACTIVE_TAKE_COMMAND, 0)


def _insert_as_take(api: ReaperApi, item: str, media_path: str) -> str:
    before = int(ret(api.call("CountTakes", item)))
    api.call("InsertMedia", media_path, INSERT_MEDIA_AS_TAKE)
    take = ret(api.call("GetActiveTake", item))
    if int(ret(api.call("CountTakes", item))) != before + 1 or is_null(take) or not take_plays(api, take, media_path):
        raise ReaTimbreError(f"REAPER cannot open the rendered file {media_path} as a take (the file is kept)")
    return take


# --------------------------------------------------------------------------- FX
@dataclass(frozen=True)
class ParamDescription:
    """One plug-in parameter: 0-based index, name, normalised value and REAPER's display text."""

    index: int
    name: str
    value: float
    formatted: str


@dataclass(frozen=True)
class FxDescription:
    """One plug-in on a track with its parameters."""

    index: int
    name: str
    params: tuple[ParamDescription, ...]


def fx_names(api: ReaperApi, track: str) -> list[str]:
    """Names of the plug-ins on a track's FX chain."""
    count = int(ret(api.call("TrackFX_GetCount", track)))
    return [str(api.call("TrackFX_GetFXName", track, i, "", BUFFER_SIZE)[3]) for i in range(count)]


def param_name(api: ReaperApi, track: str, fx: int, param: int) -> str:
    """A parameter's name as the plug-in reports it."""
    return str(api.call("TrackFX_GetParamName", track, fx, param, "", BUFFER_SIZE)[4])


def track_fx(api: ReaperApi, track: str) -> list[FxDescription]:
    """Every plug-in on a track with all its parameters."""
    out = []
    for fx, name in enumerate(fx_names(api, track)):
        params = []
        for p in range(int(ret(api.call("TrackFX_GetNumParams", track, fx)))):
            formatted = api.call("TrackFX_GetFormattedParamValue", track, fx, p, "", BUFFER_SIZE)[4]
            value = float(ret(api.call("TrackFX_GetParamNormalized", track, fx, p)))
            params.append(ParamDescription(p, param_name(api, track, fx, p), value, str(formatted)))
        out.append(FxDescription(fx, name, tuple(params)))
    return out


def resolve_change(api: ReaperApi, track: str, change: ParamChange, names: Sequence[str]) -> tuple[int, int]:
    """(fx index, parameter index) a change refers to on this track.

    The FX is found by index or name; the parameter by index, or by name when the plug-in's parameter at
    that index has a different name (so a profile with shifted indices still lands on the right knob).
    """
    if change.fx_index is not None:
        fx = change.fx_index
        if not 0 <= fx < len(names):
            raise ReaTimbreError(f"the track has no FX {fx} (it has {len(names)})")
    else:
        found = resolve_fx_name(change.fx_name or "", list(names), list(names))
        if found is None:
            raise ReaTimbreError(f"no single FX on the track matches {change.fx_name!r}")
        fx = found
    count = int(ret(api.call("TrackFX_GetNumParams", track, fx)))
    wanted = change.param_name.casefold()
    generic = wanted == f"parameter {change.param_index}"
    if change.param_index < count and (generic or param_name(api, track, fx, change.param_index).casefold() == wanted):
        return fx, change.param_index
    if not generic:
        for p in range(count):
            if param_name(api, track, fx, p).casefold() == wanted:
                return fx, p
    raise ReaTimbreError(f"{names[fx]} has no parameter {change.param_name!r} (index {change.param_index})")


def apply_step(api: ReaperApi, track: str, step: CoachStep, description: str) -> None:
    """Set the step's parameters on the track's plug-ins now (for auditioning; one undo point)."""
    names = fx_names(api, track)
    with undo_block(api, description):
        for change in step.changes:
            fx, p = resolve_change(api, track, change, names)
            api.call("TrackFX_SetParamNormalized", track, fx, p, change.value)


# --------------------------------------------------------------------------- positions
def bar_times(api: ReaperApi, start_seconds: float, count: int, bars_apart: float = 1.0) -> list[float]:
    """``count`` project times, ``bars_apart`` bars apart, starting at ``start_seconds`` (tempo-map aware)."""
    start_qn = float(ret(api.call("TimeMap2_timeToQN", 0, start_seconds)))
    signature = api.call("TimeMap_GetTimeSigAtTime", 0, start_seconds, 0, 0, 0.0)  # void: (proj, t, num, den, bpm)
    numerator, denominator = int(signature[2]), int(signature[3])
    qn_per_bar = numerator * 4.0 / denominator * bars_apart
    return [float(ret(api.call("TimeMap2_QNToTime", 0, start_qn + k * qn_per_bar))) for k in range(count)]


def step_times(api: ReaperApi, plan: CoachPlan, anchor: str, bars_apart: float = 1.0) -> list[float]:
    """Where each step goes: successive bars from the edit cursor (``"cursor"``) or from the first
    selected item's start (``"item"``)."""
    if anchor == "cursor":
        start = float(ret(api.call("GetCursorPosition")))
    elif anchor == "item":
        items = selected_items(api)
        if not items:
            raise ReaTimbreError("select an item: the steps are placed from its start")
        start = items[0].position_seconds
    else:
        raise ReaTimbreError(f"unknown placement {anchor!r}: use 'cursor' or 'item'")
    return bar_times(api, start, len(plan.steps), bars_apart)


def _check_times(plan: CoachPlan, times: Sequence[float]) -> None:
    if len(times) != len(plan.steps):
        raise ReaTimbreError(f"{len(plan.steps)} steps need {len(plan.steps)} positions, got {len(times)}")
    if not plan.steps:
        raise ReaTimbreError("the coach suggested no steps")


# --------------------------------------------------------------------------- automation
def write_automation(api: ReaperApi, track: str, plan: CoachPlan, times: Sequence[float]) -> int:
    """Write each step's parameter values as FX-parameter envelope points at ``times`` (one undo point).

    Points are square-shaped so each value holds until the next step. A parameter first changed by a
    later step gets a point with its current value at the first step's time, so it does not jump early.
    Points already at a step's time are replaced, so writing a plan twice gives the same envelopes.
    Returns the number of points written.
    """
    _check_times(plan, times)
    names = fx_names(api, track)
    envelopes: dict[tuple[int, int], str] = {}
    written = 0
    with undo_block(api, f"ReaTimbre: write {len(plan.steps)} coach steps as automation"):
        for number, step in enumerate(plan.steps):
            when = times[number]
            for change in step.changes:
                fx, p = resolve_change(api, track, change, names)
                key = (fx, p)
                if key not in envelopes:
                    env = ret(api.call("GetFXEnvelope", track, fx, p, True))
                    if is_null(env):
                        raise ReaTimbreError(f"REAPER could not create an envelope for {change.param_name}")
                    envelopes[key] = env
                    if number > 0:
                        current = float(ret(api.call("TrackFX_GetParamNormalized", track, fx, p)))
                        written += _put_point(api, track, fx, p, env, times[0], current)
                written += _put_point(api, track, fx, p, envelopes[key], when, change.value)
        for env in envelopes.values():
            api.call("Envelope_SortPoints", env)
    return written


def _put_point(api: ReaperApi, track: str, fx: int, p: int, env: str, when: float, normalised: float) -> int:
    limits = api.call("TrackFX_GetParam", track, fx, p, 0.0, 0.0)
    low, high = float(limits[4]), float(limits[5])
    value = low + normalised * (high - low) if high > low else normalised
    api.call("DeleteEnvelopePointRange", env, when - TIME_EPSILON_SECONDS, when + TIME_EPSILON_SECONDS)
    api.call("InsertEnvelopePoint", env, when, value, SQUARE_SHAPE, 0.0, False, True)
    return 1


# --------------------------------------------------------------------------- MIDI
def write_midi_cc(
    api: ReaperApi, track: str, plan: CoachPlan, times: Sequence[float], tail_bars: float = 1.0
) -> tuple[str, int]:
    """Write the steps' MIDI-learned parameters as CC events in a new MIDI item on ``track``.

    The item spans the steps plus ``tail_bars``; a CC first changed by a later step gets its current value
    at the first step. Returns (item, number of CC events). One undo point.
    """
    _check_times(plan, times)
    if not any(c.cc is not None for s in plan.steps for c in s.changes):
        raise ReaTimbreError("none of these steps has a MIDI-learned CC (the profile maps no CC)")
    names = fx_names(api, track)
    end = bar_times(api, times[-1], 2, tail_bars)[1]
    count = 0
    with undo_block(api, f"ReaTimbre: write {len(plan.steps)} coach steps as MIDI CC"):
        item = ret(api.call("CreateNewMIDIItemInProj", track, times[0], end, False))
        take = ret(api.call("GetActiveTake", item))
        if is_null(item) or is_null(take):
            raise ReaTimbreError("REAPER could not create a MIDI item")
        seen: set[tuple[int, int]] = set()
        for number, step in enumerate(plan.steps):
            when = times[number]
            for change in step.changes:
                if change.cc is None:
                    continue
                key = (change.channel, change.cc)
                if key not in seen and number > 0:
                    fx, p = resolve_change(api, track, change, names)
                    current = float(ret(api.call("TrackFX_GetParamNormalized", track, fx, p)))
                    count += _put_cc(api, take, times[0], change.channel, change.cc, round(current * 127))
                seen.add(key)
                count += _put_cc(api, take, when, change.channel, change.cc, change.cc_value)
        api.call("MIDI_Sort", take)
    return item, count


def _put_cc(api: ReaperApi, take: str, when: float, channel: int, cc: int, value: int) -> int:
    ppq = round(float(ret(api.call("MIDI_GetPPQPosFromProjTime", take, when))))
    api.call("MIDI_InsertCC", take, False, False, ppq, CC_STATUS, channel, cc, max(0, min(127, value)))
    return 1


# --------------------------------------------------------------------------- auditioning
def cumulative_step(plan: CoachPlan, upto: int) -> CoachStep:
    """The parameter state after steps 0..``upto`` (steps accumulate; a later value wins)."""
    if not 0 <= upto < len(plan.steps):
        raise ReaTimbreError(f"step {upto + 1} does not exist (the plan has {len(plan.steps)} steps)")
    merged: dict[tuple[object, int], ParamChange] = {}
    for step in plan.steps[: upto + 1]:
        for change in step.changes:
            key = (change.fx_index if change.fx_index is not None else change.fx_name, change.param_index)
            merged.pop(key, None)
            merged[key] = change
    return CoachStep(tuple(merged.values()), plan.steps[upto].effect)


def current_values(api: ReaperApi, track: str, plan: CoachPlan) -> CoachStep:
    """Every parameter the plan touches, at its value now (to return to the original sound later)."""
    names = fx_names(api, track)
    seen: dict[tuple[int, int], ParamChange] = {}
    for step in plan.steps:
        for change in step.changes:
            fx, p = resolve_change(api, track, change, names)
            if (fx, p) not in seen:
                value = float(ret(api.call("TrackFX_GetParamNormalized", track, fx, p)))
                seen[(fx, p)] = ParamChange(p, change.param_name, value, fx_index=fx)
    return CoachStep(tuple(seen.values()), "original")
