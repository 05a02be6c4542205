"""Serve a :class:`ReaperEmulator` the way a REAPER running ReaTimbre's hardened reapy server is reached from outside.

:class:`ReapyService` runs the hardened reapy server (token required) with a background thread playing REAPER's
defer loop; :meth:`ReapyService.reapy_api` connects reapy to it with the token. :class:`WebInterface` is REAPER's
web interface as far as reapy's own (tokenless) handshake uses it, ``/_/GET/EXTSTATE/reapy/server_port``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from extension.reapy_bridge import HardenedReapyServer, ServerLimits, reaper_python_functions
from extension.reapy_client import reapy_connection

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


TEST_TOKEN = "reapy-service-test-token-0123456789"


class ReapyService:
    """Context manager running the web interface and a hardened reapy server for an emulator, with a thread
    standing in for REAPER's defer loop."""

    def __init__(
        self,
        emulator: ReaperEmulator,
        tick_seconds: float = 0.0005,
        token: str = TEST_TOKEN,
        limits: ServerLimits | None = None,
    ) -> None:
        self.emulator = emulator
        self.token = token
        reaper_python = emulator.module()
        self.server = HardenedReapyServer(0, reaper_python_functions(reaper_python), token, limits=limits)
        reaper_python.RPR_SetExtState("reapy", "server_port", str(self.server.port), False)
        self.web = WebInterface(emulator)
        self._tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._defer_loop, daemon=True)

    @property
    def web_port(self) -> int:
        return self.web.port

    @contextlib.contextmanager
    def reapy_api(self) -> Iterator[Any]:
        """reapy connected to this server with the token; yields an ``extension.reaper_ops.ReapyApi``."""
        with reapy_connection(self.token, address=self.server.address) as api:
            yield api

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
        self.server.close()


def _web_handler(emulator: ReaperEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = [unquote(p) for p in self.path.split("/") if p]
            if len(parts) == 5 and parts[:3] == ["_", "GET", "EXTSTATE"]:
                section, key = parts[3], parts[4]
                value = emulator.module().RPR_GetExtState(section, key)
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
