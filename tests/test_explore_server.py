"""``POST /v1/explore`` with ``compare_real``: the real effect's map beside the model's, or a clear refusal."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_server_render import make_tiny_model, make_tone

from server.app import create_app
from server.serverconfig import ServerConfig

TOKEN = "explore-real-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("REATIMBRE_DATA_DIR", str(tmp_path / "data"))
    make_tiny_model(tmp_path / "data", "tiny2", knob_names=("drive", "tone"))
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "renders", workers=1)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as test_client:
        yield test_client


def _wait(client: TestClient, job_id: str, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_explore_job_compares_with_the_real_effect(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.5)
    body = {"name": "compressor", "input": str(source), "grid": 2, "compare_real": True}
    response = client.post("/v1/explore", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    status = _wait(client, response.json()["job_id"])
    assert status["state"] == "done", status
    numbers = json.loads(Path(status["result"]["json"]).read_text())
    assert numbers["real"]["effect"] == "pedalboard.Compressor"
    assert len(numbers["difference"]["loudness_lu"]) == 2
    assert status["result"]["agreement"]["loudness_max_error_lu"] == numbers["agreement"]["loudness_max_error_lu"]


def test_explore_job_refuses_compare_real_for_a_model_without_a_real_effect(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.5)
    body = {"name": "tiny2", "input": str(source), "grid": 2, "compare_real": True}
    response = client.post("/v1/explore", json=body, headers=AUTH)
    assert response.status_code == 400 and "names no real effect it emulates" in response.json()["detail"]
    plain = client.post("/v1/explore", json={**body, "compare_real": False}, headers=AUTH)
    assert plain.status_code == 202
    assert "real" not in _wait(client, plain.json()["job_id"])["result"]
