"""An emulator of the part of REAPER that ReaTimbre's actions use, for the tests.

The C functions (tracks, items, takes, FX, envelopes, MIDI, undo) are :class:`reaper_emulator.rpp_api.RppApi`'s,
acting on real project files, so the emulator loads from and saves to RPP; their Python side is generated
from the C signatures by :mod:`reaper_emulator.reaper_binding`, exactly as REAPER's ``reaper_python`` behaves
(tuples, no leading value for void functions, ``int`` 0/1 for ``bool``, stale or mistyped pointers passed
as NULL). This class adds what a running REAPER has around them: project tabs, ExtState, the console,
message boxes and input dialogs (answered from a queue the test fills in), a few actions for
``Main_OnCommand``, and running ReaScripts the way REAPER does: the script is ``__main__``, ``reaper_python``
is importable, ``RPR_defer``/``RPR_atexit``/``RPR_runloop`` exist only in the script's namespace (code
strings, run in that namespace when the test pumps :meth:`ReaperEmulator.run_deferred`), ``sys.path[0]`` is
the script's folder and ``__file__`` is defined only on request.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from extension.rpp import RppProject, envelope_points
from extension.rpp_tree import format_number
from reaper_emulator.reaper_binding import Ref
from reaper_emulator.rpp_api import FxParam, RppApi, Take

PROJECT_TEMPLATE = '<REAPER_PROJECT 0.1 "7.0/emulator" 0\n  CURSOR 0\n  TEMPO {bpm} {num} {den}\n>\n'

EmuParam = FxParam
"""A plug-in parameter of the emulated REAPER."""

NEW_PROJECT_TAB = 40859
CLOSE_PROJECT_TAB = 40860
DELETE_ACTIVE_TAKE = 40129
INSERT_NEW_TRACK = 40001
"""Main_OnCommand ids the emulator carries out (REAPER's action list: "New project tab", "Close current
project tab", "Take: Delete active take from items", "Track: Insert new track")."""


STOCK_PLUGINS = {
    "VST: ReaEQ (Cockos)": [
        FxParam("Freq-Low Shelf", 0.1, 20, 24000, "Hz"),
        FxParam("Gain-Low Shelf", 0.5, -24, 24, "dB"),
        FxParam("Q-Low Shelf", 0.2),
    ]
}
"""Plug-ins every REAPER has (``TrackFX_AddByName`` can add them); tests install others with
:meth:`ReaperEmulator.install_plugin`."""


@dataclass
class DeferredCall:
    code: str
    main: types.ModuleType = field(repr=False)
    """The script's ``__main__``: the code runs in its namespace."""


class ReaperEmulator(RppApi):
    """REAPER, as far as ReaTimbre's actions can tell. See the module docstring."""

    def __init__(self, project: RppProject, resource_path: Path | None = None) -> None:
        self.tabs: list[RppProject] = [project]
        self.current_tab = 0
        super().__init__(project)
        self.resource_path = resource_path or Path.cwd()
        self.ext_state: dict[tuple[str, str], tuple[str, bool]] = {}
        self.console: list[str] = []
        self.message_boxes: list[tuple[str, str]] = []
        self.user_inputs: list[str | None] = []
        self.commands: list[int] = []
        self.deferred: list[DeferredCall] = []
        self.at_exit: list[DeferredCall] = []
        self.tick_seconds: list[float] = []
        """How long each defer tick ran (REAPER's UI thread is busy for that long)."""
        self.failing: set[str] = set()
        """C functions that report failure without doing anything (to test the callers' fallbacks)."""
        self.automation_read = True
        """Tracks read their envelopes (REAPER's default Trim/Read mode)."""
        self.validate_ptr2_works = True
        """False: ``ValidatePtr2`` always answers 0, as reapy says the stock binding's does."""
        self.installed_plugins.update(STOCK_PLUGINS)

    @property
    def project(self) -> RppProject:  # type: ignore[override]
        return self.tabs[self.current_tab]

    @project.setter
    def project(self, value: RppProject) -> None:
        self.tabs[self.current_tab] = value

    def _projects(self) -> list[RppProject]:
        return list(self.tabs)

    # ----------------------------------------------------------------- construction and files
    @classmethod
    def from_rpp(cls, path: str | Path, resource_path: Path | None = None) -> ReaperEmulator:
        return cls(RppProject.load(path), resource_path)

    @staticmethod
    def empty_project(
        path: str | Path | None, bpm: float = 120, numerator: int = 4, denominator: int = 4
    ) -> RppProject:
        text = PROJECT_TEMPLATE.format(bpm=format_number(bpm), num=numerator, den=denominator)
        return RppProject.from_bytes(text.encode(), path)

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
        return cls(cls.empty_project(path, bpm, numerator, denominator), resource_path)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        return self.project.save(path, overwrite=overwrite)

    # ----------------------------------------------------------------- test-side helpers (what a user does)
    def add_track(self, name: str, selected: bool = False) -> int:
        index = self.project.add_track(name)
        if selected:
            self.project.set_field(self.project.track(index), ["SEL", "1"])
        return index

    def add_fx(self, track: int, name: str, params: list[EmuParam]) -> int:
        """Put a plug-in with the given parameters on a track; return its FX index."""
        fx = self.project.add_plugin(track, name)
        self.define_params(track, fx, params)
        return fx

    def install_plugin(self, name: str, params: list[EmuParam]) -> None:
        """Make a plug-in available to ``TrackFX_AddByName`` under its FX chain name (``VST3i: Vital (Vital
        Audio)``), with these parameters (each instance gets its own copy)."""
        self.installed_plugins[name] = list(params)

    def add_item(
        self, track: int, media: str | Path, position_seconds: float, length_seconds: float, selected: bool = True
    ) -> str:
        info = self.project.add_item(track, position_seconds, length_seconds, media, Path(media).name)
        self.project.set_field(info.block, ["SEL", "1" if selected else "0"])
        return self.pointers.pointer("MediaItem*", info.block)

    def delete_track(self, index: int) -> None:
        """The user removes a track (its items, takes and envelopes go with it)."""
        track = self.project.track(index)
        root = self.project.root
        root.children = [c for c in root.children if c is not track]

    def delete_item(self, item: str) -> None:
        """The user deletes an item."""
        ok = self.RPR_DeleteTrackMediaItem(self.RPR_GetMediaItem_Track(item), item)
        if not ok:
            raise AssertionError(f"no item {item} to delete")

    def open_tab(self, project: RppProject | None = None) -> int:
        """The user opens a project in a new tab (and it becomes the current one); return its tab index."""
        self.tabs.append(project or self.empty_project(None))
        self.current_tab = len(self.tabs) - 1
        return self.current_tab

    def switch_tab(self, index: int) -> None:
        self.current_tab = index

    def set_param_from_osc(self, track_number: int, fx_number: int, param_number: int, value: float) -> None:
        """Apply ``/track/@/fx/@/fxparam/@/value`` (1-based numbers, normalised value) as REAPER's OSC does."""
        params = self.params(track_number - 1, fx_number - 1)
        params[param_number - 1].value = min(1.0, max(0.0, float(value)))

    # ----------------------------------------------------------------- C functions of a running REAPER
    def c_GetAppVersion(self) -> str:
        return "7.0/emulator"

    def c_GetResourcePath(self) -> str:
        return str(self.resource_path)

    def c_GetExePath(self) -> str:
        return str(Path(sys.executable).parent)

    def c_GetPlayState(self) -> int:
        return 0

    def c_NamedCommandLookup(self, name: str) -> int:
        return 0

    def c_ValidatePtr2(self, proj: RppProject | None, pointer: Any, ctypename: str) -> bool:
        return self.validate_ptr2_works and super().c_ValidatePtr2(proj, pointer, ctypename)

    def c_SetMediaItemTake_Source(self, take: Take | None, source: Any) -> bool:
        if "SetMediaItemTake_Source" in self.failing:
            return False
        return super().c_SetMediaItemTake_Source(take, source)

    def c_PCM_Source_CreateFromFile(self, path: str) -> Any:
        if "PCM_Source_CreateFromFile" in self.failing:
            return None
        return super().c_PCM_Source_CreateFromFile(path)

    def c_SetEditCurPos(self, seconds: float, move_view: bool, seek_play: bool) -> None:
        """Moving the edit cursor (while stopped) makes REAPER apply the FX envelopes at the new position to
        their parameters, as tracks in the default Trim/Read automation mode do."""
        super().c_SetEditCurPos(seconds, move_view, seek_play)
        if self.automation_read:
            self.read_automation(seconds)

    def read_automation(self, seconds: float) -> None:
        """Set every enveloped FX parameter to its envelope's value at ``seconds`` (points hold until the next;
        before the first point, the first point's value)."""
        for t_index, _ in enumerate(self.project.track_blocks()):
            for fx in self.project.fx_chain(t_index):
                for p, _label in fx.envelope_params:
                    points = envelope_points(self.project.fx_envelope(t_index, fx.index, p))
                    if not points:
                        continue
                    before = [pt for pt in sorted(points, key=lambda pt: pt.time_seconds) if pt.time_seconds <= seconds]
                    value = (before[-1] if before else points[0]).value
                    params = self.params(t_index, fx.index)
                    if p < len(params):
                        params[p].value = min(1.0, max(0.0, value))

    def c_InsertMedia(self, file: str, mode: int) -> int:
        """Modes 0 (on the selected track at the edit cursor) and 1 (on a new track) insert a new item, the only
        one selected; mode 3 adds a take to the selected items."""
        if mode & 0xFF not in (0, 1) or not Path(file).is_file():
            return super().c_InsertMedia(file, mode)
        selected = self._selected_tracks(None)
        if mode & 0xFF == 1 or not selected:
            track = self.add_track(Path(file).stem, selected=False)
        else:
            track = self._track_index(selected[0])
        self._edit()
        for item in self.project.items():
            self.project.set_field(item.block, ["SEL", "0"])
        self.add_item(track, file, self.project.cursor_seconds(), sf.info(file).duration, selected=True)
        return 1

    def c_GetExtState(self, section: str, key: str) -> str:
        return self.ext_state.get((section, key), ("", False))[0]

    def c_SetExtState(self, section: str, key: str, value: str, persist: bool) -> None:
        self.ext_state[(section, key)] = (value, persist)

    def c_HasExtState(self, section: str, key: str) -> bool:
        return (section, key) in self.ext_state

    def c_DeleteExtState(self, section: str, key: str, persist: bool) -> None:
        self.ext_state.pop((section, key), None)

    def c_ShowConsoleMsg(self, message: str) -> None:
        self.console.append(message)

    def c_ShowMessageBox(self, message: str, title: str, kind: int) -> int:
        self.message_boxes.append((title, message))
        return 1

    def c_GetUserInputs(self, title: str, count: int, captions: str, values: Ref, size: int) -> bool:
        if not self.user_inputs:
            raise AssertionError(f"the script asked for input ({title}: {captions}) but the test gave none")
        answer = self.user_inputs.pop(0)
        if answer is None:
            return False
        values.value = answer
        return True

    def c_Main_OnCommand(self, command: int, flag: int) -> None:
        self.commands.append(command)
        if command == NEW_PROJECT_TAB:
            self.open_tab()
        elif command == CLOSE_PROJECT_TAB:
            del self.tabs[self.current_tab]
            if not self.tabs:
                self.tabs.append(self.empty_project(None))
            self.current_tab = max(0, self.current_tab - 1)
        elif command == INSERT_NEW_TRACK:
            self._edit()
            for t in self.project.tracks():
                self.project.set_field(t.block, ["SEL", "0"])
            self.add_track("", selected=True)
        elif command == DELETE_ACTIVE_TAKE:
            self._edit()
            for block in self._selected_item_blocks(None):
                active = self.project.refresh(block).active_take
                if active is not None:
                    self.delete_take(block, active.index)

    # ----------------------------------------------------------------- scripts and the defer loop
    def module(self) -> types.ModuleType:
        """A ``reaper_python`` module: the generated ``RPR_*`` functions and nothing else."""
        module = types.ModuleType("reaper_python")
        for name in self.binding.names():
            setattr(module, "RPR_" + name, self.rpr(name))
        module.__all__ = [n for n in dir(module) if n.startswith("RPR_")]
        return module

    def run_script(self, path: str | Path, define_file: bool = False) -> dict[str, Any]:
        """Run a ReaScript file as REAPER does: as ``__main__`` with the defer functions in its namespace,
        ``reaper_python`` importable and ``sys.path[0]`` its folder; ``__file__`` only with ``define_file``."""
        path = Path(path)
        main = types.ModuleType("__main__")
        scope = main.__dict__
        scope["__builtins__"] = __builtins__
        if define_file:
            scope["__file__"] = str(path)
        scope["RPR_defer"] = self._defer_into(main, "deferred")
        scope["RPR_runloop"] = self._defer_into(main, "deferred")
        scope["RPR_atexit"] = self._defer_into(main, "at_exit")
        sys.path.insert(0, str(path.parent))
        try:
            with self._installed(main):
                exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), scope)  # noqa: S102
        finally:
            sys.path.remove(str(path.parent))
        return scope

    def _defer_into(self, main: types.ModuleType, queue: str) -> Callable[[str], None]:
        """``RPR_defer``-like function queueing code for ``main`` on the emulator's ``queue`` list (looked up
        at each call: the defer loop swaps the list every tick)."""

        def defer(code: str) -> None:
            if not isinstance(code, str):
                raise TypeError("REAPER's RPR_defer/RPR_atexit take a string of Python code")
            getattr(self, queue).append(DeferredCall(code, main))

        return defer

    def run_deferred(
        self, max_ticks: int = 10_000, tick: Callable[[], None] | None = None, stop: threading.Event | None = None
    ) -> int:
        """Run deferred code until none is pending, ``max_ticks`` ran or ``stop`` is set; return the ticks run.
        When nothing is left pending, the ``atexit`` code runs too (the script has ended)."""
        ticks = 0
        while self.deferred and ticks < max_ticks and not (stop is not None and stop.is_set()):
            pending, self.deferred = self.deferred, []
            started = time.perf_counter()
            for call in pending:
                self._exec(call)
            self.tick_seconds.append(time.perf_counter() - started)
            ticks += 1
            if tick is not None:
                tick()
        if not self.deferred:
            self._run_at_exit()
        return ticks

    def quit(self) -> None:
        """REAPER exits: pending deferred code is dropped and ``atexit`` code runs."""
        self.deferred = []
        self._run_at_exit()

    def _run_at_exit(self) -> None:
        calls, self.at_exit = self.at_exit, []
        for call in calls:
            self._exec(call)

    def _exec(self, call: DeferredCall) -> None:
        with self._installed(call.main):
            exec(call.code, call.main.__dict__)  # noqa: S102 - the emulated defer runs script code

    @contextlib.contextmanager
    def _installed(self, main: types.ModuleType) -> Iterator[None]:
        saved = {name: sys.modules.get(name) for name in ("reaper_python", "__main__")}
        sys.modules["reaper_python"] = self.module()
        sys.modules["__main__"] = main
        try:
            yield
        finally:
            for name, previous in saved.items():
                if previous is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = previous
