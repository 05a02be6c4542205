"""REAPER's ReaScript API over a project file: the offline backend for :mod:`extension.reaper_ops`.

``RppApi(project).call("GetSelectedMediaItem", 0, 0)`` behaves like the function in REAPER, acting on an
:class:`extension.rpp.RppProject`, so the operations written once against REAPER's API (add a rendered take,
write coach steps as automation or MIDI CC) also run on a project file with no REAPER, and the result is saved
as a new .RPP. The tests' REAPER emulator is built on it.

REAPER's conventions are kept: 0-based track/item/FX/parameter indices (IP_TRACKNUMBER is 1-based), opaque
pointer strings ``(MediaItem*)0x…`` with NULL as ``0x0000000000000000``, functions with buffer/pointer
arguments return ``[retval, *args]`` with out-values filled in, normalised parameter values, envelope points
kept sorted unless inserted with ``noSort``, 960 PPQ MIDI, nesting undo blocks.

A project file does not say which parameters a plug-in has or their values (they are inside the plug-in's
opaque state), so they are declared: :meth:`RppApi.define_params`, or :meth:`RppApi.declare_plan` for the
parameters a coach plan names. Without a declaration a plug-in shows the parameters its automation envelopes
name. A declared parameter's value starts at its envelope's first point, else at the value a plan first gives
it (the plug-in's stored value is unknown offline).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extension.coach_steps import CoachPlan
from extension.rpp import RppProject, delete_envelope_points, envelope_points, insert_envelope_point
from extension.rpp_tree import Block, Line, format_number
from models.errors import ReaTimbreError

NULL_SUFFIX = "0x0000000000000000"


@dataclass
class FxParam:
    """A plug-in parameter: normalised value plus how REAPER would display it."""

    name: str
    value: float = 0.0
    display_min: float = 0.0
    display_max: float = 1.0
    unit: str = ""

    def formatted(self) -> str:
        shown = self.display_min + self.value * (self.display_max - self.display_min)
        return f"{shown:.2f}{(' ' + self.unit) if self.unit else ''}"


@dataclass
class _Take:
    item: Block
    index: int


@dataclass
class _Source:
    path: str


class RppApi:
    """The ReaScript API subset ReaTimbre uses, acting on a project file (see the module docstring)."""

    def __init__(self, project: RppProject) -> None:
        self.project = project
        self.fx_params: dict[int, list[FxParam]] = {}
        self.undo_history: list[str] = []
        self.edits_outside_undo = 0
        self.arrange_updates = 0
        self._undo_depth = 0
        self._pointers: dict[str, Any] = {}
        self._pointer_of: dict[Any, str] = {}
        self._counter = itertools.count(0x10000)

    def call(self, name: str, *args: Any) -> Any:
        """Call a ReaScript function by name (without ``RPR_``), as :class:`extension.reaper_ops.ReaperApi`."""
        function = getattr(self, "RPR_" + name, None)
        if function is None:
            raise ReaTimbreError(f"the offline REAPER backend does not implement {name}")
        return function(*args)

    # ----------------------------------------------------------------- parameters
    def define_params(self, track: int, fx: int, params: list[FxParam]) -> None:
        """Declare a plug-in's parameters (names, values, display ranges)."""
        self.fx_params[id(self.project.fx_plugin_block(track, fx))] = params

    def declare_plan(self, track: int, plan: CoachPlan) -> None:
        """Make sure every parameter a coach plan names exists on the track's plug-ins (see module docstring)."""
        for step in plan.steps:
            for change in step.changes:
                fx = self.project.find_fx(track, name=change.fx_name, index=change.fx_index).index
                params = self.params(track, fx)
                while len(params) <= change.param_index:
                    params.append(FxParam(f"Param {len(params) + 1}", change.value))
                param = params[change.param_index]
                if param.name == f"Param {change.param_index + 1}":
                    param.name = change.param_name
                    param.value = change.value

    def params(self, track: int, fx: int) -> list[FxParam]:
        """A plug-in's parameters: as declared, else those its automation envelopes name (valued at their
        first point), so envelopes and parameters agree."""
        block = self.project.fx_plugin_block(track, fx)
        if id(block) not in self.fx_params:
            envs = self.project.fx_chain(track)[fx].envelope_params
            count = max((p for p, _ in envs), default=-1) + 1
            params = [FxParam(f"Param {p + 1}") for p in range(count)]
            for p, label in envs:
                params[p].name = label.split(" / ")[0] or params[p].name
                points = envelope_points(self.project.fx_envelope(track, fx, p))
                params[p].value = min(1.0, max(0.0, points[0].value)) if points else 0.0
            self.fx_params[id(block)] = params
        return self.fx_params[id(block)]

    def envelope_points(self, track: int, fx: int, param: int) -> list[tuple[float, float, int]]:
        env = self.project.fx_envelope(track, fx, param)
        return [] if env is None else [(p.time_seconds, p.value, p.shape) for p in envelope_points(env)]

    # ----------------------------------------------------------------- pointers
    def _ptr(self, kind: str, obj: Any) -> str:
        key = (kind, id(obj.item), obj.index) if isinstance(obj, _Take) else (kind, id(obj))
        if key not in self._pointer_of:
            pointer = f"({kind}*)0x{next(self._counter):016X}"
            self._pointer_of[key] = pointer
            self._pointers[pointer] = obj
        return self._pointer_of[key]

    def _get(self, pointer: str, kind: str) -> Any:
        if not isinstance(pointer, str) or not pointer.startswith(f"({kind}*)"):
            raise TypeError(f"expected a {kind}* pointer, got {pointer!r}")
        if pointer.endswith(NULL_SUFFIX) or pointer not in self._pointers:
            raise ValueError(f"invalid {kind}* pointer {pointer}")
        return self._pointers[pointer]

    @staticmethod
    def _null(kind: str) -> str:
        return f"({kind}*)0x{0:016X}"

    def _edit(self) -> None:
        if self._undo_depth == 0:
            self.edits_outside_undo += 1

    def _track_index(self, track: Block) -> int:
        return next(i for i, b in enumerate(self.project.track_blocks()) if b is track)

    def _item_track(self, item: Block) -> int:
        for index, block in enumerate(self.project.track_blocks()):
            if any(b is item for b in block.blocks("ITEM")):
                return index
        raise ValueError("item is not in the project")

    def _param(self, track: str, fx: int, param: int) -> FxParam:
        params = self.params(self._track_index(self._get(track, "MediaTrack")), int(fx))
        return params[int(param)]

    # ----------------------------------------------------------------- project, tracks, selection
    def RPR_GetProjectPath(self, buf: str, size: int) -> list[Any]:
        return [None, str(self.project.directory or ""), size]

    def RPR_CountTracks(self, proj: int) -> int:
        return len(self.project.track_blocks())

    def RPR_GetTrack(self, proj: int, index: int) -> str:
        blocks = self.project.track_blocks()
        return self._ptr("MediaTrack", blocks[index]) if 0 <= index < len(blocks) else self._null("MediaTrack")

    def _selected_tracks(self) -> list[Block]:
        return [t.block for t in self.project.tracks() if t.selected]

    def RPR_CountSelectedTracks(self, proj: int) -> int:
        return len(self._selected_tracks())

    def RPR_GetSelectedTrack(self, proj: int, index: int) -> str:
        sel = self._selected_tracks()
        return self._ptr("MediaTrack", sel[index]) if 0 <= index < len(sel) else self._null("MediaTrack")

    def RPR_SetTrackSelected(self, track: str, selected: bool) -> None:
        self.project.set_field(self._get(track, "MediaTrack"), ["SEL", "1" if selected else "0"])

    def RPR_GetMediaTrackInfo_Value(self, track: str, parm: str) -> float:
        if parm == "IP_TRACKNUMBER":
            return float(self._track_index(self._get(track, "MediaTrack")) + 1)
        raise ValueError(f"emulator does not know track parameter {parm}")

    def RPR_GetSetMediaTrackInfo_String(self, track: str, parm: str, value: str, set_new: bool) -> list[Any]:
        block = self._get(track, "MediaTrack")
        if parm != "P_NAME":
            return [False, track, parm, value, set_new]
        if set_new:
            self._edit()
            self.project.set_field(block, ["NAME", value])
            return [True, track, parm, value, set_new]
        return [True, track, parm, self.project.tracks()[self._track_index(block)].name, set_new]

    def RPR_GetCursorPosition(self) -> float:
        return self.project.cursor_seconds()

    def RPR_SetEditCurPos(self, seconds: float, move_view: bool, seek_play: bool) -> None:
        self.project.set_field(self.project.root, ["CURSOR", format_number(seconds)])

    # ----------------------------------------------------------------- time map
    def RPR_TimeMap2_timeToQN(self, proj: int, seconds: float) -> float:
        return self.project.time_to_qn(seconds)

    def RPR_TimeMap2_QNToTime(self, proj: int, qn: float) -> float:
        return self.project.qn_to_time(qn)

    def RPR_TimeMap_GetTimeSigAtTime(self, proj: int, seconds: float, num: int, den: int, bpm: float) -> list[Any]:
        tempo, numerator, denominator = self.project.tempo()
        return [None, proj, seconds, numerator, denominator, tempo]

    # ----------------------------------------------------------------- items and takes
    def _selected_item_blocks(self) -> list[Block]:
        return [i.block for i in self.project.selected_items()]

    def RPR_CountSelectedMediaItems(self, proj: int) -> int:
        return len(self._selected_item_blocks())

    def RPR_GetSelectedMediaItem(self, proj: int, index: int) -> str:
        sel = self._selected_item_blocks()
        return self._ptr("MediaItem", sel[index]) if 0 <= index < len(sel) else self._null("MediaItem")

    def RPR_SetMediaItemSelected(self, item: str, selected: bool) -> None:
        self.project.set_field(self._get(item, "MediaItem"), ["SEL", "1" if selected else "0"])

    def RPR_GetMediaItem_Track(self, item: str) -> str:
        block = self._get(item, "MediaItem")
        return self._ptr("MediaTrack", self.project.track_blocks()[self._item_track(block)])

    def RPR_GetMediaItemInfo_Value(self, item: str, parm: str) -> float:
        info = self.project.refresh(self._get(item, "MediaItem"))
        values = {"D_POSITION": info.position_seconds, "D_LENGTH": info.length_seconds, "B_UISEL": float(info.selected)}
        return float(values[parm])

    def RPR_CountTakes(self, item: str) -> int:
        return len(self.project.refresh(self._get(item, "MediaItem")).takes)

    def RPR_GetTake(self, item: str, index: int) -> str:
        block = self._get(item, "MediaItem")
        count = len(self.project.refresh(block).takes)
        return self._ptr("MediaItem_Take", _Take(block, index)) if 0 <= index < count else self._null("MediaItem_Take")

    def RPR_GetActiveTake(self, item: str) -> str:
        block = self._get(item, "MediaItem")
        active = self.project.refresh(block).active_take
        return (
            self._null("MediaItem_Take") if active is None else self._ptr("MediaItem_Take", _Take(block, active.index))
        )

    def _take(self, take: str) -> tuple[_Take, Any]:
        ref: _Take = self._get(take, "MediaItem_Take")
        return ref, self.project.refresh(ref.item).takes[ref.index]

    def RPR_GetTakeName(self, take: str) -> str:
        return self._take(take)[1].name

    def RPR_GetMediaItemTake_Item(self, take: str) -> str:
        return self._ptr("MediaItem", self._take(take)[0].item)

    def RPR_GetMediaItemTake_Source(self, take: str) -> str:
        ref, info = self._take(take)
        if info.source_type is None:
            return self._null("PCM_source")
        return self._ptr("PCM_source", _Source(str(info.path) if info.path else ""))

    def RPR_TakeIsMIDI(self, take: str) -> bool:
        return self._take(take)[1].source_type == "MIDI"

    def RPR_GetMediaSourceFileName(self, source: str, buf: str, size: int) -> list[Any]:
        return [None, source, self._get(source, "PCM_source").path, size]

    def RPR_PCM_Source_CreateFromFile(self, path: str) -> str:
        if not Path(path).is_file():
            return self._null("PCM_source")
        source = _Source(str(path))
        pointer = f"(PCM_source*)0x{next(self._counter):016X}"
        self._pointers[pointer] = source
        return pointer

    def RPR_GetMediaItemTakeInfo_Value(self, take: str, parm: str) -> float:
        info = self._take(take)[1]
        values = {"D_STARTOFFS": info.start_offset_seconds, "D_PLAYRATE": info.playrate}
        return float(values[parm])

    def RPR_SetMediaItemTakeInfo_Value(self, take: str, parm: str, value: float) -> bool:
        ref, _ = self._take(take)
        self._edit()
        if parm == "D_STARTOFFS":
            self.project.set_take_field(ref.item, ref.index, ["SOFFS", format_number(value)])
        elif parm == "D_PLAYRATE":
            self.project.set_take_field(
                ref.item, ref.index, ["PLAYRATE", format_number(value), "1", "0", "-1", "0", "0.0025"]
            )
        else:
            return False
        return True

    def RPR_GetSetMediaItemTakeInfo_String(self, take: str, parm: str, value: str, set_new: bool) -> list[Any]:
        ref, info = self._take(take)
        if parm != "P_NAME":
            return [False, take, parm, value, set_new]
        if set_new:
            self._edit()
            self.project.set_take_field(ref.item, ref.index, ["NAME", value])
            return [True, take, parm, value, set_new]
        return [True, take, parm, info.name, set_new]

    def RPR_AddTakeToMediaItem(self, item: str) -> str:
        block = self._get(item, "MediaItem")
        self._edit()
        index = self.project.append_empty_take(block)
        return self._ptr("MediaItem_Take", _Take(block, index))

    def RPR_SetMediaItemTake_Source(self, take: str, source: str) -> bool:
        ref, _ = self._take(take)
        self._edit()
        self.project.set_take_source(ref.item, ref.index, self._get(source, "PCM_source").path)
        return True

    def RPR_SetActiveTake(self, take: str) -> None:
        ref, _ = self._take(take)
        self._edit()
        self.project.set_active_take(ref.item, ref.index)

    def RPR_UpdateItemInProject(self, item: str) -> None:
        self._get(item, "MediaItem")

    def RPR_UpdateArrange(self) -> None:
        self.arrange_updates += 1

    # ----------------------------------------------------------------- FX
    def RPR_TrackFX_GetCount(self, track: str) -> int:
        return len(self.project.fx_chain(self._track_index(self._get(track, "MediaTrack"))))

    def RPR_TrackFX_GetFXName(self, track: str, fx: int, buf: str, size: int) -> list[Any]:
        chain = self.project.fx_chain(self._track_index(self._get(track, "MediaTrack")))
        if not 0 <= fx < len(chain):
            return [False, track, fx, "", size]
        return [True, track, fx, chain[fx].name, size]

    def RPR_TrackFX_GetNumParams(self, track: str, fx: int) -> int:
        return len(self.params(self._track_index(self._get(track, "MediaTrack")), int(fx)))

    def RPR_TrackFX_GetParamName(self, track: str, fx: int, param: int, buf: str, size: int) -> list[Any]:
        return [True, track, fx, param, self._param(track, fx, param).name, size]

    def RPR_TrackFX_GetParamNormalized(self, track: str, fx: int, param: int) -> float:
        return self._param(track, fx, param).value

    def RPR_TrackFX_SetParamNormalized(self, track: str, fx: int, param: int, value: float) -> bool:
        self._edit()
        self._param(track, fx, param).value = min(1.0, max(0.0, float(value)))
        return True

    def RPR_TrackFX_GetParam(self, track: str, fx: int, param: int, min_out: float, max_out: float) -> list[Any]:
        return [self._param(track, fx, param).value, track, fx, param, 0.0, 1.0]

    def RPR_TrackFX_GetFormattedParamValue(self, track: str, fx: int, param: int, buf: str, size: int) -> list[Any]:
        return [True, track, fx, param, self._param(track, fx, param).formatted(), size]

    # ----------------------------------------------------------------- envelopes
    def RPR_GetFXEnvelope(self, track: str, fx: int, param: int, create: bool) -> str:
        t_index = self._track_index(self._get(track, "MediaTrack"))
        p = self._param(track, fx, param)
        if create:
            self._edit()
        block = self.project.fx_envelope(t_index, int(fx), int(param), create=bool(create), param_name=p.name)
        if block is None:
            return self._null("TrackEnvelope")
        return self._ptr("TrackEnvelope", block)

    def _env(self, env: str) -> Block:
        return self._get(env, "TrackEnvelope")

    def RPR_CountEnvelopePoints(self, env: str) -> int:
        return len(envelope_points(self._env(env)))

    def RPR_GetEnvelopePoint(self, env: str, index: int, *out: Any) -> list[Any]:
        points = envelope_points(self._env(env))
        if not 0 <= index < len(points):
            return [False, env, index, 0.0, 0.0, 0, 0.0, False]
        p = points[index]
        return [True, env, index, p.time_seconds, p.value, p.shape, 0.0, False]

    def RPR_InsertEnvelopePoint(
        self, env: str, seconds: float, value: float, shape: int, tension: float, selected: bool, no_sort: bool
    ) -> list[Any]:
        block = self._env(env)
        self._edit()
        if no_sort:
            new = self.project.document.make_line(
                block, ["PT", format_number(seconds), format_number(value), str(int(shape))]
            )
            last = max(
                (i for i, c in enumerate(block.children) if isinstance(c, Line) and c.key == "PT"),
                default=len(block.children) - 1,
            )
            block.children.insert(last + 1, new)
        else:
            insert_envelope_point(self.project.document, block, seconds, value, int(shape))
        return [True, env, seconds, value, shape, tension, selected, no_sort]

    def RPR_Envelope_SortPoints(self, env: str) -> bool:
        block = self._env(env)
        points = [c for c in block.children if isinstance(c, Line) and c.key == "PT"]
        ordered = iter(sorted(points, key=lambda line: float(line.fields[1])))
        block.children = [next(ordered) if isinstance(c, Line) and c.key == "PT" else c for c in block.children]
        return True

    def RPR_DeleteEnvelopePointRange(self, env: str, start_seconds: float, end_seconds: float) -> bool:
        self._edit()
        return delete_envelope_points(self._env(env), start_seconds, end_seconds) > 0

    # ----------------------------------------------------------------- MIDI
    def RPR_CreateNewMIDIItemInProj(
        self, track: str, start_seconds: float, end_seconds: float, qn_in: Any = None
    ) -> str:
        self._edit()
        t_index = self._track_index(self._get(track, "MediaTrack"))
        if qn_in:
            start_seconds, end_seconds = self.project.qn_to_time(start_seconds), self.project.qn_to_time(end_seconds)
        info = self.project.add_midi_item(t_index, start_seconds, end_seconds - start_seconds)
        return self._ptr("MediaItem", info.block)

    def RPR_MIDI_GetPPQPosFromProjTime(self, take: str, seconds: float) -> float:
        ref, _ = self._take(take)
        return self.project.ppq_from_time(ref.item, seconds)

    def RPR_MIDI_InsertCC(
        self, take: str, selected: bool, muted: bool, ppq: float, chanmsg: int, chan: int, msg2: int, msg3: int
    ) -> bool:
        ref, _ = self._take(take)
        self._edit()
        self.project.insert_midi_event(
            ref.item, round(ppq), (int(chanmsg) & 0xF0) | (int(chan) & 0x0F), int(msg2), int(msg3)
        )
        return True

    def RPR_MIDI_Sort(self, take: str) -> None:
        self._take(take)  # events are kept in order on insertion

    def _ccs(self, take: str) -> list[Any]:
        ref, _ = self._take(take)
        events = self.project.midi_events(ref.item)
        return [e for e in events if e.status & 0xF0 == 0xB0 and e.data1 != 123]

    def RPR_MIDI_CountEvts(self, take: str, notes: int, ccs: int, sysex: int) -> list[Any]:
        ref, _ = self._take(take)
        events = self.project.midi_events(ref.item)
        note_count = sum(1 for e in events if e.status & 0xF0 == 0x90 and e.data2 > 0)
        return [len(events), take, note_count, len(self._ccs(take)), 0]

    def RPR_MIDI_GetCC(self, take: str, index: int, *out: Any) -> list[Any]:
        ccs = self._ccs(take)
        if not 0 <= index < len(ccs):
            return [False, take, index, False, False, 0.0, 0, 0, 0, 0]
        e = ccs[index]
        return [
            True,
            take,
            index,
            e.selected,
            e.muted,
            float(e.ppq),
            e.status & 0xF0,
            e.status & 0x0F,
            e.data1,
            e.data2,
        ]

    # ----------------------------------------------------------------- undo, state, UI
    def RPR_Undo_BeginBlock2(self, proj: int) -> None:
        self._undo_depth += 1

    def RPR_Undo_EndBlock2(self, proj: int, description: str, flags: int) -> None:
        if self._undo_depth == 0:
            raise RuntimeError("Undo_EndBlock2 without Undo_BeginBlock2")
        self._undo_depth -= 1
        if self._undo_depth == 0:
            self.undo_history.append(description)
