"""``POST /v1/match`` end to end with the shipped match weights, and the shipped weights' sidecars."""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_jobs import wait_for_job
from fastapi.testclient import TestClient

from models.asp.infer import match_target, prepare_target
from models.asp.store import SHIPPED_MATCH_DIR, load_model, stored_variants
from models.audio_io import write_audio
from models.synth.match_synths import MATCH_SYNTHS, PATCH_SUFFIXES, KarsMatch, VitalMatch
from server.app import create_app
from server.commands.match import REFINE_HELP
from server.commands.match_data import SYNTH_CHOICES
from server.match_job import SynthName
from server.serverconfig import ServerConfig

TOKEN = "match-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "out", workers=1, queue_size=4)
    with TestClient(create_app(config), base_url="http://127.0.0.1:47810") as test_client:
        yield test_client


def _vital_target(path: Path) -> Path:
    synth = VitalMatch()
    audio = synth.render({"filter_1_on": 1.0, "filter_1_cutoff": 80.0}, 53, 1.0, 0.75, 1.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, audio, 44100)
    return path


def test_the_cli_and_the_server_offer_every_synth_match_knows() -> None:
    # Listed by hand there so that parsing a command line does not import torch; a synth added to the registry
    # must be added to both, or `match --synth` and POST /v1/match would refuse it.
    assert set(SYNTH_CHOICES) == set(typing.get_args(SynthName)) == set(MATCH_SYNTHS) == set(PATCH_SUFFIXES)


def test_the_refine_help_states_each_synths_own_budget() -> None:
    """`match --help` lists the default refinement renders by hand (no torch at parse time): it must be the truth."""
    for name, adapter in MATCH_SYNTHS.items():
        budget = adapter.refine_renders  # type: ignore[attr-defined]
        assert re.search(rf"\b{name} {budget}\b", REFINE_HELP, re.IGNORECASE), (name, budget, REFINE_HELP)


def test_shipped_weights_and_sidecars() -> None:
    assert stored_variants() == ["separate", "joint_encoder", "joint_decoder"]
    for variant in stored_variants():
        size_bytes = (SHIPPED_MATCH_DIR / f"{variant}.safetensors").stat().st_size
        assert size_bytes < (8_000_000 if variant == "separate" else 4_000_000)  # separate: four whole VAEs
        sidecar = json.loads((SHIPPED_MATCH_DIR / f"{variant}.json").read_text())
        assert sidecar["architecture"]["synths"] == ["vital", "amsynth", "kars", "dexed"]
        assert sidecar["command"].startswith("reatimbre match-train") and "held_out" in sidecar
        assert set(sidecar["held_out"]["synths"]) == {"vital", "amsynth", "kars", "dexed"}


def test_match_ranks_the_synths_asked_for_closest_first(tmp_path: Path) -> None:
    """How fast is measured in benchmarks/match_speed.py (docs/benchmarks.md), not here."""
    model, _ = load_model()
    target = prepare_target(*_read(_vital_target(tmp_path / "t.wav")))
    assert target.note == 53 and target.estimate is not None
    adapters = {"vital": VitalMatch(), "kars": KarsMatch()}
    results = match_target(model, target, ["vital", "kars"], adapters)
    assert {r.synth for r in results} == {"vital", "kars"} and results[0].lsd_db <= results[1].lsd_db
    assert all(r.seconds > 0.0 and r.cpu_seconds > 0.0 for r in results)  # each answer says what it took


def _read(path: Path):
    from models.audio_io import read_audio

    return read_audio(path)


def test_match_job_writes_the_patches(client: TestClient, tmp_path: Path) -> None:
    source = _vital_target(tmp_path / "in" / "lead.wav")
    response = client.post("/v1/match", json={"input": str(source), "synths": ["vital"]}, headers=AUTH)
    assert response.status_code == 202, response.text
    status = wait_for_job(client, response.json()["job_id"], AUTH, 240.0)
    assert status["state"] == "done", status
    ranking = status["result"]["ranking"]
    assert [r["synth"] for r in ranking] == ["vital"]
    assert status["result"]["note"] == 53
    for entry in ranking:
        patch = Path(entry["patch"])
        assert patch.parent == client.app.state.output_dir and patch.exists()
    vital = next(Path(r["patch"]) for r in ranking if r["synth"] == "vital")
    assert vital.suffix == ".vital" and "settings" in json.loads(vital.read_text())
    bad = client.post("/v1/match", json={"input": str(source), "synths": ["serum"]}, headers=AUTH)
    assert bad.status_code == 422
    relative = client.post("/v1/match", json={"input": "lead.wav"}, headers=AUTH)
    assert relative.status_code == 400 and "absolute" in relative.json()["detail"]
