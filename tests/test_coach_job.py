"""``POST /v1/coach`` end to end with the shipped Vital coach weights; its result is the REAPER bridge's JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_jobs import wait_for_job
from fastapi.testclient import TestClient

from extension.coach_steps import CoachPlan
from models.coach.store import SHIPPED_COACH_DIR
from server.app import create_app
from server.coach_job import COACH_KIND
from server.serverconfig import ServerConfig

TOKEN = "coach-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEMO_TARGET = SHIPPED_COACH_DIR / "targets" / "power-fifths-fx.flac"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "out", workers=1, queue_size=4)
    with TestClient(create_app(config, kinds=[COACH_KIND]), base_url="http://127.0.0.1:47810") as test_client:
        yield test_client


def _wait(client: TestClient, job_id: str, timeout_s: float = 120.0) -> dict:
    return wait_for_job(client, job_id, AUTH, timeout_s)


def test_coach_job_returns_steps_the_reaper_bridge_reads(client: TestClient) -> None:
    body = {"target": str(DEMO_TARGET), "preset": "power_fifths", "max_steps": 5}
    response = client.post("/v1/coach", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    status = _wait(client, response.json()["job_id"])
    assert status["state"] == "done", status
    result = status["result"]
    plan = CoachPlan.from_coach_json(result)
    assert plan.profile == "vital" and len(plan.steps) >= 1
    assert result["final_metrics"]["mse"] < 0.5 * result["initial_metrics"]["mse"]
    assert result["preset"] == "power_fifths" and not result["out_of_reach"]


def test_coach_job_default_preset_and_bad_requests(client: TestClient, tmp_path: Path) -> None:
    cases = {
        "missing target": ({"target": str(tmp_path / "nope.wav")}, 400, "not found"),
        "relative target": ({"target": "target.wav"}, 400, "absolute"),
        "unknown preset": ({"target": str(DEMO_TARGET), "preset": "nope"}, 400, "unknown preset"),
        "too many steps": ({"target": str(DEMO_TARGET), "max_steps": 9}, 422, "max_steps"),
        "preset and patch": ({"target": str(DEMO_TARGET), "preset": "saw", "patch": str(DEMO_TARGET)}, 400, "either"),
    }
    for name, (body, code, text) in cases.items():
        response = client.post("/v1/coach", json=body, headers=AUTH)
        assert response.status_code == code, name
        assert text in response.text, name
    response = client.post("/v1/coach", json={"target": str(DEMO_TARGET), "preset": "default", "max_steps": 1})
    assert response.status_code == 401  # the token is required
    response = client.post(
        "/v1/coach", json={"target": str(DEMO_TARGET), "preset": "default", "max_steps": 1}, headers=AUTH
    )
    assert response.status_code == 202
    assert _wait(client, response.json()["job_id"])["state"] == "done"
