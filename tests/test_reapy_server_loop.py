"""The hardened reapy server in REAPER's defer loop: ``RPR_defer``/``RPR_atexit`` from the script's ``__main__``,
the loop re-armed whatever happens, and hostile clients costing each tick at most a few milliseconds."""

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

from extension import reapy_bridge
from extension.reapy_bridge import (
    MAX_REQUEST_BYTES,
    REAPY_INFO_FILE_NAME,
    WRONG_TOKEN_MESSAGE,
    HardenedReapyServer,
    ServerLimits,
    frame,
)
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
    assert host.ext_state == {("reapy", "server_port"): str(server.port)}
    assert find_server(tmp_path) == ("127.0.0.1", server.port)
    assert json.loads((tmp_path / REAPY_INFO_FILE_NAME).read_text())["pid"] == os.getpid()

    def call() -> float:
        with TokenReapyClient(*find_server(tmp_path), TOKEN) as client:
            return client.call("GetCursorPosition")

    assert _serve_while(host, call) == 2.5
    assert len(host.deferred) == 1  # still re-arming
    host.quit()  # REAPER ends the script: the atexit code runs in __main__
    assert host.ext_state == {} and not (tmp_path / REAPY_INFO_FILE_NAME).exists()
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


# --------------------------------------------------------------------------- hostile clients
def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    _recv_frame(conn)  # greeting
    return conn


def _recv_exact(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ConnectionResetError("closed")
        data += chunk
    return data


def _recv_frame(conn: socket.socket) -> bytes:
    return _recv_exact(conn, int.from_bytes(_recv_exact(conn, 8), "little"))


def _closed_by_server(conn: socket.socket, within_seconds: float) -> bool:
    conn.settimeout(within_seconds)
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _request(name: str, token: str | None = TOKEN) -> bytes:
    body: dict[str, Any] = {
        "function": {"__callable__": True, "module_name": "reapy.reascript_api", "name": name},
        "input": {"args": [], "kwargs": {}},
    }
    if token is not None:
        body["token"] = token
    return json.dumps(body).encode()


def _slow_header(port: int, limits: ServerLimits) -> str:
    with _connect(port) as conn:
        conn.sendall(b"\x64\x00\x00")  # 3 of the 8 header bytes, then silence
        return "dropped" if _closed_by_server(conn, limits.request_deadline_seconds + 2) else "kept"


def _header_then_silence(port: int, limits: ServerLimits) -> str:
    with _connect(port) as conn:
        conn.sendall((100).to_bytes(8, "little"))  # announces 100 bytes, sends none
        return "dropped" if _closed_by_server(conn, limits.request_deadline_seconds + 2) else "kept"


def _short_body(port: int, limits: ServerLimits) -> str:
    with _connect(port) as conn:
        conn.sendall((100).to_bytes(8, "little") + b"{" * 60)
        return "dropped" if _closed_by_server(conn, limits.request_deadline_seconds + 2) else "kept"


def _disconnect_mid_request(port: int, limits: ServerLimits) -> str:
    with _connect(port) as conn:
        conn.sendall((100).to_bytes(8, "little") + b'{"function"')
    return "left"


def _nested_json(port: int, limits: ServerLimits) -> str:
    depth = (MAX_REQUEST_BYTES - 100) // 2
    with _connect(port) as conn:
        conn.sendall(frame(b"[" * depth + b"]" * depth))
        return json.loads(_recv_frame(conn))["traceback"]


def _oversize(port: int, limits: ServerLimits) -> str:
    with _connect(port) as conn:
        conn.sendall((MAX_REQUEST_BYTES + 1).to_bytes(8, "little") + b"x" * 1000)
        return "dropped" if _closed_by_server(conn, 2) else "kept"


def _wrong_token(port: int, limits: ServerLimits) -> str:
    with _connect(port) as conn:
        conn.sendall(frame(_request("GetCursorPosition", token="guess-" + "0" * 26)))
        reply = json.loads(_recv_frame(conn))["traceback"]
        return reply if _closed_by_server(conn, 2) else "kept open"


def _hold_without_release(port: int, limits: ServerLimits) -> str:
    with _connect(port) as conn:
        conn.sendall(frame(json.dumps({"function": "HOLD", "input": None, "token": TOKEN}).encode()))
        assert json.loads(_recv_frame(conn)) == {"type": "result", "value": None}
        time.sleep(limits.hold_seconds + 1.0)  # silent, never RELEASE
        conn.sendall(frame(_request("GetCursorPosition")))  # still a client in good standing afterwards
        return str(json.loads(_recv_frame(conn))["value"])


ATTACKS: dict[str, tuple[Callable[[int, ServerLimits], str], str]] = {
    "slow header": (_slow_header, "dropped"),
    "header announcing 100 bytes, then silence": (_header_then_silence, "dropped"),
    "short body": (_short_body, "dropped"),
    "disconnect mid-request": (_disconnect_mid_request, "left"),
    "deeply nested JSON": (_nested_json, "refused: the request is nested too deeply"),
    "oversize request": (_oversize, "dropped"),
    "wrong token": (_wrong_token, WRONG_TOKEN_MESSAGE),
    "HOLD without RELEASE": (_hold_without_release, "2.5"),
}

LOOP_LIMITS = ServerLimits(
    request_deadline_seconds=0.5, hold_seconds=1.0, anonymous_idle_seconds=5.0, max_connections=len(ATTACKS) + 1
)


def test_hostile_clients_cost_each_tick_a_few_milliseconds(host: FakeReaperHost, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(reapy_bridge, "DEFAULT_LIMITS", LOOP_LIMITS)
    server = reapy_bridge.start_in_reaper(TOKEN, tmp_path, port=0)
    port = server.port
    outcomes: dict[str, str] = {}
    answered: list[float] = []

    def one(name: str, attacker: Callable[[int, ServerLimits], str]) -> None:
        try:
            outcomes[name] = attacker(port, LOOP_LIMITS)
        except Exception as exc:  # shown in the assertion below
            outcomes[name] = repr(exc)

    def attack() -> None:
        threads = [threading.Thread(target=one, args=(name, f)) for name, (f, _) in ATTACKS.items()]
        for thread in threads:
            thread.start()
        with TokenReapyClient("127.0.0.1", port, TOKEN) as client:  # a good client, all along
            while any(t.is_alive() for t in threads):
                answered.append(client.call("GetCursorPosition"))
                time.sleep(0.01)
        for thread in threads:
            thread.join()

    tick_seconds: list[float] = []
    thread = threading.Thread(target=attack)
    thread.start()
    while thread.is_alive():
        started = time.perf_counter()
        host.tick()
        tick_seconds.append(time.perf_counter() - started)
        time.sleep(0.002)
    assert outcomes == {name: expected for name, (_, expected) in ATTACKS.items()}
    assert answered and set(answered) == {2.5}
    dropped = server.stats.dropped
    assert dropped["request too slow"] == 3 and dropped["oversize request"] == 1 and dropped["wrong token"] == 1
    assert dropped["disconnected mid-request"] == 1 and server.stats.holds_cut == 1
    assert len(host.deferred) == 1  # the loop is still armed
    worst, median = max(tick_seconds), sorted(tick_seconds)[len(tick_seconds) // 2]
    print(f"\n{len(tick_seconds)} ticks, worst {worst * 1000:.2f} ms, median {median * 1000:.3f} ms")
    assert worst < 0.050
