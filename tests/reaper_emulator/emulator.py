"""An emulator of the part of REAPER that ReaTimbre's actions use, for the tests.

The API itself (tracks, items, takes, FX, envelopes, MIDI, undo, with REAPER's conventions) is
:class:`extension.rpp_api.RppApi` acting on a real project file, so the emulator loads from and saves to RPP.
This class adds what a running REAPER has around it: ExtState, the console, message boxes and input dialogs
(answered from a queue the test fills in), ``defer``/``atexit`` (run when the test pumps
:meth:`ReaperEmulator.run_deferred`, in the namespace of the script that deferred them, as REAPER does),
running ReaScripts with ``reaper_python`` importable, and applying OSC parameter messages.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extension.rpp import RppProject
from extension.rpp_api import FxParam, RppApi
from extension.rpp_tree import format_number

PROJECT_TEMPLATE = '<REAPER_PROJECT 0.1 "7.0/emulator" 0\n  CURSOR 0\n  TEMPO {bpm} {num} {den}\n>\n'

EmuParam = FxParam
"""A plug-in parameter of the emulated REAPER."""


@dataclass
class DeferredCall:
    code: str
    scope: dict[str, Any] = field(repr=False)


class ReaperEmulator(RppApi):
    """REAPER, as far as ReaTimbre's actions can tell. See the module docstring."""

    def __init__(self, project: RppProject, resource_path: Path | None = None) -> None:
        super().__init__(project)
        self.resource_path = resource_path or Path.cwd()
        self.ext_state: dict[tuple[str, str], tuple[str, bool]] = {}
        self.console: list[str] = []
        self.message_boxes: list[tuple[str, str]] = []
        self.user_inputs: list[str | None] = []
        self.commands: list[int] = []
        self.deferred: list[DeferredCall] = []
        self.at_exit: list[DeferredCall] = []
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
        self.define_params(track, fx, params)
        return fx

    def add_item(
        self, track: int, media: str | Path, position_seconds: float, length_seconds: float, selected: bool = True
    ) -> str:
        info = self.project.add_item(track, position_seconds, length_seconds, media, Path(media).name)
        self.project.set_field(info.block, ["SEL", "1" if selected else "0"])
        return self._ptr("MediaItem", info.block)

    def set_param_from_osc(self, track_number: int, fx_number: int, param_number: int, value: float) -> None:
        """Apply ``/track/@/fx/@/fxparam/@/value`` (1-based numbers, normalised value) as REAPER's OSC does."""
        params = self.params(track_number - 1, fx_number - 1)
        params[param_number - 1].value = min(1.0, max(0.0, float(value)))

    def RPR_GetAppVersion(self) -> str:
        return "7.0/emulator"

    def RPR_GetResourcePath(self) -> str:
        return str(self.resource_path)

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
        scope: dict[str, Any] = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
        self._script_scope = scope
        with self._installed():
            exec(compile(Path(path).read_text(encoding="utf-8"), str(path), "exec"), scope)  # noqa: S102
        return scope

    def run_deferred(
        self, max_ticks: int = 10_000, tick: Callable[[], None] | None = None, stop: threading.Event | None = None
    ) -> int:
        """Run deferred code until none is pending, ``max_ticks`` ran or ``stop`` is set; return the ticks run.
        When nothing is left pending, the ``atexit`` code runs too (the script has ended)."""
        ticks = 0
        with self._installed():
            while self.deferred and ticks < max_ticks and not (stop is not None and stop.is_set()):
                pending, self.deferred = self.deferred, []
                for call in pending:
                    self._script_scope = call.scope
                    exec(call.code, call.scope)  # noqa: S102 - the emulated defer runs script code
                ticks += 1
                if tick is not None:
                    tick()
            if not self.deferred:
                self._run_at_exit()
        return ticks

    def quit(self) -> None:
        """REAPER exits: pending deferred code is dropped and ``atexit`` code runs."""
        self.deferred = []
        with self._installed():
            self._run_at_exit()

    def _run_at_exit(self) -> None:
        calls, self.at_exit = self.at_exit, []
        for call in calls:
            exec(call.code, call.scope)  # noqa: S102

    @contextlib.contextmanager
    def _installed(self) -> Iterator[None]:
        previous = sys.modules.get("reaper_python")
        sys.modules["reaper_python"] = self.module()
        try:
            yield
        finally:
            if previous is None:
                sys.modules.pop("reaper_python", None)
            else:
                sys.modules["reaper_python"] = previous

    def _caller_scope(self) -> dict[str, Any]:
        """Deferred code runs in the namespace of the script that is running, as in REAPER."""
        return self._script_scope if self._script_scope is not None else sys._getframe(2).f_globals

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
