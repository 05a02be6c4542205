"""The ReaScripts locate the server's token exactly where the server (platformdirs) puts it."""

from __future__ import annotations

import sys
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
    assert reatimbre_client.server_address(str(tmp_path)) == ("127.0.0.1", 47810)
    (tmp_path / "server.json").write_text('{"host": "127.0.0.1", "port": 50001, "pid": 7}')
    assert reatimbre_client.server_address(str(tmp_path)) == ("127.0.0.1", 50001)
    assert reatimbre_client.server_pid(str(tmp_path)) == 7
    with pytest.raises(reatimbre_client.ClientError, match="no ReaTimbre token"):
        reatimbre_client.read_token(str(tmp_path))
