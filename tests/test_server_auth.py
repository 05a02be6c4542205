"""Token file, Host check, output-directory confinement and no-clobber publishing."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from models.errors import ReaTimbreError
from server.auth import host_is_loopback, load_or_create_token, token_matches, token_path
from server.outputs import (
    STAGING_DIR_NAME,
    OutputReservations,
    prepare_output_dir,
    publish,
    resolve_output,
    staged_file,
)
from server.serverconfig import remove_server_info, server_info_path, write_server_info


def test_token_is_created_once_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REATIMBRE_CONFIG_DIR", str(tmp_path / "cfg"))
    token = load_or_create_token()
    path = token_path()
    assert path == tmp_path / "cfg" / "token"
    assert path.read_text().strip() == token and len(token) >= 32
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token() == token
    assert [p.name for p in path.parent.iterdir()] == ["token"]  # no temp files left behind


def test_damaged_token_file_is_reported_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("short\n")
    with pytest.raises(ReaTimbreError, match="damaged"):
        load_or_create_token(tmp_path)
    assert (tmp_path / "token").read_text() == "short\n"


def test_bearer_token_comparison() -> None:
    token = "a" * 40
    assert token_matches(f"Bearer {token}", token)
    assert token_matches(f"bearer {token}", token)
    assert not token_matches(None, token)
    assert not token_matches(token, token)
    assert not token_matches(f"Basic {token}", token)
    assert not token_matches(f"Bearer {token}x", token)
    assert not token_matches("Bearer ", token)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:47810", "localhost", "LOCALHOST:80", "[::1]", "[::1]:47810"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    assert host_is_loopback(host)


@pytest.mark.parametrize(
    "host",
    [None, "", "evil.example", "evil.example:47810", "127.0.0.1.evil.example", "localhost.evil", "10.0.0.1",
     "0.0.0.0:47810", "[::2]", "[::1", "::1", "localhost:port", "127.0.0.1:"],
)  # fmt: skip
def test_other_hosts_are_refused(host: str | None) -> None:
    assert not host_is_loopback(host)


def test_output_resolution_stays_inside_the_output_dir(tmp_path: Path) -> None:
    root = prepare_output_dir(tmp_path / "renders")
    picked = resolve_output(root, None, "take 1/../x-compressor")
    assert picked.parent == root and picked.suffix == ".wav" and "/" not in picked.name
    assert resolve_output(root, "a/b.wav", "x") == root / "a" / "b.wav"
    assert resolve_output(root, str(root / "c.wav"), "x") == root / "c.wav"
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    for trick in ["../x.wav", "a/../../x.wav", "/etc/x.wav", str(tmp_path / "x.wav"), "link/x.wav", "", "  ",
                  ".staging/x.wav", "x.txt", "a\x00.wav", "."]:  # fmt: skip
        with pytest.raises(ReaTimbreError):
            resolve_output(root, trick, "x")
    (root / "taken.wav").write_bytes(b"user data")
    with pytest.raises(ReaTimbreError, match="already exists"):
        resolve_output(root, "taken.wav", "x")


def test_prepare_output_dir_empties_the_staging_area(tmp_path: Path) -> None:
    root = prepare_output_dir(tmp_path)
    leftover = root / STAGING_DIR_NAME / "killed-job.wav"
    leftover.write_bytes(b"half a render")
    (root / "finished.wav").write_bytes(b"kept")
    prepare_output_dir(tmp_path)
    assert not leftover.exists() and (root / "finished.wav").read_bytes() == b"kept"


def test_publish_never_overwrites(tmp_path: Path) -> None:
    root = prepare_output_dir(tmp_path / "renders")
    final = root / "out" / "final.wav"
    with staged_file(root, "job1.wav") as staged:
        staged.write(b"new")
        publish(root, staged, final)
    assert final.read_bytes() == b"new"
    with staged_file(root, "job2.wav") as staged:
        staged.write(b"newer")
        with pytest.raises(ReaTimbreError, match="untouched"):
            publish(root, staged, final)
    assert final.read_bytes() == b"new"
    assert list((root / STAGING_DIR_NAME).iterdir()) == []  # nothing left behind in the staging area


def test_reservations_refuse_a_second_claim(tmp_path: Path) -> None:
    reservations = OutputReservations()
    reservations.reserve(tmp_path / "a.wav")
    with pytest.raises(ReaTimbreError, match="another job"):
        reservations.reserve(tmp_path / "a.wav")
    reservations.release(tmp_path / "a.wav")
    reservations.reserve(tmp_path / "a.wav")


def test_server_info_written_and_removed_only_by_its_owner(tmp_path: Path) -> None:
    path = write_server_info("127.0.0.1", 47811, tmp_path)
    assert path == server_info_path(tmp_path)
    assert json.loads(path.read_text()) == {"host": "127.0.0.1", "port": 47811, "pid": os.getpid()}
    remove_server_info(tmp_path)
    assert not path.exists()
    path.write_text(json.dumps({"host": "127.0.0.1", "port": 1, "pid": os.getpid() + 1}))
    remove_server_info(tmp_path)
    assert path.exists()
