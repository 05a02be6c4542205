"""The ReaScripts locate the server's token exactly where the server (platformdirs) puts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import platformdirs.macos
import platformdirs.unix
import platformdirs.windows
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reaper_scripts"))
import reatimbre_client  # noqa: E402

WINDOWS_LOCAL = "C:\\Users\\u\\AppData\\Local"
CASES = [
    ("linux", platformdirs.unix.Unix, {"HOME": "/home/u"}),
    ("linux", platformdirs.unix.Unix, {"HOME": "/home/u", "XDG_CONFIG_HOME": "/xdg"}),
    ("linux", platformdirs.unix.Unix, {"HOME": "/home/u", "XDG_CONFIG_HOME": "relative"}),
    ("darwin", platformdirs.macos.MacOS, {"HOME": "/Users/u"}),
    ("darwin", platformdirs.macos.MacOS, {"HOME": "/Users/u", "XDG_CONFIG_HOME": "/xdg"}),
    ("win32", platformdirs.windows.Windows, {"HOME": "/h", "WIN_PD_OVERRIDE_LOCAL_APPDATA": WINDOWS_LOCAL}),
]


@pytest.mark.parametrize(("platform", "dirs", "env"), CASES)
def test_config_dir_matches_platformdirs(
    platform: str, dirs: type, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("XDG_CONFIG_HOME", "WIN_PD_OVERRIDE_LOCAL_APPDATA", "REATIMBRE_CONFIG_DIR"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    expected = dirs("reatimbre", appauthor=False).user_config_dir
    assert reatimbre_client.config_dir(platform, dict(env)) == expected


def test_override_wins_and_server_json_gives_the_port(tmp_path: Path) -> None:
    env = {"REATIMBRE_CONFIG_DIR": str(tmp_path), "XDG_CONFIG_HOME": "/xdg"}
    assert reatimbre_client.config_dir("linux", env) == str(tmp_path)
    (tmp_path / "server.json").write_text(json.dumps({"host": "127.0.0.1", "port": 50001, "pid": os.getpid()}))
    assert reatimbre_client.server_address(str(tmp_path)) == ("127.0.0.1", 50001)
    assert reatimbre_client.server_pid(str(tmp_path)) == os.getpid()
    with pytest.raises(reatimbre_client.ClientError, match="no ReaTimbre token"):
        reatimbre_client.read_token(str(tmp_path))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    "server_json",
    [None, "{not json", '{"host": "127.0.0.1", "port": 47810}', '{"host": "127.0.0.1", "port": 47810, "pid": "1"}',
     '{"host": "127.0.0.1", "port": 0, "pid": SELF}', '{"host": "127.0.0.1", "port": 47810, "pid": DEAD}', "[]"],
    ids=["missing", "damaged", "no pid", "pid text", "port 0", "dead pid", "not an object"],
)  # fmt: skip
def test_no_live_server_json_means_no_request_and_no_token_sent(
    server_json: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever listens on the port (here a listener that records requests) never sees the token unless a live
    server wrote server.json."""
    seen: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args: object) -> None:
            pass

    listener = HTTPServer(("127.0.0.1", 0), Recorder)
    port = listener.server_address[1]
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("REATIMBRE_CONFIG_DIR", str(tmp_path))
        monkeypatch.setattr(reatimbre_client, "DEFAULT_PORT", port)  # the port a guessing client would try
        (tmp_path / "token").write_text("secret-token-0123456789abcdef\n")
        if server_json is not None:
            text = server_json.replace("47810", str(port)).replace("SELF", str(os.getpid()))
            (tmp_path / "server.json").write_text(text.replace("DEAD", str(_dead_pid())))
        client = reatimbre_client.Client(timeout_seconds=2.0)
        with pytest.raises(reatimbre_client.ServerUnreachable, match="Start local server") as caught:
            client.health()
        assert "\n" not in str(caught.value)
        assert seen == []
        # The same listener named by a live server.json is trusted (the pid here is this test's own process).
        (tmp_path / "server.json").write_text(json.dumps({"host": "127.0.0.1", "port": port, "pid": os.getpid()}))
        assert client.health() == {"status": "ok"}
        assert seen == ["Bearer secret-token-0123456789abcdef"]
    finally:
        listener.shutdown()
        listener.server_close()


def test_pid_alive() -> None:
    assert reatimbre_client.pid_alive(os.getpid())
    assert not reatimbre_client.pid_alive(_dead_pid())
    if sys.platform != "win32" and os.getuid() != 0:
        assert not reatimbre_client.pid_alive(1)  # init belongs to root: not a server this user started
