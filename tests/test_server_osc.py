"""OSC link: parameter values reach a REAPER-like listener; feedback is recorded; bad packets are ignored."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import ThreadingOSCUDPServer

from extension.osc import FeedbackStore, OscBridge, fx_param_address
from models.errors import ReaTimbreError
from server.app import create_app
from server.serverconfig import ServerConfig

TOKEN = "osc-test-token-0123456789"


class FakeReaperSurface:
    """Listens like REAPER's OSC control surface and records every message it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[str, tuple]] = []
        self.arrived = threading.Event()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._record)
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _record(self, address: str, *args) -> None:
        self.received.append((address, args))
        self.arrived.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def reaper():
    surface = FakeReaperSurface()
    yield surface
    surface.close()


def _message(address: str, *args) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def test_addresses_are_one_based_default_reaperosc_patterns() -> None:
    assert fx_param_address(2, 1, 3) == "/track/2/fx/1/fxparam/3/value"
    for bad in [(0, 1, 1), (1, 0, 1), (1, 1, 0), (True, 1, 1), (1.5, 1, 1)]:
        with pytest.raises(ReaTimbreError, match="counts from 1"):
            fx_param_address(*bad)


def test_parameter_value_reaches_reaper(reaper: FakeReaperSurface) -> None:
    bridge = OscBridge("127.0.0.1", reaper.port)
    try:
        assert bridge.send_fx_param(2, 1, 3, 0.25) == "/track/2/fx/1/fxparam/3/value"
        assert reaper.arrived.wait(2)
        assert reaper.received == [("/track/2/fx/1/fxparam/3/value", (0.25,))]
        for bad_value in (1.5, -0.1, float("nan")):
            with pytest.raises(ReaTimbreError, match="0..1"):
                bridge.send_fx_param(1, 1, 1, bad_value)
    finally:
        bridge.stop()


def test_feedback_is_recorded_and_malformed_packets_ignored(caplog: pytest.LogCaptureFixture) -> None:
    store = FeedbackStore()
    caplog.set_level(logging.WARNING, logger="reatimbre.osc")
    store.handle_datagram(_message("/track/2/fx/1/fxparam/3/value", 0.75))
    store.handle_datagram(_message("/track/2/fx/1/fxparam/3/name", "Drive"))
    store.handle_datagram(_message("/fxparam/4/value/str", "-6.0 dB"))
    store.handle_datagram(_message("/track/1/volume", 0.5))  # not FX feedback: ignored quietly
    malformed = [
        b"",
        b"\x00\x01\x02garbage",
        b"/track/1/fx/1/fxparam/1/value\x00\x00\x00,f\x00\x00",  # float announced, no bytes
        b"#bundle\x00\x00\x00",
        _message("/track/2/fx/1/fxparam/3/value", "loud"),
        _message("/track/2/fx/1/fxparam/3/value", 0.1, 0.2),
        _message("/track/0/fx/1/fxparam/3/value", 0.5),
    ]
    for datagram in malformed:
        store.handle_datagram(datagram, sender="test")
    snapshot = store.snapshot()
    assert snapshot["ignored_packets"] == len(malformed)
    assert len([r for r in caplog.records if r.message.startswith("ignored")]) == len(malformed)
    assert {"track": 2, "fx": 1, "param": 3, "value": 0.75, "text": None, "name": "Drive"} in snapshot["params"]
    assert {"track": None, "fx": None, "param": 4, "value": None, "text": "-6.0 dB", "name": None} in snapshot["params"]
    assert store.value(2, 1, 3) == 0.75


def test_http_routes_send_and_report_feedback(reaper: FakeReaperSurface, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        listen_port = probe.getsockname()[1]
    config = ServerConfig(token=TOKEN, output_dir=tmp_path, osc_reaper_port=reaper.port, osc_listen_port=listen_port)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(config, kinds=[]), base_url="http://127.0.0.1") as client:
        sent = client.post("/v1/osc/fxparam", json={"track": 1, "fx": 2, "param": 5, "value": 0.5}, headers=auth)
        assert sent.status_code == 200 and sent.json()["address"] == "/track/1/fx/2/fxparam/5/value"
        assert reaper.arrived.wait(2) and reaper.received[0] == ("/track/1/fx/2/fxparam/5/value", (0.5,))
        refused = client.post("/v1/osc/fxparam", json={"track": 0, "fx": 1, "param": 1, "value": 0.5}, headers=auth)
        assert refused.status_code == 422
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as reaper_side:
            reaper_side.sendto(b"not osc at all", ("127.0.0.1", listen_port))
            reaper_side.sendto(_message("/track/1/fx/2/fxparam/5/value", 0.625), ("127.0.0.1", listen_port))
        deadline = time.monotonic() + 2
        while True:
            feedback = client.get("/v1/osc/feedback", headers=auth).json()
            if feedback["params"] or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert feedback["ignored_packets"] == 1
        assert feedback["params"] == [{"track": 1, "fx": 2, "param": 5, "value": 0.625, "text": None, "name": None}]


def _nested_bundle(depth: int) -> bytes:
    """``depth`` bundles, each holding the next, around one FX feedback message (20 bytes per level)."""
    packet = _message("/track/1/fx/1/fxparam/1/value", 0.5)
    for _ in range(depth):
        packet = b"#bundle\x00" + (1).to_bytes(8, "big") + len(packet).to_bytes(4, "big") + packet
    return packet


def test_deeply_nested_bundles_are_counted_and_logged_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """An 8 KB bundle nested 400 deep (recursion in the OSC parser) is one ignored packet and one log line, also
    when it arrives on the real listening socket."""
    datagram = _nested_bundle(400)
    assert 8000 <= len(datagram) <= 8300
    caplog.set_level(logging.DEBUG, logger="reatimbre.osc")
    store = FeedbackStore()
    store.handle_datagram(datagram, sender="test")
    assert store.snapshot() == {"params": [], "ignored_packets": 1}
    (record,) = caplog.records
    assert record.exc_info is None and "\n" not in record.getMessage() and "nested too deeply" in record.getMessage()
    assert len(record.getMessage()) < 400

    caplog.clear()
    bridge = OscBridge("127.0.0.1", 9, listen_port=0)
    bridge.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(datagram, ("127.0.0.1", bridge.listen_port))
            sender.sendto(_message("/track/1/fx/1/fxparam/2/value", 0.25), ("127.0.0.1", bridge.listen_port))
        deadline = time.monotonic() + 5
        while bridge.feedback.value(1, 1, 2) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bridge.feedback.snapshot()["ignored_packets"] == 1 and bridge.feedback.value(1, 1, 2) == 0.25
    finally:
        bridge.stop()
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records)
    assert sum("nested too deeply" in r.getMessage() for r in caplog.records) == 1
