"""The steer and explore job kinds through the API, on small real inputs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from api_jobs import wait_for_job
from fastapi.testclient import TestClient
from test_server_render import SAMPLE_RATE, make_tiny_model, make_tone

from server.app import create_app
from server.serverconfig import ServerConfig

TOKEN = "steer-explore-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("REATIMBRE_DATA_DIR", str(tmp_path / "data"))
    make_tiny_model(tmp_path / "data", "tiny2", knob_names=("drive", "tone"))
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "renders", workers=1)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as test_client:
        yield test_client


def _wait(client: TestClient, job_id: str, timeout_s: float = 60.0) -> dict:
    return wait_for_job(client, job_id, AUTH, timeout_s)


def _pair(folder: Path, seconds: float = 4.0) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    dry = 0.4 * np.sin(2 * np.pi * 110 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2 + 0.05 * rng.standard_normal(len(t))
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "dry.wav", dry, SAMPLE_RATE, subtype="FLOAT")
    sf.write(folder / "wet.wav", np.tanh(4 * dry) / 2, SAMPLE_RATE, subtype="FLOAT")
    return folder / "dry.wav", folder / "wet.wav"


def test_steer_trains_a_model_that_then_renders(client: TestClient, tmp_path: Path) -> None:
    dry, wet = _pair(tmp_path / "pair")
    body = {"dry": str(dry), "wet": str(wet), "name": "my-drive", "memory": "short", "minutes": 0.05}
    body["keep_anyway"] = True  # 5 s of training need not beat the dry input; this test is about the job
    response = client.post("/v1/steer", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    clash = client.post("/v1/steer", json=body, headers=AUTH)  # same name while the first is training
    assert clash.status_code == 400
    status = _wait(client, response.json()["job_id"])
    assert status["state"] == "done", status
    result = status["result"]
    assert result["model"] == "my-drive" and result["heldout_mrstft"] > 0
    assert any(stage.startswith("training: step") for stage in status["seen_stages"])
    names = [model["name"] for model in client.get("/v1/models", headers=AUTH).json()["models"]]
    assert "my-drive" in names
    again = client.post("/v1/steer", json=body, headers=AUTH)
    assert again.status_code == 400 and "already exists" in again.json()["detail"]
    render = client.post("/v1/render", json={"input": str(dry), "effect": "my-drive"}, headers=AUTH)
    assert _wait(client, render.json()["job_id"])["state"] == "done"


def test_steer_result_flags_a_model_no_better_than_dry(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.steer

    monkeypatch.setattr(models.steer, "CLEARLY_BETTER_RATIO", 0.0)  # no model is clearly better than dry
    dry, wet = _pair(tmp_path / "pair")
    body = {"dry": str(dry), "wet": str(wet), "name": "flagged", "memory": "short", "minutes": 0.05}
    status = _wait(client, client.post("/v1/steer", json=body, headers=AUTH).json()["job_id"])
    assert status["state"] == "done", status
    result = status["result"]
    assert result["worse_than_dry"] is True and result["saved"] is False and "doing nothing" in result["message"]
    assert "flagged" not in [m["name"] for m in client.get("/v1/models", headers=AUTH).json()["models"]]


def test_steer_refuses_bad_requests(client: TestClient, tmp_path: Path) -> None:
    dry, wet = _pair(tmp_path / "pair")
    cases = [
        ({"dry": str(dry), "wet": str(tmp_path / "none.wav"), "name": "x"}, 400),
        ({"dry": str(dry), "wet": str(wet), "name": "bad name!"}, 400),
        ({"dry": str(dry), "wet": str(wet), "name": "x", "memory": "huge"}, 422),
        ({"dry": str(dry), "wet": str(wet), "name": "x", "minutes": 0}, 422),
    ]
    for body, expected in cases:
        response = client.post("/v1/steer", json=body, headers=AUTH)
        assert response.status_code == expected, response.text


def test_explore_writes_a_map_inside_the_output_dir(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.5)
    response = client.post("/v1/explore", json={"name": "tiny2", "input": str(source), "grid": 3}, headers=AUTH)
    assert response.status_code == 202, response.text
    status = _wait(client, response.json()["job_id"])
    assert status["state"] == "done", status
    png, data = Path(status["result"]["png"]), Path(status["result"]["json"])
    assert png.parent == data.parent == client.app.state.output_dir
    assert png.read_bytes().startswith(b"\x89PNG") and png.stem == data.stem
    grid = json.loads(data.read_text())["loudness_lufs"]
    assert len(grid) == 3 and all(len(row) == 3 for row in grid)
    bad = client.post("/v1/explore", json={"name": "nope", "input": str(source)}, headers=AUTH)
    assert bad.status_code == 400 and "unknown effect" in bad.json()["detail"]
    too_big = client.post("/v1/explore", json={"name": "tiny2", "input": str(source), "grid": 99}, headers=AUTH)
    assert too_big.status_code == 400 and "from 2 to 21" in too_big.json()["detail"]


def test_cancelled_steer_saves_no_model(client: TestClient, tmp_path: Path) -> None:
    dry, wet = _pair(tmp_path / "pair")
    body = {"dry": str(dry), "wet": str(wet), "name": "never", "memory": "short", "minutes": 2}
    job_id = client.post("/v1/steer", json=body, headers=AUTH).json()["job_id"]
    deadline = time.monotonic() + 30
    while not client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["stage"].startswith("training: step"):
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.02)
    client.delete(f"/v1/jobs/{job_id}", headers=AUTH)
    status = _wait(client, job_id)
    assert status["state"] == "cancelled" and status["result"] is None
    assert "never" not in [model["name"] for model in client.get("/v1/models", headers=AUTH).json()["models"]]
    assert not list((tmp_path / "data" / "models").glob("never*"))


# --------------------------------------------------------------------------- explore beside the real effect
def test_explore_job_compares_with_the_real_effect(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.5)
    body = {"name": "compressor", "input": str(source), "grid": 2, "compare_real": True}
    response = client.post("/v1/explore", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    status = _wait(client, response.json()["job_id"], timeout_s=120.0)
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
