"""REAPER's OSC control surface, emulated: applies FX-parameter messages to an emulator's state.

Understands the ``Default.ReaperOSC`` pattern ``n/track/@/fx/@/fxparam/@/value`` (1-based numbers,
normalised float) and records everything it receives; other messages are ignored as REAPER ignores
addresses that its pattern file does not map.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from .emulator import ReaperEmulator

_FX_PARAM = re.compile(r"^/track/(\d+)/fx/(\d+)/fxparam/(\d+)/value$")


class OscListener:
    """Context manager: a UDP OSC server on loopback feeding an emulator."""

    def __init__(self, emulator: ReaperEmulator) -> None:
        self.emulator = emulator
        self.received: list[tuple[str, tuple[Any, ...]]] = []
        self.applied = threading.Event()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._handle)
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def _handle(self, address: str, *args: Any) -> None:
        self.received.append((address, args))
        match = _FX_PARAM.match(address)
        if match and len(args) == 1 and isinstance(args[0], float):
            track, fx, param = (int(g) for g in match.groups())
            self.emulator.set_param_from_osc(track, fx, param, args[0])
            self.applied.set()

    def __enter__(self) -> OscListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
