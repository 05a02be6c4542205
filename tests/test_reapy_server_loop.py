"""The hardened reapy server's defer loop, in a minimal REAPER host: ``RPR_defer``/``RPR_atexit`` from the
script's ``__main__`` (never ``reaper_python``), the loop re-armed whatever happens, and the caps on connections
and HOLD. (The action in the REAPER emulator, under hostile clients: tests/test_reapy_server_reaper.py.)"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reaper_emulator.hostile_clients import closed_by_server, connect

from extension import reapy_bridge
from extension.reapy_bridge import REAPY_INFO_FILE_NAME, HardenedReapyServer, ServerLimits
from extension.reapy_client import TokenReapyClient, find_server

TOKEN = "loop-test-token-0123456789abcdef"


@dataclass
class FakeReaperHost:
    """What REAPER gives a running ReaScript: a ``__main__`` holding ``RPR_defer``/``RPR_atexit`` (code strings,
    run later in that namespace), and a ``reaper_python`` with API functions only."""

    main: types.ModuleType
    reaper_python: types.ModuleType
    deferred: list[str] = field(default_factory=list)
    at_exit: list[str] = field(default_factory=list)
    ext_state: dict[tuple[str, str], str] = field(default_factory=dict)

    def tick(self) -> None:
        pending, self.deferred[:] = list(self.deferred), []
        for code in pending:
            exec(code, self.main.__dict__)  # noqa: S102 - as REAPER runs deferred code

    def quit(self) -> None:
        self.deferred.clear()
        for code in self.at_exit:
            exec(code, self.main.__dict__)  # noqa: S102
        self.at_exit.clear()


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeReaperHost]:
    main = types.ModuleType("__main__")
    reaper_python = types.ModuleType("reaper_python")
    fake = FakeReaperHost(main, reaper_python)
    main.RPR_defer = fake.deferred.append  # type: ignore[attr-defined]
    main.RPR_atexit = fake.at_exit.append  # type: ignore[attr-defined]
    reaper_python.RPR_SetExtState = lambda s, k, v, p: fake.ext_state.__setitem__((s, k), v)  # type: ignore[attr-defined]
    reaper_python.RPR_DeleteExtState = lambda s, k, p: fake.ext_state.pop((s, k), None)  # type: ignore[attr-defined]
    reaper_python.RPR_GetCursorPosition = lambda: 2.5  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setitem(sys.modules, "reaper_python", reaper_python)
    try:
        yield fake
    finally:
        fake.quit()
        reapy_bridge.stop_in_reaper()


def _serve_while(host: FakeReaperHost, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread while this thread plays REAPER's defer loop; return its result."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive():
        host.tick()
        time.sleep(0.001)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_defer_and_atexit_come_from_the_scripts_main(host: FakeReaperHost, tmp_path: Path) -> None:
    assert not hasattr(host.reaper_python, "RPR_defer")  # as in REAPER's generated binding
    server = reapy_bridge.start_in_reaper(TOKEN, tmp_path, port=0)
    assert host.deferred == ["import sys; sys.modules['extension.reapy_bridge'].serve_tick()"]
    assert host.ext_state == {}  # not advertised to reapy's own (tokenless) handshake
    assert find_server(tmp_path) == ("127.0.0.1", server.port)
    assert json.loads((tmp_path / REAPY_INFO_FILE_NAME).read_text())["pid"] == os.getpid()

    def call() -> float:
        with TokenReapyClient(*find_server(tmp_path), TOKEN) as client:
            return client.call("GetCursorPosition")

    assert _serve_while(host, call) == 2.5
    assert len(host.deferred) == 1  # still re-arming
    host.quit()  # REAPER ends the script: the atexit code runs in __main__
    assert not (tmp_path / REAPY_INFO_FILE_NAME).exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_without_reapers_main_functions_it_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    monkeypatch.setitem(sys.modules, "reaper_python", types.ModuleType("reaper_python"))
    with pytest.raises(Exception, match="RPR_defer is not in this script's __main__"):
        reapy_bridge.start_in_reaper(TOKEN, tmp_path, port=0)
    assert reapy_bridge._SERVERS == []


def test_the_loop_rearms_even_when_a_tick_fails(host: FakeReaperHost, tmp_path: Path, monkeypatch) -> None:
    server = reapy_bridge.start_in_reaper(TOKEN, tmp_path, port=0)

    def broken(self: HardenedReapyServer) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(HardenedReapyServer, "serve_once", broken)
    host.tick()
    assert len(host.deferred) == 1 and server.stats.errors == 1 and "boom" in server.stats.last_error
    monkeypatch.setattr(HardenedReapyServer, "serve_once", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        host.tick()
    assert len(host.deferred) == 1  # re-armed in a finally, even for what the loop does not catch


@pytest.fixture
def looping() -> Iterator[Callable[[ServerLimits], HardenedReapyServer]]:
    """Start a server with the given limits, served by a thread playing the defer loop (1 ms between ticks)."""
    stop = threading.Event()
    started: list[tuple[HardenedReapyServer, threading.Thread]] = []

    def start(limits: ServerLimits) -> HardenedReapyServer:
        server = HardenedReapyServer(0, {"GetCursorPosition": lambda: 2.5}, TOKEN, limits=limits)

        def loop() -> None:
            while not stop.is_set():
                server.serve_once()
                stop.wait(0.001)

        thread = threading.Thread(target=loop)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    stop.set()
    for server, thread in started:
        thread.join(timeout=10)
        server.close()


def test_connections_past_the_cap_and_silent_strangers_are_closed(looping) -> None:
    server = looping(ServerLimits(max_connections=3, anonymous_idle_seconds=0.3))
    strangers = [connect(server.port) for _ in range(2)]
    with TokenReapyClient("127.0.0.1", server.port, TOKEN) as client:
        assert client.call("GetCursorPosition") == 2.5
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        assert closed_by_server(extra, 2)  # a fourth connection: closed at once, no greeting
        assert all(closed_by_server(s, 2) for s in strangers)  # never sent a request with the token
        time.sleep(0.5)
        assert client.call("GetCursorPosition") == 2.5  # a client that showed the token stays
    assert server.stats.dropped["too many connections"] == 1
    assert server.stats.dropped["no request with the token"] == 2
    for conn in [*strangers, extra]:
        conn.close()


def test_hold_is_capped_in_requests_and_batches_calls(looping) -> None:
    server = looping(ServerLimits(hold_requests=50))
    with TokenReapyClient("127.0.0.1", server.port, TOKEN) as client:
        client.request("HOLD")
        assert server.holding
        started = time.perf_counter()
        for _ in range(49):
            client.call("GetCursorPosition")
        held_seconds = time.perf_counter() - started
        assert server.holding
        client.call("GetCursorPosition")
        assert not server.holding and server.stats.holds_cut == 1  # the 50th call ended the hold
        started = time.perf_counter()
        for _ in range(49):
            client.call("GetCursorPosition")
        unheld_seconds = time.perf_counter() - started
        assert client.request("RELEASE") is None  # a late RELEASE is harmless
    assert held_seconds < unheld_seconds  # held calls are answered within a tick, the others one per tick
