"""An emulator of the part of REAPER's ReaScript API that ReaTimbre uses.

State is a real project file (:class:`extension.rpp.RppProject`), so it loads from and saves to RPP; what
RPP does not carry in readable form (plug-in parameter values, hidden in plug-in state) is kept beside it.
Semantics follow REAPER's API documentation: 0-based track/item/FX/parameter indices (1-based
IP_TRACKNUMBER), opaque pointer strings ``(MediaItem*)0x…`` with NULL as ``0x0000000000000000``,
functions with buffer/pointer arguments return ``[retval, *args]`` with the out-values filled in,
normalised parameter values, envelope points sorted unless inserted with ``noSort``, 960 PPQ MIDI, and
undo blocks that nest. Dialogs are answered from queues a test fills in; ``defer`` code runs when the test
pumps :meth:`ReaperEmulator.run_deferred`.
"""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extension.rpp import (
    RppProject,
    delete_envelope_points,
    envelope_points,
    insert_envelope_point,
)
from extension.rpp_tree import Block, Line, format_number

NULL_SUFFIX = "0x0000000000000000"
PROJECT_TEMPLATE = '<REAPER_PROJECT 0.1 "7.0/emulator" 0\n  CURSOR 0\n  TEMPO {bpm} {num} {den}\n>\n'


@dataclass
class EmuParam:
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


@dataclass
class DeferredCall:
    code: str
    scope: dict[str, Any] = field(repr=False)


class ReaperEmulator:
    """REAPER, as far as ReaTimbre's actions can tell. See the module docstring."""

    def __init__(self, project: RppProject, resource_path: Path | None = None) -> None:
        self.project = project
        self.resource_path = resource_path or Path.cwd()
        self.fx_params: dict[int, list[EmuParam]] = {}
        self.ext_state: dict[tuple[str, str], tuple[str, bool]] = {}
        self.undo_history: list[str] = []
        self.edits_outside_undo = 0
        self.console: list[str] = []
        self.message_boxes: list[tuple[str, str]] = []
        self.user_inputs: list[str | None] = []
        self.commands: list[int] = []
        self.deferred: list[DeferredCall] = []
        self.at_exit: list[DeferredCall] = []
        self.arrange_updates = 0
        self._undo_depth = 0
        self._pointers: dict[str, Any] = {}
        self._pointer_of: dict[Any, str] = {}
        self._counter = itertools.count(0x10000)
        self._script_scope: dict[str, Any] | None = None

    # ----------------------------------------------------------------- construction and files
    @classmethod
    def from_rpp(cls, path: str | Path, resource_path: Path | None = None) -> ReaperEmulator:
        return cls(RppProject.load(path), resource_path)

    @classmethod
    def new(
        cls,
        path: str | Path,
        bpm: float = 120,
        numerator: int = 4,
        denominator: int = 4,
        resource_path: Path | None = None,
    ) -> ReaperEmulator:
        """An empty project that will live at ``path`` (not written until :meth:`save`)."""
        text = PROJECT_TEMPLATE.format(bpm=format_number(bpm), num=numerator, den=denominator)
        return cls(RppProject.from_bytes(text.encode(), path), resource_path)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        return self.project.save(path, overwrite=overwrite)

    # ----------------------------------------------------------------- test-side helpers
    def add_track(self, name: str, selected: bool = False) -> int:
        index = self.project.add_track(name)
        if selected:
            self.project.set_field(self.project.track(index), ["SEL", "1"])
        return index

    def add_fx(self, track: int, name: str, params: list[EmuParam]) -> int:
        """Put a plug-in with the given parameters on a track; return its FX index."""
        fx = self.project.add_plugin(track, name)
        self.fx_params[id(self.project.fx_plugin_block(track, fx))] = params
        return fx

    def add_item(
        self, track: int, media: str | Path, position_seconds: float, length_seconds: float, selected: bool = True
    ) -> str:
        info = self.project.add_item(track, position_seconds, length_seconds, media, Path(media).name)
        self.project.set_field(info.block, ["SEL", "1" if selected else "0"])
        return self._ptr("MediaItem", info.block)

    def params(self, track: int, fx: int) -> list[EmuParam]:
        """The emulated parameters of a plug-in; for plug-ins loaded from a file they are made up from the
        automation envelopes the file has (their names), so envelopes and parameters agree."""
        block = self.project.fx_plugin_block(track, fx)
        if id(block) not in self.fx_params:
            envs = self.project.fx_chain(track)[fx].envelope_params
            count = max((p for p, _ in envs), default=-1) + 1
            names = {p: label.split(" / ")[0] for p, label in envs}
            self.fx_params[id(block)] = [EmuParam(names.get(p) or f"Param {p + 1}") for p in range(count)]
        return self.fx_params[id(block)]

    def envelope_points(self, track: int, fx: int, param: int) -> list[tuple[float, float, int]]:
        env = self.project.fx_envelope(track, fx, param)
        return [] if env is None else [(p.time_seconds, p.value, p.shape) for p in envelope_points(env)]

    def set_param_from_osc(self, track_number: int, fx_number: int, param_number: int, value: float) -> None:
        """Apply ``/track/@/fx/@/fxparam/@/value`` (1-based numbers, normalised value) as REAPER's OSC does."""
        params = self.params(track_number - 1, fx_number - 1)
        params[param_number - 1].value = min(1.0, max(0.0, float(value)))

    # ----------------------------------------------------------------- scripts and the defer loop
    def module(self) -> types.ModuleType:
        """A ``reaper_python`` module whose ``RPR_*`` functions act on this emulator."""
        module = types.ModuleType("reaper_python")
        for name in dir(self):
            if name.startswith("RPR_"):
                setattr(module, name, getattr(self, name))
        module.__all__ = [n for n in dir(module) if n.startswith("RPR_")]
        return module

    def run_script(self, path: str | Path) -> dict[str, Any]:
        """Run a ReaScript file as REAPER does (``__main__``, ``reaper_python`` importable)."""
        previous = sys.modules.get("reaper_python")
        sys.modules["reaper_python"] = self.module()
        scope: dict[str, Any] = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
        self._script_scope = scope
        try:
            exec(compile(Path(path).read_text(encoding="utf-8"), str(path), "exec"), scope)  # noqa: S102
        finally:
            if previous is None:
                sys.modules.pop("reaper_python", None)
            else:
                sys.modules["reaper_python"] = previous
        return scope

    def run_deferred(self, max_ticks: int = 10_000, tick: Callable[[], None] | None = None) -> int:
        """Run deferred code until none is pending (or ``max_ticks``); return the number of ticks run."""
        ticks = 0
        previous = sys.modules.get("reaper_python")
        sys.modules["reaper_python"] = self.module()
        try:
            while self.deferred and ticks < max_ticks:
                pending, self.deferred = self.deferred, []
                for call in pending:
                    self._script_scope = call.scope
                    exec(call.code, call.scope)  # noqa: S102 - the emulated defer runs script code
                ticks += 1
                if tick is not None:
                    tick()
            if not self.deferred:
                for call in self.at_exit:
                    exec(call.code, call.scope)  # noqa: S102
                self.at_exit = []
        finally:
            if previous is not None:
                sys.modules["reaper_python"] = previous
        return ticks

    def _caller_scope(self) -> dict[str, Any]:
        """Deferred code runs in the namespace of the script that is running, as in REAPER."""
        return self._script_scope if self._script_scope is not None else sys._getframe(2).f_globals

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

    def _param(self, track: str, fx: int, param: int) -> EmuParam:
        params = self.params(self._track_index(self._get(track, "MediaTrack")), int(fx))
        return params[int(param)]

    # ----------------------------------------------------------------- project, tracks, selection
    def RPR_GetAppVersion(self) -> str:
        return "7.0/emulator"

    def RPR_GetResourcePath(self) -> str:
        return str(self.resource_path)

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

    def RPR_GetExtState(self, section: str, key: str) -> str:
        return self.ext_state.get((section, key), ("", False))[0]

    def RPR_SetExtState(self, section: str, key: str, value: str, persist: bool) -> None:
        self.ext_state[(section, key)] = (str(value), bool(persist))

    def RPR_HasExtState(self, section: str, key: str) -> bool:
        return (section, key) in self.ext_state

    def RPR_DeleteExtState(self, section: str, key: str, persist: bool) -> None:
        self.ext_state.pop((section, key), None)

    def RPR_ShowConsoleMsg(self, message: str) -> None:
        self.console.append(str(message))

    def RPR_ShowMessageBox(self, message: str, title: str, kind: int) -> int:
        self.message_boxes.append((str(title), str(message)))
        return 1

    def RPR_GetUserInputs(self, title: str, count: int, captions: str, values: str, size: int) -> list[Any]:
        if not self.user_inputs:
            raise AssertionError(f"the script asked for input ({title}: {captions}) but the test gave none")
        answer = self.user_inputs.pop(0)
        if answer is None:
            return [False, title, count, captions, values, size]
        return [True, title, count, captions, answer, size]

    def RPR_defer(self, code: str) -> None:
        self.deferred.append(DeferredCall(code, self._caller_scope()))

    def RPR_runloop(self, code: str) -> None:
        self.deferred.append(DeferredCall(code, self._caller_scope()))

    def RPR_atexit(self, code: str) -> None:
        self.at_exit.append(DeferredCall(code, self._caller_scope()))

    def RPR_Main_OnCommand(self, command: int, flag: int) -> None:
        self.commands.append(int(command))
