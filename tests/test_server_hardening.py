"""Attacks on the server from a local process: swapped folders and inputs, odd names, what the OS refuses.

Each test drives the real API (TestClient) with the real render job and a tiny model, and a ``gate`` job kind that
holds the single worker, so a swap can be made exactly between the submission's checks and the job's writes.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_jobs import wait_for_job
from fastapi.testclient import TestClient
from pydantic import BaseModel
from test_server_render import make_tiny_model, make_tone

from models.errors import ReaTimbreError
from models.library import check_model_name
from server.app import create_app
from server.explore_job import EXPLORE_KIND
from server.job_kinds import JobEnv, JobKind, PreparedJob
from server.jobs import JobContext
from server.render_job import RENDER_KIND
from server.serverconfig import ServerConfig
from server.steer_job import STEER_KIND

TOKEN = "hardening-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, devices and symlinks as on POSIX")
GATE = threading.Event()


class GateRequest(BaseModel):
    pass


def prepare_gate(request: BaseModel, env: JobEnv) -> PreparedJob:
    """Occupies the worker until GATE is set (polling cancel)."""

    def run(ctx: JobContext) -> dict[str, Any]:
        while not GATE.wait(0.005):
            if ctx.should_cancel():
                raise ReaTimbreError("cancelled")
        return {}

    return PreparedJob(run)


GATE_KIND = JobKind("gate", GateRequest, prepare_gate, "hold the worker")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("REATIMBRE_DATA_DIR", str(tmp_path / "data"))
    make_tiny_model(tmp_path / "data")
    GATE.clear()
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "renders", workers=1, queue_size=4)
    kinds = [RENDER_KIND, STEER_KIND, EXPLORE_KIND, GATE_KIND]
    with TestClient(create_app(config, kinds=kinds), base_url="http://127.0.0.1:47810") as test_client:
        yield test_client
    GATE.set()


def _submit(client: TestClient, kind: str, body: dict[str, Any]) -> str:
    response = client.post(f"/v1/{kind}", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def _wait(client: TestClient, job_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    return wait_for_job(client, job_id, AUTH, timeout_s)


def _files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _assert_one_line_4xx(response: Any) -> str:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 600, detail
    return detail


@POSIX_ONLY
def test_output_folder_swapped_for_a_symlink_before_the_write(client: TestClient, tmp_path: Path) -> None:
    """The output's folder is a real folder when the request is checked and a link outside when the job writes."""
    source = make_tone(tmp_path / "in" / "tone.wav", 0.2)
    renders, outside = tmp_path / "renders", tmp_path / "outside"
    outside.mkdir()
    (renders / "takes").mkdir()
    gate = _submit(client, "gate", {})
    job = _submit(client, "render", {"input": str(source), "effect": "tiny", "output": "takes/x.wav"})
    (renders / "takes").rmdir()
    (renders / "takes").symlink_to(outside, target_is_directory=True)
    GATE.set()
    assert _wait(client, gate)["state"] == "done"
    status = _wait(client, job)
    assert status["state"] == "failed" and "symbolic link" in status["error"], status
    assert _files_under(outside) == []
    assert _files_under(renders / ".staging") == []


@POSIX_ONLY
def test_staging_area_swapped_for_a_symlink(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.2)
    renders, outside = tmp_path / "renders", tmp_path / "outside"
    outside.mkdir()
    gate = _submit(client, "gate", {})
    job = _submit(client, "render", {"input": str(source), "effect": "tiny"})
    (renders / ".staging").rename(tmp_path / "old-staging")
    (renders / ".staging").symlink_to(outside, target_is_directory=True)
    GATE.set()
    _wait(client, gate)
    status = _wait(client, job)
    assert status["state"] == "failed" and "\n" not in status["error"], status
    assert _files_under(outside) == []
    assert [p for p in _files_under(renders) if ".staging" not in p.parts] == []


@POSIX_ONLY
def test_a_thread_flipping_the_folder_never_gets_a_file_outside(tmp_path: Path) -> None:
    """Publishing races a thread that swaps the target folder between a real folder and a link, in a loop."""
    from server.outputs import prepare_output_dir, publish, staged_file

    root = prepare_output_dir(tmp_path / "renders")
    outside = tmp_path / "outside"
    outside.mkdir()
    folder, parked = root / "takes", root / "parked"
    folder.mkdir()
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            try:
                folder.rename(parked)
                folder.symlink_to(outside, target_is_directory=True)
                time.sleep(0)
                folder.unlink()
                parked.rename(folder)
            except OSError:  # publish re-created the folder in a gap: start over from whatever is there
                shutil.rmtree(parked, ignore_errors=True)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    published = refused = 0
    try:
        for n in range(300):
            with staged_file(root, f"job{n}.wav") as staged:
                staged.write(b"audio")
                try:
                    publish(root, staged, folder / f"x{n}.wav")
                    published += 1
                except ReaTimbreError as exc:
                    assert "\n" not in str(exc)
                    refused += 1
    finally:
        stop.set()
        flipper.join()
    assert _files_under(outside) == []
    assert published + refused == 300 and refused > 0  # the race was really run (some publishes met the link)


@POSIX_ONLY
@pytest.mark.parametrize("kind", ["fifo", "fifo behind a symlink", "device", "folder"])
def test_inputs_that_are_not_regular_files_are_refused_at_submission(
    client: TestClient, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "input.wav"
    if kind.startswith("fifo"):
        os.mkfifo(tmp_path / "pipe")
        path.symlink_to(tmp_path / "pipe") if "symlink" in kind else (tmp_path / "pipe").rename(path)
    elif kind == "device":
        path = Path(os.devnull)
    else:
        path.mkdir()
    started = time.monotonic()
    for body_kind, body in [
        ("render", {"input": str(path), "effect": "tiny"}),
        ("explore", {"input": str(path), "name": "tiny"}),
        ("steer", {"dry": str(path), "wet": str(path), "name": "fresh"}),
    ]:
        detail = _assert_one_line_4xx(client.post(f"/v1/{body_kind}", json=body, headers=AUTH))
        assert "not a regular file" in detail, detail
    assert time.monotonic() - started < 5.0


@POSIX_ONLY
def test_input_swapped_for_a_fifo_after_submission_never_blocks_a_worker(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.2)
    gate = _submit(client, "gate", {})
    job = _submit(client, "render", {"input": str(source), "effect": "tiny"})
    source.unlink()
    os.mkfifo(source)  # nobody ever writes to it: opening it for reading would wait for good
    GATE.set()
    _wait(client, gate)
    status = _wait(client, job, timeout_s=10.0)
    assert status["state"] == "failed" and "FIFO" in status["error"], status
    again = make_tone(tmp_path / "in" / "tone2.wav", 0.2)
    assert _wait(client, _submit(client, "render", {"input": str(again), "effect": "tiny"}))["state"] == "done"


@POSIX_ONLY
def test_input_swapped_while_the_job_reads_keeps_reading_the_checked_file(tmp_path: Path) -> None:
    """pinned_input hands the job the very file it checked, whatever the path names afterwards."""
    from models.input_files import pinned_input

    source = make_tone(tmp_path / "tone.wav", 0.1)
    original = source.read_bytes()
    with pinned_input(source) as pinned:
        source.unlink()
        os.mkfifo(source)
        assert pinned.read_bytes() == original
    with pytest.raises(ReaTimbreError, match="FIFO"), pinned_input(source):
        pass


def test_what_the_os_refuses_is_a_one_line_4xx(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.2)
    long_name = "a" * 300 + ".wav"
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "input name of 300 bytes": ("render", {"input": str(tmp_path / long_name), "effect": "tiny"}),
        "output name of 300 bytes": ("render", {"input": str(source), "effect": "tiny", "output": long_name}),
        "output folder of 300 bytes": (
            "render",
            {"input": str(source), "effect": "tiny", "output": "b" * 300 + "/x.wav"},
        ),
        "explore input of 300 bytes": ("explore", {"input": str(tmp_path / long_name), "name": "tiny"}),
        "steer input of 300 bytes": (
            "steer",
            {"dry": str(tmp_path / long_name), "wet": str(source), "name": "fresh"},
        ),
        "path of 4000 bytes": ("render", {"input": "/" + "c/" * 2000 + "x.wav", "effect": "tiny"}),
        "home of an unknown user": ("render", {"input": "~no-such-user-here/x.wav", "effect": "tiny"}),
        "NUL in the input": ("render", {"input": str(source) + "\x00", "effect": "tiny"}),
    }
    if sys.platform != "win32":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
        cases["symlink loop"] = ("render", {"input": str(tmp_path / "loop"), "effect": "tiny"})
        if os.geteuid() != 0:
            locked = make_tone(tmp_path / "locked" / "tone.wav", 0.1)
            locked.chmod(0)
            cases["unreadable input"] = ("render", {"input": str(locked), "effect": "tiny"})
    for name, (kind, body) in cases.items():
        response = client.post(f"/v1/{kind}", json=body, headers=AUTH)
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        _assert_one_line_4xx(response)


@POSIX_ONLY
@pytest.mark.skipif(sys.platform != "win32" and os.geteuid() == 0, reason="root ignores folder permissions")
def test_an_output_folder_without_permission_fails_the_job_in_one_line(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.2)
    locked = tmp_path / "renders" / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        status = _wait(
            client, _submit(client, "render", {"input": str(source), "effect": "tiny", "output": "locked/x.wav"})
        )
    finally:
        locked.chmod(0o700)
    assert status["state"] == "failed" and "permission denied" in status["error"], status
    assert "Traceback" not in status["error"] and "internal error" not in status["error"]


def test_names_must_match_in_full(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.2)
    for bad in ["tiny\n", "fresh\n", "x\ny", " tiny", "../tiny", "tiny/"]:
        with pytest.raises(ReaTimbreError, match="invalid model name"):
            check_model_name(bad)
    cases = [
        ("render", {"input": str(source), "effect": "tiny\n"}),
        ("explore", {"input": str(source), "name": "tiny\n"}),
        ("steer", {"dry": str(source), "wet": str(source), "name": "fresh\n", "minutes": 0.05}),
    ]
    for kind, body in cases:
        detail = _assert_one_line_4xx(client.post(f"/v1/{kind}", json=body, headers=AUTH))
        assert "invalid model name" in detail or "unknown effect" in detail, detail
    job_id = _submit(client, "gate", {})
    assert client.get(f"/v1/jobs/{job_id}", headers=AUTH).status_code == 200
    for variant in (job_id + "%0A", job_id.upper(), job_id + "0", " " + job_id):
        assert client.get(f"/v1/jobs/{variant}", headers=AUTH).status_code == 404
    GATE.set()


def test_staged_files_and_atomic_writes_are_synced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of the new file's data must come before the link/rename that publishes it."""
    import models.atomic_files as atomic_files
    from server.outputs import prepare_output_dir, publish, staged_file

    events: list[str] = []
    real_fsync, real_replace, real_link = os.fsync, os.replace, os.link

    def fsync(fd: int) -> None:
        events.append("fsync-file" if os.path.isfile(f"/proc/self/fd/{fd}") or not os.path.isdir("/proc") else "fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", lambda *a, **k: (events.append("rename"), real_replace(*a, **k))[1])
    monkeypatch.setattr(os, "link", lambda *a, **k: (events.append("link"), real_link(*a, **k))[1])

    atomic_files.write_bytes(tmp_path / "a.bin", b"data")
    assert events[:2] == ["fsync-file", "rename"], events
    events.clear()
    root = prepare_output_dir(tmp_path / "renders")
    with staged_file(root, "job.wav") as staged:
        staged.write(b"audio")
        publish(root, staged, root / "x.wav")
    assert events[:2] == ["fsync-file", "link"], events
    assert (root / "x.wav").read_bytes() == b"audio"


@POSIX_ONLY
def test_publishing_by_path_where_dir_fds_are_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback for platforms without ``dir_fd`` (Windows) still refuses linked folders and never clobbers."""
    import server.outputs as outputs

    monkeypatch.setattr(outputs, "USE_DIR_FDS", False)
    root = outputs.prepare_output_dir(tmp_path / "renders")
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    with outputs.staged_file(root, "a.wav") as staged:
        staged.write(b"one")
        outputs.publish(root, staged, root / "sub" / "a.wav")
    assert (root / "sub" / "a.wav").read_bytes() == b"one"
    for final, error in [(root / "sub" / "a.wav", "untouched"), (root / "link" / "b.wav", "symbolic link")]:
        with outputs.staged_file(root, "b.wav") as staged:
            staged.write(b"two")
            with pytest.raises(ReaTimbreError, match=error):
                outputs.publish(root, staged, final)
    assert (root / "sub" / "a.wav").read_bytes() == b"one" and _files_under(tmp_path / "outside") == []
    assert _files_under(root / ".staging") == []


@pytest.mark.parametrize("kind", ["render", "steer", "explore"])
def test_every_job_kind_honours_cancel_within_a_second(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A running job of each kind ends within a second of its cancel, leaving no file. The tiny test models are
    slowed to a pace like real ones, so the job is surely mid-work. (Coach: test_server_coach_cancel.py.)"""
    from models.library import NeuralEffect
    from models.tcn import TCNStream

    def slowed(real):
        def process(self, *args, **kwargs):
            time.sleep(0.02)
            return real(self, *args, **kwargs)

        return process

    for owner in (TCNStream, NeuralEffect):
        monkeypatch.setattr(owner, "process", slowed(owner.process))
    make_tiny_model(tmp_path / "data", "tiny2", ("drive", "tone"))
    source = make_tone(tmp_path / "in" / "long.wav", 30.0)
    body = {
        "render": {"input": str(source), "effect": "tiny"},
        "steer": {"dry": str(source), "wet": str(source), "name": "fresh", "minutes": 5.0},
        "explore": {"input": str(source), "name": "tiny2", "grid": 9},
    }[kind]
    workers_before = _job_threads()
    job_id = _submit(client, kind, body)
    deadline = time.monotonic() + 30
    while client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["state"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.2)  # well inside the work
    assert client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["state"] == "running"
    client.delete(f"/v1/jobs/{job_id}", headers=AUTH)
    cancelled_at = time.monotonic()  # the server has the cancel now
    status = _wait(client, job_id, timeout_s=5.0)
    assert status["state"] == "cancelled" and status["asked_at"] - cancelled_at < 1.0, status
    assert _files_under(tmp_path / "renders") == []
    # A job cancelled while it was not polling (steer's pair check, explore's first render) was abandoned and its
    # worker replaced; the abandoned thread itself must still stop at its next check, not compute on.
    deadline = time.monotonic() + 20
    while _job_threads() > workers_before:
        assert time.monotonic() < deadline, f"the cancelled {kind} job is still computing"
        time.sleep(0.05)


def _job_threads() -> int:
    return sum(thread.name.startswith("reatimbre-job-") for thread in threading.enumerate())


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENAMETOOLONG, errno.ELOOP, errno.EIO, errno.ENOSPC])
def test_any_os_error_on_input_or_output_is_one_line(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Whatever the OS answers (also when the tests run as root, which permissions do not stop), the request gets
    a one-line 4xx and a job a one-line error, never a 500 or a traceback."""
    import models.input_files as inputs
    import server.outputs as outputs

    source = make_tone(tmp_path / "in" / "tone.wav", 0.2)
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if str(path) == str(source):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(inputs.os, "open", refusing_open)
    response = client.post("/v1/render", json={"input": str(source), "effect": "tiny"}, headers=AUTH)
    detail = _assert_one_line_4xx(response)
    assert str(source) in detail
    monkeypatch.setattr(inputs.os, "open", real_open)

    def refusing_mkdir(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(outputs.os, "mkdir", refusing_mkdir)
    status = _wait(client, _submit(client, "render", {"input": str(source), "effect": "tiny", "output": "new/x.wav"}))
    assert status["state"] == "failed" and "\n" not in status["error"] and "internal error" not in status["error"]
    assert status["error"].startswith("cannot publish"), status
