"""Hostile clients of the hardened reapy server, each a function ``(port, token, limits) -> outcome``.

Each returns what a well-defended server makes of it. The emulator test and ``benchmarks/reapy_tick.py`` run
them in another process (:func:`run_in_subprocess`), so the defer ticks they time do not wait for the
attackers' GIL.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from extension.reapy_bridge import MAX_REQUEST_BYTES, WRONG_TOKEN_MESSAGE, ServerLimits, frame
from extension.reapy_client import TokenReapyClient

Attack = Callable[[int, str, ServerLimits], str]


def connect(port: int) -> socket.socket:
    """A connection whose greeting has been read."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    recv_frame(conn)
    return conn


def recv_exact(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ConnectionResetError("closed")
        data += chunk
    return data


def recv_frame(conn: socket.socket) -> bytes:
    return recv_exact(conn, int.from_bytes(recv_exact(conn, 8), "little"))


def closed_by_server(conn: socket.socket, within_seconds: float) -> bool:
    conn.settimeout(within_seconds)
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def api_request(name: str, token: str | None) -> bytes:
    """A reapy request for a ReaScript function, with ``token`` (none when None)."""
    body: dict[str, Any] = {
        "function": {"__callable__": True, "module_name": "reapy.reascript_api", "name": name},
        "input": {"args": [], "kwargs": {}},
    }
    if token is not None:
        body["token"] = token
    return json.dumps(body).encode()


def _dropped(conn: socket.socket, limits: ServerLimits) -> str:
    return "dropped" if closed_by_server(conn, limits.request_deadline_seconds + 2) else "kept"


def slow_header(port: int, token: str, limits: ServerLimits) -> str:
    with connect(port) as conn:
        conn.sendall(b"\x64\x00\x00")  # 3 of the 8 header bytes, then silence
        return _dropped(conn, limits)


def header_then_silence(port: int, token: str, limits: ServerLimits) -> str:
    with connect(port) as conn:
        conn.sendall((100).to_bytes(8, "little"))  # announces 100 bytes, sends none
        return _dropped(conn, limits)


def short_body(port: int, token: str, limits: ServerLimits) -> str:
    with connect(port) as conn:
        conn.sendall((100).to_bytes(8, "little") + b"{" * 60)
        return _dropped(conn, limits)


def disconnect_mid_request(port: int, token: str, limits: ServerLimits) -> str:
    with connect(port) as conn:
        conn.sendall((100).to_bytes(8, "little") + b'{"function"')
    return "left"


def nested_json(port: int, token: str, limits: ServerLimits) -> str:
    depth = (MAX_REQUEST_BYTES - 100) // 2
    with connect(port) as conn:
        conn.sendall(frame(b"[" * depth + b"]" * depth))
        return json.loads(recv_frame(conn))["traceback"]


def oversize(port: int, token: str, limits: ServerLimits) -> str:
    with connect(port) as conn:
        conn.sendall((MAX_REQUEST_BYTES + 1).to_bytes(8, "little") + b"x" * 1000)
        return "dropped" if closed_by_server(conn, 2) else "kept"


def wrong_token(port: int, token: str, limits: ServerLimits) -> str:
    with connect(port) as conn:
        conn.sendall(frame(api_request("GetCursorPosition", token="guess-" + "0" * 26)))
        reply = json.loads(recv_frame(conn))["traceback"]
        return reply if closed_by_server(conn, 2) else "kept open"


def hold_without_release(port: int, token: str, limits: ServerLimits) -> str:
    with connect(port) as conn:
        conn.sendall(frame(json.dumps({"function": "HOLD", "input": None, "token": token}).encode()))
        if json.loads(recv_frame(conn)) != {"type": "result", "value": None}:
            return "HOLD refused"
        time.sleep(limits.hold_seconds + 1.0)  # silent, never RELEASE
        conn.sendall(frame(api_request("GetCursorPosition", token)))  # still a client in good standing
        return str(json.loads(recv_frame(conn))["value"])


ATTACKS: dict[str, tuple[Attack, str]] = {
    "slow header": (slow_header, "dropped"),
    "header announcing 100 bytes, then silence": (header_then_silence, "dropped"),
    "short body": (short_body, "dropped"),
    "disconnect mid-request": (disconnect_mid_request, "left"),
    "deeply nested JSON": (nested_json, "refused: the request is nested too deeply"),
    "oversize request": (oversize, "dropped"),
    "wrong token": (wrong_token, WRONG_TOKEN_MESSAGE),
    "HOLD without RELEASE": (hold_without_release, "{cursor}"),
}
"""Each attack and the outcome expected from the server (``{cursor}``: the cursor position the API returns)."""


def expected_outcomes(cursor: float) -> dict[str, str]:
    return {name: expected.format(cursor=cursor) for name, (_, expected) in ATTACKS.items()}


def attack_all(port: int, token: str, limits: ServerLimits) -> tuple[dict[str, str], list[Any]]:
    """Run every attack at once beside a good client that calls ``GetCursorPosition`` every 10 ms throughout;
    return the attacks' outcomes (an exception's repr where one failed) and what the good client got."""
    outcomes: dict[str, str] = {}
    answered: list[Any] = []

    def one(name: str, attack: Attack) -> None:
        try:
            outcomes[name] = attack(port, token, limits)
        except Exception as exc:  # reported, not raised: the caller compares outcomes
            outcomes[name] = repr(exc)

    threads = [threading.Thread(target=one, args=(name, attack)) for name, (attack, _) in ATTACKS.items()]
    for thread in threads:
        thread.start()
    with TokenReapyClient("127.0.0.1", port, token) as client:
        while any(t.is_alive() for t in threads):
            answered.append(client.call("GetCursorPosition"))
            time.sleep(0.01)
    for thread in threads:
        thread.join()
    return outcomes, answered


def run_in_subprocess(port: int, token: str, limits: ServerLimits) -> tuple[dict[str, str], list[Any]]:
    """:func:`attack_all` in a fresh Python process; returns the same."""
    tests = Path(__file__).resolve().parent.parent
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(tests.parent), str(tests), os.environ.get("PYTHONPATH", "")])
    )
    command = [sys.executable, "-m", "reaper_emulator.hostile_clients", str(port), token]
    limits_json = json.dumps(dataclasses.asdict(limits))
    done = subprocess.run(command + [limits_json], capture_output=True, text=True, env=env, timeout=120, check=True)
    report = json.loads(done.stdout)
    return report["outcomes"], report["answered"]


if __name__ == "__main__":
    _port, _token, _limits = int(sys.argv[1]), sys.argv[2], ServerLimits(**json.loads(sys.argv[3]))
    _outcomes, _answered = attack_all(_port, _token, _limits)
    print(json.dumps({"outcomes": _outcomes, "answered": _answered}))
