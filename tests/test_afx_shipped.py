"""The shipped afx models (issue 28 item 4): ``leslie`` (speed knob) and ``plate`` (decay knob). Each is listed
with its knob, loads, renders at each knob end with the input's length and lined up with one pass of its network,
through the file renderer (resampled), batch and the server as every shipped model does, its sidecar's held-out
figures beat the dry input at every knob value, and it is nearer the real effect than the dry input on a clip of
another origin at each knob end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from api_jobs import wait_for_job
from fastapi.testclient import TestClient

from models.afx import leslie as leslie_model
from models.afx.experiment import KEY_METRICS
from models.afx.heldout import heldout_material
from models.afx.metrics import METRICS, t60_seconds
from models.afx.reverbs import plate, plate_available
from models.afx.rotor_network import RotorNetwork
from models.afx.tasks import task
from models.library import SHIPPED_DIR, load_model
from models.multi_render import render_many
from models.pedals.lfo_tcn import LFOTCN
from models.render import render_file
from server.app import create_app
from server.cli import main
from server.serverconfig import ServerConfig

SHIPPED = {"leslie": "speed", "plate": "decay"}
RATE = 16_000
TOKEN = "afx-shipped-token-0123456789"


def _ends(name: str) -> list[float]:
    knob = next(k for k in load_model(name).info.knobs if k.name == SHIPPED[name])
    return [knob.minimum, knob.maximum]


def test_both_are_listed_as_shipped_with_their_knob_and_no_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert [k["name"] for k in listed["leslie"]["knobs"]] == ["speed"]
    assert (listed["leslie"]["knobs"][0]["min"], listed["leslie"]["knobs"][0]["max"]) == (0.0, 1.0)
    assert [k["name"] for k in listed["plate"]["knobs"]] == ["decay"]
    assert (listed["plate"]["knobs"][0]["min"], listed["plate"]["knobs"][0]["max"]) == (0.5, 3.0)
    for name in SHIPPED:
        assert listed[name]["kind"] == "shipped" and listed[name]["quality_warnings"] == []
        assert listed[name]["latency_samples"] == 0


@pytest.mark.parametrize("name", list(SHIPPED))
def test_the_sidecar_is_reproducible_and_better_than_dry_at_every_knob_value(name: str) -> None:
    info = load_model(name).info
    assert info.weights_path.parent == SHIPPED_DIR and info.weights_path.stat().st_size < 2_000_000
    sidecar = info.sidecar
    command = sidecar["training"]["command"]
    assert command.startswith("reatimbre afx-train --arch ") and f"--task {name} " in command
    assert f"--name {name}" in command and "--out models/weights" in command
    assert sidecar["emulates"]["task"] == name and sidecar["sample_rate"] == RATE
    goals = sidecar["metrics"]["heldout_goals"]
    keys = KEY_METRICS[task(name).family]
    assert goals["meets_goals"] and goals["knob"] == SHIPPED[name]
    assert sorted(point["value"] for point in goals["per_knob_value"]) == sorted(task(name).training_values)
    assert {point["value"] for point in goals["per_knob_value"]} >= set(_ends(name))
    for point in goals["per_knob_value"]:
        assert set(point["ratio"]) == set(keys) and all(r < 1 for r in point["ratio"].values())
    heldout = sidecar["metrics"]["heldout"]
    for key in keys:
        assert heldout["model"][key] < heldout["dry"][key] and heldout["ratio"][key] < 1


def _one_pass(name: str, audio: np.ndarray, value: float) -> np.ndarray:
    """The network over the whole signal at once (silence before it), told that it starts the render."""
    effect = load_model(name)
    network = effect.model
    control = effect.control_vector({SHIPPED[name]: value})[None]
    rf = network.receptive_field
    x = torch.nn.functional.pad(torch.from_numpy(audio)[:, None], (rf - 1, 0))
    told = isinstance(network, RotorNetwork | LFOTCN)
    with torch.no_grad():
        out = network(x, control.expand(len(audio), -1), *([-(rf - 1)] if told else []))
    return out[:, 0].numpy()


@pytest.mark.parametrize("name", list(SHIPPED))
def test_each_knob_end_renders_lined_up_with_one_pass(name: str) -> None:
    effect = load_model(name)
    audio = (0.3 * np.random.default_rng(1).standard_normal((2, 7001))).astype(np.float32)
    outs = []
    for value in _ends(name):
        out = effect.process(audio, {SHIPPED[name]: value})
        assert out.shape == audio.shape and np.isfinite(out).all()
        np.testing.assert_allclose(out, _one_pass(name, audio, value), atol=1e-5)
        outs.append(out)
    assert np.abs(outs[0] - outs[1]).max() > 0.01  # the knob does something
    signals = [audio, audio[:1, :2500], np.zeros((2, 0), np.float32)]
    for signal, out in zip(signals, render_many(effect, signals, {SHIPPED[name]: _ends(name)[1]}), strict=True):
        np.testing.assert_allclose(out, effect.process(signal, {SHIPPED[name]: _ends(name)[1]}), atol=1e-5)


def _clip(seconds: float) -> np.ndarray:
    return heldout_material(seconds, RATE, 4242).astype(np.float32)


@pytest.mark.parametrize("speed", [0.0, 1.0])
def test_the_leslie_is_nearer_the_numpy_leslie_than_dry_at_each_end(speed: float) -> None:
    clip = _clip(6.0)
    real = leslie_model.leslie(clip.astype(np.float64), RATE, speed)
    out = load_model("leslie").process(clip[None], {"speed": speed})[0]
    for key in KEY_METRICS["leslie"]:
        assert METRICS[key](real, out, RATE) < METRICS[key](real, clip, RATE), key


@pytest.mark.skipif(not plate_available(), reason="needs Debian's dragonfly-reverb-vst")
@pytest.mark.parametrize("decay", [0.5, 3.0])
def test_the_plate_is_nearer_dragonfly_than_dry_at_each_end(decay: float) -> None:
    clip = np.pad(_clip(3.0), (0, int(3.5 * RATE)))
    real = plate(clip.astype(np.float64), RATE, decay)
    out = load_model("plate").process(clip[None], {"decay": decay})[0]
    for key in ("mrstft", "logpower_mse"):
        assert METRICS[key](real, out, RATE) < METRICS[key](real, clip, RATE), key


def test_the_plate_decay_knob_lengthens_the_tail() -> None:
    impulse = np.zeros((1, 4 * RATE), np.float32)
    impulse[0, 0] = 1.0
    effect = load_model("plate")
    short, long = (t60_seconds(effect.process(impulse, {"decay": d})[0], RATE) for d in (0.5, 3.0))
    assert long > short + 1.0


@pytest.mark.parametrize("name", list(SHIPPED))
def test_cli_file_render_at_44k_keeps_length_and_the_server_renders_the_same(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.wav"
    audio = _clip(1.5)
    sf.write(source, np.stack([audio[::-1], audio]).T, 44_100, subtype="FLOAT")
    value = _ends(name)[1]
    out = tmp_path / "cli.wav"
    assert main(["render", str(source), "-o", str(out), "--effect", name, "--knob", f"{SHIPPED[name]}={value:g}",
                 "--tail", "0", "--quiet"]) == 0  # fmt: skip
    rendered, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == 44_100 and rendered.shape == (len(audio), 2)
    expected = tmp_path / "api.wav"
    render_file(source, expected, name, {SHIPPED[name]: value}, tail_seconds=0.0)
    monkeypatch.setenv("REATIMBRE_DATA_DIR", str(tmp_path / "data"))
    config = ServerConfig(token=TOKEN, output_dir=tmp_path / "renders", workers=1, queue_size=4)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(config), base_url="http://127.0.0.1:47811") as client:
        body = {"input": str(source), "effect": name, "knobs": {SHIPPED[name]: value}, "tail_seconds": 0.0}
        response = client.post("/v1/render", json=body, headers=auth)
        assert response.status_code == 202, response.text
        status = wait_for_job(client, response.json()["job_id"], auth, 60.0)
    assert status["state"] == "done", status
    served, _ = sf.read(status["result"]["output"], dtype="float32", always_2d=True)
    np.testing.assert_allclose(served, sf.read(expected, dtype="float32", always_2d=True)[0], atol=1e-5)
    np.testing.assert_allclose(rendered, served, atol=1e-5)
