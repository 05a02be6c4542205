"""Serve a :class:`ReaperEmulator` the way a REAPER with reapy enabled is reached from outside.

Two loopback endpoints, as in REAPER: the web interface reapy's client asks for
``/_/GET/EXTSTATE/reapy/server_port``, and the (hardened) reapy server on that port. A background thread
plays REAPER's defer loop, answering requests between ticks.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from extension.reapy_bridge import ALLOWED_FUNCTIONS, HardenedReapyServer

from .emulator import ReaperEmulator


class WebInterface:
    """REAPER's web interface, as far as reapy's client uses it: ``/_/GET/EXTSTATE/<section>/<key>``."""

    def __init__(self, emulator: ReaperEmulator) -> None:
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _web_handler(emulator))
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.http.server_address[1]

    def __enter__(self) -> WebInterface:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.http.shutdown()
        self.http.server_close()
        self._thread.join(timeout=5)


class ReapyService:
    """Context manager running the web interface and a hardened reapy server for an emulator, with a thread
    standing in for REAPER's defer loop."""

    def __init__(self, emulator: ReaperEmulator, tick_seconds: float = 0.0005) -> None:
        self.emulator = emulator
        functions = {n: getattr(emulator, "RPR_" + n) for n in ALLOWED_FUNCTIONS if hasattr(emulator, "RPR_" + n)}
        self.server = HardenedReapyServer(0, functions)
        emulator.RPR_SetExtState("reapy", "server_port", str(self.server.port), False)
        self.web = WebInterface(emulator)
        self._tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._defer_loop, daemon=True)

    @property
    def web_port(self) -> int:
        return self.web.port

    def _defer_loop(self) -> None:
        while not self._stop.is_set():
            self.server.serve_once()
            time.sleep(self._tick_seconds)

    def __enter__(self) -> ReapyService:
        self.web.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.web.__exit__()
        self._thread.join(timeout=5)
        for connection in list(self.server.connections.values()):
            connection.close()
        self.server.close()


def _web_handler(emulator: ReaperEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = [unquote(p) for p in self.path.split("/") if p]
            if len(parts) == 5 and parts[:3] == ["_", "GET", "EXTSTATE"]:
                section, key = parts[3], parts[4]
                value = emulator.RPR_GetExtState(section, key)
                body = f"EXTSTATE\t{section}\t{key}\t{value}\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            return

    return Handler
