"""Coach jobs honour cancel: the coach polls between synth renders, and the job ends within a second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.coach.store import SHIPPED_COACH_DIR
from models.errors import ReaTimbreError
from server.app import create_app
from server.coach_job import COACH_KIND
from server.serverconfig import ServerConfig

TOKEN = "coach-cancel-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEMO_TARGET = SHIPPED_COACH_DIR / "targets" / "power-fifths-fx.flac"


def test_the_coach_stops_at_the_next_render_once_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.coach.pipeline import coach_target_file
    from models.synth.vital import VitalSynth

    renders: list[int] = []
    real_render = VitalSynth.render

    def counting_render(self, *args, **kwargs):
        renders.append(1)
        return real_render(self, *args, **kwargs)

    monkeypatch.setattr(VitalSynth, "render", counting_render)
    with pytest.raises(ReaTimbreError, match="cancelled"):
        coach_target_file(DEMO_TARGET, "power_fifths", None, 5, should_cancel=lambda: len(renders) >= 2)
    assert len(renders) == 2  # a full 5-step run renders many more times


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "out", workers=1, queue_size=4)
    with TestClient(create_app(config, kinds=[COACH_KIND]), base_url="http://127.0.0.1:47810") as test_client:
        yield test_client


def test_cancelled_coach_job_ends_within_a_second_and_the_next_one_runs(client: TestClient) -> None:
    body = {"target": str(DEMO_TARGET), "preset": "power_fifths", "max_steps": 5}
    job_id = client.post("/v1/coach", json=body, headers=AUTH).json()["job_id"]
    deadline = time.monotonic() + 30
    while client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.005)
    client.delete(f"/v1/jobs/{job_id}", headers=AUTH)
    cancelled_at = time.monotonic()  # the server has the cancel now
    while True:
        asked_at = time.monotonic()  # measured before the request: a loaded machine may answer it late
        status = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if status["state"] not in ("queued", "running"):
            break
        assert asked_at - cancelled_at < 1.0, status
        time.sleep(0.01)
    assert status["state"] == "cancelled", status
    body["max_steps"] = 1
    next_id = client.post("/v1/coach", json=body, headers=AUTH).json()["job_id"]
    deadline = time.monotonic() + 60
    while (status := client.get(f"/v1/jobs/{next_id}", headers=AUTH).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert status["state"] == "done", status
