"""The hardened reapy server from outside: the real reapy library through ReaTimbre's token client, the token
on every call, the allow-list, loopback only, and the client's refusal to send its token to an unknown port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from reaper_emulator import EmuParam, ReaperEmulator
from reaper_emulator.reapy_service import ReapyService

from extension import reaper_ops as ops
from extension.coach_steps import CoachPlan
from extension.reapy_bridge import (
    MAX_REQUEST_BYTES,
    REAPY_INFO_FILE_NAME,
    WRONG_TOKEN_MESSAGE,
    HardenedReapyServer,
    frame,
)
from extension.reapy_client import TokenReapyClient, find_server
from models.errors import ReaTimbreError
from models.processes import pid_alive

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # reapy warns at import when no REAPER is running
    import reapy
    import reapy.config
    from reapy.errors import DistError
    from reapy.tools.network import machines


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(4410, dtype=np.float32), 44100)
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ReaperEmulator, ReapyService]]:
    emu = ReaperEmulator.new(tmp_path / "song.rpp", bpm=90)
    track = emu.add_track("synth", selected=True)
    emu.add_fx(track, "VSTi: Vital (Vital Audio)", [EmuParam("Volume", 0.5), EmuParam("Filter Cutoff", 0.2)])
    emu.add_item(track, _wav(tmp_path / "a.wav"), 1.0, 0.1)
    with ReapyService(emu) as service:
        yield emu, service


def test_operations_through_the_real_reapy_client(served, tmp_path: Path) -> None:
    emu, service = served
    with service.reapy_api() as reapy_api:
        (item,) = ops.selected_items(reapy_api)
        assert item.position_seconds == 1.0 and item.source_path == str(tmp_path / "a.wav")
        rendered = _wav(tmp_path / "renders" / "a-overdrive.wav")
        ops.add_rendered_take(reapy_api, item, str(rendered), "overdrive")
        assert emu.undo_history == ["ReaTimbre: render through overdrive"]

        track = ops.ret(reapy_api.call("GetSelectedTrack", 0, 0))
        (fx,) = ops.track_fx(reapy_api, track)
        assert [p.name for p in fx.params] == ["Volume", "Filter Cutoff"]
        plan = CoachPlan.from_coach_json(
            {
                "steps": [
                    {"changes": [{"fx_name": "Vital", "param_index": 1, "param_name": "Filter Cutoff", "value": 0.9}]},
                    {"changes": [{"fx_name": "Vital", "param_index": 1, "param_name": "Filter Cutoff", "value": 0.3}]},
                ]
            }
        )
        times = ops.step_times(reapy_api, plan, "item")
        assert times == pytest.approx([1.0, 1.0 + 4 * 60 / 90])
        with reapy.inside_reaper():  # reapy's HOLD/RELEASE batching goes through the hardened server too
            ops.write_automation(reapy_api, track, plan, times)
            assert service.server.holding
        assert not service.server.holding
    assert emu.envelope_points(0, 0, 1) == [(1.0, 0.9, 1), (pytest.approx(times[1]), 0.3, 1)]


def test_reapys_own_client_has_no_token_and_is_refused(served) -> None:
    _, service = served
    from reaper_emulator.reapy_service import WebInterface

    old_port = reapy.config.WEB_INTERFACE_PORT
    try:
        with WebInterface(service.emulator) as web:
            reapy.config.WEB_INTERFACE_PORT = web.port
            with pytest.raises(DistError, match="token is missing or wrong"):
                reapy.reconnect()  # web interface -> port -> the first call (_get_api_names) is refused
    finally:
        client = machines.CLIENTS.pop("localhost", None)
        if client is not None:
            client._socket.close()
        machines.CLIENT = None
        reapy.config.WEB_INTERFACE_PORT = old_port
    assert service.server.stats.refused_tokens == 1


def _recv_exact(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _recv_frame(conn: socket.socket) -> bytes:
    return _recv_exact(conn, int.from_bytes(_recv_exact(conn, 8), "little"))


def _call(name: str, token: object, *args: object) -> dict:
    request: dict = {
        "function": {"__callable__": True, "module_name": "reapy.reascript_api", "name": name},
        "input": {"args": list(args), "kwargs": {}},
    }
    if token is not None:
        request["token"] = token
    return request


def _raw_request(port: int, payload: bytes) -> tuple[dict, bytes]:
    """One request on a fresh connection: the reply, and what follows it (b'' when the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        _recv_frame(conn)  # the server greets with the client's address
        conn.sendall(frame(payload))
        reply = json.loads(_recv_frame(conn))
        conn.settimeout(0.5)
        try:
            after = conn.recv(1)
        except TimeoutError:
            after = b"(still open)"
        except ConnectionResetError:
            after = b""
        return reply, after


def test_a_token_is_required_on_every_call(served) -> None:
    _, service = served
    port, token = service.server.port, service.token
    assert _raw_request(port, json.dumps(_call("GetCursorPosition", token)).encode()) == (
        {"type": "result", "value": 0.0},
        b"(still open)",
    )
    for wrong in (None, "", token[:-1] + "x", token + "x", 12345, [token], {"token": token}):
        reply, after = _raw_request(port, json.dumps(_call("GetCursorPosition", wrong)).encode())
        assert reply == {"type": "error", "traceback": WRONG_TOKEN_MESSAGE}, wrong
        assert after == b"", f"the connection stays open after token {wrong!r}"
    hold = {"function": "HOLD", "input": None, "token": "not-the-token-0123456789"}
    assert _raw_request(port, json.dumps(hold).encode())[0]["type"] == "error"
    assert not service.server.holding
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:  # the token goes with every request
        _recv_frame(conn)
        conn.sendall(frame(json.dumps(_call("GetCursorPosition", token)).encode()))
        assert json.loads(_recv_frame(conn))["type"] == "result"
        conn.sendall(frame(json.dumps(_call("GetCursorPosition", None)).encode()))
        assert json.loads(_recv_frame(conn))["traceback"] == WRONG_TOKEN_MESSAGE
    assert service.server.stats.refused_tokens == 9


def test_server_binds_loopback_and_refuses_arbitrary_callables(served, tmp_path: Path) -> None:
    _, service = served
    port, token = service.server.port, service.token
    assert service.server.address[0] == "127.0.0.1"
    marker = tmp_path / "pwned"
    evil = {
        "function": {"__callable__": True, "module_name": "os", "name": "system"},
        "input": {"args": [f"touch {marker}"], "kwargs": {}},
        "token": token,
    }
    reply, _ = _raw_request(port, json.dumps(evil).encode())
    assert reply["type"] == "error" and "refused" in reply["traceback"]
    assert not marker.exists()
    assert _raw_request(port, json.dumps(_call("Main_OnCommand", token, 40001, 0)).encode())[0]["type"] == "error"
    assert _raw_request(port, b"{not json")[0]["type"] == "error"
    reply, _ = _raw_request(port, json.dumps(_call("GetCursorPosition", token)).encode())
    assert reply == {"type": "result", "value": 0.0}


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.168.1.20", "10.0.0.1", "::", "localhost", "example.org"])
def test_only_loopback_addresses_are_bound(host: str) -> None:
    with pytest.raises(ReaTimbreError, match="loopback IP address only"):
        HardenedReapyServer(0, {}, "a-token-long-enough-0123", host=host)


def test_a_short_or_missing_token_cannot_start_a_server() -> None:
    with pytest.raises(ReaTimbreError, match="needs the ReaTimbre token"):
        HardenedReapyServer(0, {}, "")


def test_oversized_requests_close_the_connection(served) -> None:
    _, service = served
    with socket.create_connection(("127.0.0.1", service.server.port), timeout=5) as conn:
        _recv_frame(conn)
        conn.sendall((MAX_REQUEST_BYTES + 1).to_bytes(8, "little"))
        assert conn.recv(8) == b""  # closed without reading a byte of the body
    assert service.server.stats.dropped["oversize request"] == 1


def test_token_client_calls_as_a_reaper_api(served) -> None:
    _, service = served
    host, port = service.server.address
    with TokenReapyClient(host, port, service.token) as client:
        track = ops.ret(client.call("GetSelectedTrack", 0, 0))
        assert ops.fx_names(client, track) == ["VSTi: Vital (Vital Audio)"]
        with pytest.raises(ReaTimbreError, match="REAPER refused the call: .*Main_OnCommand"):
            client.call("Main_OnCommand", 40001, 0)
    with TokenReapyClient(host, port, "wrong-token-0123456789") as client:
        with pytest.raises(ReaTimbreError, match="token is missing or wrong"):
            client.call("GetCursorPosition")


def test_the_client_finds_only_a_live_advertised_server(tmp_path: Path) -> None:
    with pytest.raises(ReaTimbreError, match="no hardened reapy server is running"):
        find_server(tmp_path)
    info = tmp_path / REAPY_INFO_FILE_NAME
    info.write_text(json.dumps({"host": "127.0.0.1", "port": 2306, "pid": os.getpid()}))
    assert find_server(tmp_path) == ("127.0.0.1", 2306)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    assert not pid_alive(dead_pid)
    info.write_text(json.dumps({"host": "127.0.0.1", "port": 2306, "pid": dead_pid}))
    with pytest.raises(ReaTimbreError, match=f"pid {dead_pid}\\) is gone"):
        find_server(tmp_path)
    info.write_text("{broken")
    with pytest.raises(ReaTimbreError, match="is damaged"):
        find_server(tmp_path)
