"""The REAPER operations driven from outside through the real reapy client and the hardened reapy server."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from reaper_emulator import EmuParam, ReaperEmulator
from reaper_emulator.reapy_service import ReapyService, WebInterface

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


@contextlib.contextmanager
def _reapy_client(web_port: int) -> Iterator[ops.ReapyApi]:
    old_port = reapy.config.WEB_INTERFACE_PORT
    reapy.config.WEB_INTERFACE_PORT = web_port
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


@pytest.fixture
def reapy_api(served: tuple[ReaperEmulator, ReapyService]) -> Iterator[ops.ReapyApi]:
    with _reapy_client(served[1].web_port) as api:
        yield api


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


REAPY_ACTION = Path(__file__).resolve().parent.parent / "reaper_scripts" / "ReaTimbre_reapy server (loopback only).py"


def test_the_installed_reapy_action_serves_the_real_client(tmp_path: Path) -> None:
    """The ReaScript REAPER runs (what install.py --reapy registers), driven by REAPER's defer loop."""
    emu = ReaperEmulator.new(tmp_path / "song.rpp")
    track = emu.add_track("synth", selected=True)
    emu.add_fx(track, "VSTi: Vital (Vital Audio)", [EmuParam("Volume", 0.5)])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emu.RPR_SetExtState("ReaTimbre", "reapy_port", str(port), False)
    sys.modules.pop("reatimbre_action", None)
    emu.run_script(REAPY_ACTION)
    assert emu.RPR_GetExtState("reapy", "server_port") == str(port)
    stop = threading.Event()
    loop = threading.Thread(
        target=emu.run_deferred, kwargs={"max_ticks": 10**9, "stop": stop, "tick": lambda: stop.wait(0.001)}
    )
    loop.start()
    try:
        with WebInterface(emu) as web, _reapy_client(web.port) as api:
            synth = ops.ret(api.call("GetSelectedTrack", 0, 0))
            assert ops.fx_names(api, synth) == ["VSTi: Vital (Vital Audio)"]
            api.call("TrackFX_SetParamNormalized", synth, 0, 0, 0.25)
    finally:
        stop.set()
        loop.join(timeout=10)
        emu.quit()
    assert emu.params(0, 0)[0].value == 0.25
    assert emu.RPR_GetExtState("reapy", "server_port") == ""  # withdrawn when REAPER exits
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
