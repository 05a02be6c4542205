"""The render route end to end with a real (tiny, untrained) model in a temporary user data directory."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from api_jobs import wait_for_job
from fastapi.testclient import TestClient

from models.library import save_model
from models.tcn import ConditionedTCN, TCNConfig
from server.app import create_app
from server.serverconfig import ServerConfig

TOKEN = "render-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SAMPLE_RATE = 22050


def make_tiny_model(data_dir: Path, name: str = "tiny", knob_names: tuple[str, ...] = ("drive",)) -> None:
    """Save a small seeded model with 0..1 knobs as a user model under ``data_dir`` (REATIMBRE_DATA_DIR)."""
    torch.manual_seed(0)
    config = TCNConfig(channels=4, kernel_size=3, dilation_growth=2, layers=3, cond_dim=len(knob_names))
    model = ConditionedTCN(config)
    knobs = [{"name": knob, "unit": "", "minimum": 0.0, "maximum": 1.0, "default": 0.5} for knob in knob_names]
    sidecar = {
        "description": "tiny untrained test model",
        "sample_rate": SAMPLE_RATE,
        "knobs": knobs,
        "tail_seconds": 0.0,
    }
    save_model(model, sidecar, data_dir / "models", name)


def make_tone(path: Path, seconds: float, sample_rate: int = SAMPLE_RATE) -> Path:
    """A mono sine burst as 16-bit WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), sample_rate, subtype="PCM_16")
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "data"
    monkeypatch.setenv("REATIMBRE_DATA_DIR", str(directory))
    make_tiny_model(directory)
    return directory


@pytest.fixture
def client(data_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "renders", workers=1, queue_size=4)
    with TestClient(create_app(config), base_url="http://127.0.0.1:47810") as test_client:
        yield test_client


def _wait(client: TestClient, job_id: str, timeout_s: float = 30.0) -> dict:
    return wait_for_job(client, job_id, AUTH, timeout_s)


def test_models_route_lists_the_user_model(client: TestClient) -> None:
    models = client.get("/v1/models", headers=AUTH).json()["models"]
    tiny = next(model for model in models if model["name"] == "tiny")
    assert tiny["kind"] == "user" and tiny["sample_rate"] == SAMPLE_RATE
    assert tiny["knobs"] == [{"name": "drive", "unit": "", "min": 0.0, "max": 1.0, "default": 0.5}]


def test_render_job_writes_a_real_file_inside_the_output_dir(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.5)
    body = {"input": str(source), "output": None, "effect": "tiny", "knobs": {"drive": 0.8}, "mix": 0.5}
    response = client.post("/v1/render", json=body, headers=AUTH)
    assert response.status_code == 202
    status = _wait(client, response.json()["job_id"])
    assert status["state"] == "done" and status["progress"] == 1.0, status
    result = status["result"]
    output = Path(result["output"])
    assert output.parent == client.app.state.output_dir and output.name.startswith("tone-tiny-")
    assert result["effect"] == "tiny" and result["knobs"] == {"drive": 0.8}
    assert result["duration_seconds"] == pytest.approx(0.5, abs=0.01) and result["realtime_factor"] > 0
    audio, rate = sf.read(output)
    assert rate == SAMPLE_RATE and len(audio) == len(sf.read(source)[0])
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) > 0
    assert list((client.app.state.output_dir / ".staging").iterdir()) == []


def test_render_refuses_bad_requests_before_queueing(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "tone.wav", 0.1)
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    cases = {
        "unknown effect": ({"input": str(source), "effect": "nope"}, 400, "unknown effect"),
        "unknown knob": ({"input": str(source), "effect": "tiny", "knobs": {"volume": 1}}, 400, "volume"),
        "knob out of range": ({"input": str(source), "effect": "tiny", "knobs": {"drive": 2}}, 400, "range"),
        "relative input": ({"input": "tone.wav", "effect": "tiny"}, 400, "absolute"),
        "missing input": ({"input": str(tmp_path / "nope.wav"), "effect": "tiny"}, 400, "not found"),
        "output escapes": ({"input": str(source), "effect": "tiny", "output": "../../x.wav"}, 400, "outside"),
        "mix over 1": ({"input": str(source), "effect": "tiny", "mix": 1.5}, 422, "mix"),
        "NaN knob": (
            json.dumps({"input": str(source), "effect": "tiny"})[:-1] + ', "knobs": {"drive": NaN}}',
            422,
            "knobs.drive",
        ),
    }
    for name, (body, status, fragment) in cases.items():
        if isinstance(body, str):
            response = client.post("/v1/render", content=body, headers={**AUTH, "content-type": "application/json"})
        else:
            response = client.post("/v1/render", json=body, headers=AUTH)
        assert response.status_code == status, (name, response.text)
        assert fragment in response.json()["detail"], (name, response.text)
    not_audio = client.post(
        "/v1/render", json={"input": str(tmp_path / "in" / "notes.txt"), "effect": "tiny"}, headers=AUTH
    )
    failed = _wait(client, not_audio.json()["job_id"])
    assert failed["state"] == "failed" and "\n" not in failed["error"]
    assert sorted(p.name for p in client.app.state.output_dir.iterdir()) == [".staging"]


def test_input_size_limit(data_dir: Path, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "big.wav", 0.2)
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "renders", max_input_bytes=1000)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        response = client.post("/v1/render", json={"input": str(source), "effect": "tiny"}, headers=AUTH)
    assert response.status_code == 413 and "limit is 1000 bytes" in response.json()["detail"]


def test_cancelling_a_render_leaves_no_file(client: TestClient, tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in" / "long.wav", 120.0)
    job_id = client.post("/v1/render", json={"input": str(source), "effect": "tiny"}, headers=AUTH).json()["job_id"]
    deadline = time.monotonic() + 10
    while client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()["progress"] == 0.0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    client.delete(f"/v1/jobs/{job_id}", headers=AUTH)
    assert _wait(client, job_id)["state"] == "cancelled"
    output_dir = client.app.state.output_dir
    assert [p.name for p in output_dir.iterdir()] == [".staging"] and not any((output_dir / ".staging").iterdir())
