"""``reatimbre serve`` as a real process on loopback: parallel clients, SIGKILL mid-job, clean restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
import soundfile as sf
from test_server_render import make_tiny_model, make_tone

from server.cli import main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses SIGKILL and /proc")
ROOT = Path(__file__).resolve().parents[1]
CONCURRENT_JOBS = 50


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """A ``python -m server serve`` subprocess with private config, data and output directories."""

    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.port = _free_port()
        self.output_dir = root / "renders"
        self.env = {
            **os.environ,
            "REATIMBRE_CONFIG_DIR": str(root / "config"),
            "REATIMBRE_DATA_DIR": str(root / "data"),
        }
        command = [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--port",
            str(self.port),
            "--output-dir",
            str(self.output_dir),
        ]
        self.process = subprocess.Popen(
            [*command, *extra, "--log-level", "warning"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"server exited: {self.process.stderr.read()}"
            assert time.monotonic() < deadline, "server did not start"
            token_file = root / "config" / "token"
            if token_file.exists():
                self.token = token_file.read_text().strip()
                try:
                    if self.get("/v1/health").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
            time.sleep(0.1)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> httpx2.Response:
        return httpx2.get(self.url + path, headers=self.headers, timeout=10)

    def post(self, path: str, body: dict) -> httpx2.Response:
        return httpx2.post(self.url + path, json=body, headers=self.headers, timeout=10)

    def wait(self, job_id: str, timeout_s: float = 120) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.get(f"/v1/jobs/{job_id}").json()
            if status["state"] in ("done", "failed", "cancelled"):
                return status
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stderr.close()


@pytest.fixture
def live_root(tmp_path: Path) -> Path:
    make_tiny_model(tmp_path / "data")
    return tmp_path


def test_parallel_clients_all_get_correct_renders_or_429(live_root: Path) -> None:
    server = LiveServer(live_root, "--workers", "2", "--queue-size", "8")
    try:
        assert json.loads((live_root / "config" / "server.json").read_text()) == {
            "host": "127.0.0.1",
            "port": server.port,
            "pid": server.process.pid,
        }
        sources = [make_tone(live_root / "in" / f"tone{i}.wav", 0.25 + 0.01 * i) for i in range(CONCURRENT_JOBS)]
        rss_before = server.rss_kib()

        def client(index: int) -> tuple[int, dict]:
            refused = 0
            with httpx2.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
                body = {"input": str(sources[index]), "effect": "tiny", "knobs": {"drive": index / CONCURRENT_JOBS}}
                while True:
                    response = http.post("/v1/render", json=body)
                    if response.status_code != 429:
                        break
                    assert response.json()["detail"].startswith("the job queue is full")
                    refused += 1
                    time.sleep(0.05)
                assert response.status_code == 202, response.text
                return refused, server.wait(response.json()["job_id"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(client, range(CONCURRENT_JOBS)))
        outputs = set()
        for index, (_, status) in enumerate(results):
            assert status["state"] == "done", status
            output = Path(status["result"]["output"])
            assert output.parent == server.output_dir.resolve() and output not in outputs
            outputs.add(output)
            frames = sf.info(str(output)).frames
            assert frames == sf.info(str(sources[index])).frames
        growth_mib = (server.rss_kib() - rss_before) / 1024
        refusals = sum(refused for refused, _ in results)  # 429s are allowed while the queue is full
        print(f"{CONCURRENT_JOBS} jobs: {refusals} submissions refused with 429, server RSS grew {growth_mib:.0f} MiB")
        assert growth_mib < 300, "memory grew by more than 300 MiB"
    finally:
        server.stop()
    assert not (live_root / "config" / "server.json").exists()  # removed on a clean shutdown


def test_sigkill_mid_job_leaves_no_output_and_restart_is_clean(live_root: Path) -> None:
    source = make_tone(live_root / "in" / "long.wav", 240.0)
    server = LiveServer(live_root, "--workers", "1")
    token = server.token
    try:
        job_id = server.post("/v1/render", {"input": str(source), "effect": "tiny", "output": "long.wav"}).json()[
            "job_id"
        ]
        deadline = time.monotonic() + 60
        while server.get(f"/v1/jobs/{job_id}").json()["progress"] == 0.0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    finally:
        server.stop()
    staging = server.output_dir / ".staging"
    visible = [p for p in server.output_dir.rglob("*") if not p.is_relative_to(staging)]
    assert visible == [], visible  # no partial file under any real name
    assert any(staging.iterdir())  # the killed job's half-written file is only in the staging area

    restarted = LiveServer(live_root, "--workers", "1")
    try:
        assert restarted.token == token  # the token survives; clients need no new setup
        assert json.loads((live_root / "config" / "server.json").read_text())["pid"] == restarted.process.pid
        assert not any(staging.iterdir())  # leftovers of the killed job are gone
        short = make_tone(live_root / "in" / "short.wav", 0.5)
        job = restarted.post("/v1/render", {"input": str(short), "effect": "tiny", "output": "long.wav"}).json()
        assert restarted.wait(job["job_id"])["state"] == "done"
        assert sf.info(str(server.output_dir / "long.wav")).frames == sf.info(str(short)).frames
    finally:
        restarted.stop()


def test_serve_refuses_non_loopback_hosts_and_busy_ports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 1
    assert "not a loopback address" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve", "--port", str(busy.getsockname()[1])]) == 1
    error = capsys.readouterr().err
    assert error.startswith("reatimbre: error: cannot listen on 127.0.0.1:") and error.count("\n") == 1
