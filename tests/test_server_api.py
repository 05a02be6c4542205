"""The HTTP API's contract, exercised with a small job kind defined here (no audio involved)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_jobs import wait_for_job
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from models.errors import ReaTimbreError
from server.app import create_app
from server.job_kinds import JobEnv, JobKind, PreparedJob
from server.jobs import JobContext
from server.outputs import publish, resolve_output, staged_file
from server.serverconfig import ServerConfig

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GATE = threading.Event()


class NoteRequest(BaseModel):
    text: str = Field(max_length=100)
    output: str | None = None
    wait_for_gate: bool = False


def prepare_note(request: BaseModel, env: JobEnv) -> PreparedJob:
    """Writes ``text`` to a file under the output directory, the way real kinds publish results."""
    assert isinstance(request, NoteRequest)
    if request.text == "refuse":
        raise ReaTimbreError("this note is refused")
    final = resolve_output(env.output_dir, request.output, "note")
    env.reservations.reserve(final)

    def run(ctx: JobContext) -> dict:
        ctx.progress(0.25, "writing")
        while request.wait_for_gate and not GATE.wait(0.005):
            if ctx.should_cancel():
                raise ReaTimbreError("cancelled")
        with staged_file(env.output_dir, ctx.job_id) as staged:
            staged.write(request.text.encode())
            publish(env.output_dir, staged, final)
        return {"output": str(final)}

    return PreparedJob(run, cleanup=lambda: env.reservations.release(final))


NOTE_KIND = JobKind("note", NoteRequest, prepare_note, "write a note")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    GATE.clear()
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "renders", workers=1, queue_size=2, max_body_bytes=2048)
    with TestClient(create_app(config, kinds=[NOTE_KIND]), base_url="http://127.0.0.1:47810") as test_client:
        yield test_client
    GATE.set()


def _wait_done(client: TestClient, job_id: str, timeout_s: float = 5.0) -> dict:
    return wait_for_job(client, job_id, AUTH, timeout_s)


def test_health_needs_the_token(client: TestClient) -> None:
    assert client.get("/v1/health", headers=AUTH).json() == {"status": "ok", "version": "0.1.0"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = client.get("/v1/health", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"].startswith("missing or wrong token")


def test_non_loopback_host_is_refused_even_with_the_token(client: TestClient) -> None:
    response = client.get("/v1/health", headers={**AUTH, "Host": "attacker.example:47810"})
    assert response.status_code == 403 and "localhost" in response.json()["detail"]
    assert client.get("/v1/health", headers={**AUTH, "Host": "localhost:47810"}).status_code == 200


def test_submit_poll_and_result(client: TestClient) -> None:
    response = client.post("/v1/note", json={"text": "hello", "output": "sub/hello.wav"}, headers=AUTH)
    assert response.status_code == 202
    status = _wait_done(client, response.json()["job_id"])
    output = Path(status["result"]["output"])
    assert status["state"] == "done" and status["progress"] == 1.0 and status["kind"] == "note"
    assert output == client.app.state.output_dir / "sub" / "hello.wav" and output.read_text() == "hello"
    assert list((client.app.state.output_dir / ".staging").iterdir()) == []


def test_bad_requests_get_one_line_4xx(client: TestClient) -> None:
    cases = [
        (
            client.post("/v1/note", content=b'{"text": ', headers={**AUTH, "content-type": "application/json"}),
            422,
        ),
        (client.post("/v1/note", json={"text": 5}, headers=AUTH), 422),
        (client.post("/v1/note", json={"nothing": True}, headers=AUTH), 422),
        (client.post("/v1/note", json={"text": "refuse"}, headers=AUTH), 400),
        (client.post("/v1/note", json={"text": "x", "output": "../escape.wav"}, headers=AUTH), 400),
        (client.post("/v1/note", json={"text": "x", "output": "/tmp/escape.wav"}, headers=AUTH), 400),
        (client.post("/v1/note", content=b"{" + b" " * 4096 + b"}", headers=AUTH), 413),
        (client.get("/v1/jobs/does-not-exist", headers=AUTH), 404),
        (client.delete("/v1/jobs/does-not-exist", headers=AUTH), 404),
        (client.get("/v1/nothing-here", headers=AUTH), 404),
        (client.put("/v1/note", headers=AUTH), 405),
    ]
    for response, expected in cases:
        assert response.status_code == expected, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail and "\n" not in detail


def test_cancel_and_queue_full(client: TestClient) -> None:
    def submit(name: str):
        return client.post(
            "/v1/note", json={"text": name, "output": f"{name}.wav", "wait_for_gate": True}, headers=AUTH
        )

    first = submit("first").json()["job_id"]
    deadline = time.monotonic() + 5
    while client.get(f"/v1/jobs/{first}", headers=AUTH).json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    queued = [submit(f"q{i}") for i in range(2)]
    assert [r.status_code for r in queued] == [202, 202]
    refused = submit("overflow")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    cancelled = client.delete(f"/v1/jobs/{queued[0].json()['job_id']}", headers=AUTH)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert client.delete(f"/v1/jobs/{first}", headers=AUTH).status_code == 200
    assert _wait_done(client, first)["state"] == "cancelled"
    GATE.set()
    assert _wait_done(client, queued[1].json()["job_id"])["state"] == "done"
    output_dir = client.app.state.output_dir
    assert sorted(p.name for p in output_dir.glob("*.wav")) == ["q1.wav"]  # cancelled jobs wrote nothing


def test_same_output_twice_is_refused_while_the_first_is_pending(client: TestClient) -> None:
    body = {"text": "a", "output": "same.wav", "wait_for_gate": True}
    first = client.post("/v1/note", json=body, headers=AUTH)
    second = client.post("/v1/note", json=body, headers=AUTH)
    assert first.status_code == 202 and second.status_code == 400
    GATE.set()
    assert _wait_done(client, first.json()["job_id"])["state"] == "done"
    again = client.post("/v1/note", json=body, headers=AUTH)
    assert again.status_code == 400 and "already exists" in again.json()["detail"]


def test_openapi_schema_lists_the_job_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers=AUTH).json()
    assert {"/v1/health", "/v1/models", "/v1/note", "/v1/jobs/{job_id}"} <= set(schema["paths"])
    assert "202" in schema["paths"]["/v1/note"]["post"]["responses"]
