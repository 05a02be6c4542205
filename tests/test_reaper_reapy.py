"""The REAPER operations driven from outside through the real reapy client and the hardened reapy server."""

from __future__ import annotations

import json
import socket
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
from extension.reapy_bridge import MAX_REQUEST_BYTES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # reapy warns at import when no REAPER is running
    import reapy
    import reapy.config
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


@pytest.fixture
def reapy_api(served: tuple[ReaperEmulator, ReapyService]) -> Iterator[ops.ReapyApi]:
    _, service = served
    old_port = reapy.config.WEB_INTERFACE_PORT
    reapy.config.WEB_INTERFACE_PORT = service.web_port
    try:
        reapy.reconnect()  # the client's own handshake: web interface -> EXTSTATE -> reapy server port
        assert reapy.dist_api_is_enabled()
        yield ops.ReapyApi()
    finally:
        client = machines.CLIENTS.pop("localhost", None)
        if client is not None:
            client._socket.close()
        machines.CLIENT = None
        reapy.config.WEB_INTERFACE_PORT = old_port


def test_operations_through_the_real_reapy_client(served, reapy_api: ops.ReapyApi, tmp_path: Path) -> None:
    emu, _ = served
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
    assert emu.envelope_points(0, 0, 1) == [(1.0, 0.9, 1), (pytest.approx(times[1]), 0.3, 1)]


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


def _raw_request(port: int, payload: bytes) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        _recv_frame(conn)  # the server greets with the client's address
        conn.sendall(len(payload).to_bytes(8, "little") + payload)
        return json.loads(_recv_frame(conn))


def test_server_binds_loopback_and_refuses_arbitrary_callables(served, tmp_path: Path) -> None:
    _, service = served
    assert service.server._socket.getsockname()[0] == "127.0.0.1"
    marker = tmp_path / "pwned"
    evil = {
        "function": {"__callable__": True, "module_name": "os", "name": "system"},
        "input": {"args": [f"touch {marker}"], "kwargs": {}},
    }
    reply = _raw_request(service.server.port, json.dumps(evil).encode())
    assert reply["type"] == "error" and "refused" in reply["traceback"]
    assert not marker.exists()
    not_allowed = {
        "function": {"__callable__": True, "module_name": "reapy.reascript_api", "name": "Main_OnCommand"},
        "input": {"args": [40001, 0], "kwargs": {}},
    }
    assert _raw_request(service.server.port, json.dumps(not_allowed).encode())["type"] == "error"
    assert _raw_request(service.server.port, b"{not json")["type"] == "error"
    allowed = {
        "function": {"__callable__": True, "module_name": "reapy.reascript_api", "name": "GetCursorPosition"},
        "input": {"args": [], "kwargs": {}},
    }
    assert _raw_request(service.server.port, json.dumps(allowed).encode()) == {"type": "result", "value": 0.0}


def test_oversized_requests_close_the_connection(served) -> None:
    _, service = served
    with socket.create_connection(("127.0.0.1", service.server.port), timeout=5) as conn:
        _recv_frame(conn)
        conn.sendall((MAX_REQUEST_BYTES + 1).to_bytes(8, "little"))
        assert conn.recv(8) == b""  # closed without reading a byte of the body
