"""Device choice on the CPU: --device / $REATIMBRE_DEVICE resolution, the flags of every command, weights loaded
onto the requested device, sidecars recording it, batch prefetching, and the CUDA-only options refused on the CPU.
(What really runs on a GPU is in tests/test_device_cuda.py, skipped without CUDA.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

from models.device import DEVICE_ENV, module_device, resolve_device
from models.errors import ReaTimbreError
from models.fit import BatchFeeder, fit
from models.library import find_model, load_info
from models.tcn import ConditionedTCN, TCNConfig
from server.cli import build_parser, main

NO_CUDA = not torch.cuda.is_available()


def test_cpu_is_the_default_and_the_flag_beats_the_environment() -> None:
    assert resolve_device(None, environ={}).device == torch.device("cpu")
    assert resolve_device(None, environ={}).source == "default"
    from_env = resolve_device(None, environ={DEVICE_ENV: "auto"}, cuda_available=lambda: True)
    assert from_env.device.type == "cuda" and from_env.source == f"${DEVICE_ENV}"
    flag = resolve_device("cpu", environ={DEVICE_ENV: "cuda"}, cuda_available=lambda: True)
    assert flag.device.type == "cpu" and flag.source == "--device"


def test_auto_takes_cuda_only_when_torch_sees_it_and_says_which() -> None:
    without = resolve_device("auto", cuda_available=lambda: False)
    assert without.device.type == "cpu"
    assert without.describe() == "device: cpu (auto: torch sees no CUDA device)"
    with_cuda = resolve_device("auto", cuda_available=lambda: True)
    assert with_cuda.device.type == "cuda" and with_cuda.is_cuda


@pytest.mark.parametrize("requested", ["cuda", "cuda:0", "CUDA"])
def test_cuda_without_cuda_is_a_one_line_error(requested: str) -> None:
    with pytest.raises(ReaTimbreError, match="torch sees no CUDA device") as caught:
        resolve_device(requested, cuda_available=lambda: False)
    assert "\n" not in str(caught.value) and "--device cpu" in str(caught.value)


@pytest.mark.parametrize(("requested", "environ", "names"), [
    ("gpu", {}, "--device"),
    ("cpu:0", {}, "--device"),
    ("cuda:x", {}, "--device"),
    (None, {DEVICE_ENV: "metal"}, f"${DEVICE_ENV}"),
])  # fmt: skip
def test_unknown_devices_are_refused_naming_where_they_came_from(requested, environ, names) -> None:
    with pytest.raises(ReaTimbreError, match=r"must be auto, cpu, cuda or cuda:N") as caught:
        resolve_device(requested, environ=environ, cuda_available=lambda: True)
    assert str(caught.value).startswith(names)


def test_a_missing_cuda_index_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ReaTimbreError, match="only 1 CUDA device"):
        resolve_device("cuda:3", cuda_available=lambda: True)


@pytest.mark.parametrize(
    "argv",
    [
        ["steer", "dry.wav", "wet.wav", "--name", "x"],
        ["coach-train", "--data", "d", "--out", "o"],
        ["serve"],
        ["render", "in.wav", "--effect", "reverb"],
        ["batch", "in", "--effect", "reverb", "--out", "o"],
    ],
)
def test_commands_take_a_device_flag(argv: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(argv).device is None  # then $REATIMBRE_DEVICE, else the CPU
    assert parser.parse_args([*argv, "--device", "cuda"]).device == "cuda"


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize(
    "argv",
    [
        ["steer", "missing-dry.wav", "missing-wet.wav", "--name", "x", "--device", "cuda"],
        ["coach-train", "--data", "missing", "--out", "o", "--device", "cuda"],
        ["serve", "--device", "cuda"],
        ["render", "missing.wav", "--effect", "reverb", "--device", "cuda"],
        ["batch", "missing", "--effect", "reverb", "--out", "o", "--device", "cuda"],
        ["steer", "missing-dry.wav", "missing-wet.wav", "--name", "x", "--bf16"],
    ],
)
def test_commands_refuse_cuda_without_cuda_before_doing_anything(argv, capsys, monkeypatch) -> None:
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "torch sees no CUDA device" in error or "bf16 needs CUDA" in error
    assert len(error.strip().splitlines()) == 1


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
def test_the_environment_variable_reaches_the_commands(capsys, monkeypatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    assert main(["steer", "missing-dry.wav", "missing-wet.wav", "--name", "x"]) == 1
    assert f"${DEVICE_ENV} cuda: torch sees no CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
def test_train_effect_refuses_cuda_and_bf16_without_cuda(capsys) -> None:
    for argv in (
        ["train-effect", "--effect", "reverb", "--device", "cuda"],
        ["train-effect", "--effect", "reverb", "--bf16"],
    ):
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "torch sees no CUDA device" in err and "--bf16 needs CUDA" in err


def test_recipes_scale_the_batch_on_cuda_only() -> None:
    from models.effect_training import RECIPES as TRAIN_RECIPES
    from models.steer import RECIPES as STEER_RECIPES

    for recipe in [*STEER_RECIPES.values(), *TRAIN_RECIPES.values()]:
        assert recipe.batch_size_on(torch.device("cpu")) == recipe.batch_size
        assert recipe.batch_size_on(torch.device("cuda")) == recipe.batch_size * recipe.cuda_batch_scale
        assert recipe.cuda_batch_scale >= 4


def test_weights_load_onto_the_requested_device(tiny_model: str) -> None:
    info = find_model(tiny_model)
    assert load_info(info).device == torch.device("cpu")
    on_meta = load_info(info, "meta")  # any device torch has here: the weights go where they are asked to
    assert {p.device.type for p in on_meta.model.parameters()} == {"meta"}


def test_the_training_sidecar_records_the_device(tiny_model: str) -> None:
    training = json.loads(find_model(tiny_model).weights_path.with_suffix(".json").read_text())["training"]
    assert training["device"] == {"device": "cpu", "requested": "cpu", "source": "default"}
    assert training["bf16"] is False and training["batch_size"] == training["recipe"]["batch_size"]


def test_steering_says_and_records_the_device(tmp_path: Path) -> None:
    from models.steer import steer_model
    from tests.test_steer import SR, TINY, gain
    from tests.test_steer_pair import bursts

    lines: list[str] = []
    dry = bursts(seconds=3.0)
    result = steer_model(
        dry, gain(dry), "steer-device", "short", 1, sample_rate=SR, steps=4, recipe=TINY, directory=tmp_path,
        report=lines.append, keep_anyway=True,
    )  # fmt: skip
    assert result["device"] == "cpu"
    assert "device: cpu (the default); 2 crops of 4096 samples per step" in lines
    sidecar = json.loads((tmp_path / "steer-device.json").read_text())
    assert sidecar["training"]["device"]["device"] == "cpu" and sidecar["training"]["batch_size"] == 2


def test_steering_refuses_bf16_on_the_cpu(tmp_path: Path) -> None:
    from models.steer import steer_model
    from tests.test_steer import SR, TINY

    with pytest.raises(ReaTimbreError, match="bf16 needs CUDA"):
        steer_model(torch.zeros(1, SR).numpy(), torch.zeros(1, SR).numpy(), "x", sample_rate=SR, recipe=TINY,
                    directory=tmp_path, bf16=True)  # fmt: skip


def test_fit_refuses_bf16_on_the_cpu() -> None:
    model, batch = _toy()
    with pytest.raises(ReaTimbreError, match="bf16 autocast needs a CUDA device"):
        fit(model, batch, torch.nn.functional.mse_loss, steps=2, bf16=True)


def _toy(seed: int = 0):
    torch.manual_seed(seed)
    model = ConditionedTCN(TCNConfig(channels=4, kernel_size=3, dilation_growth=2, layers=2))
    rf = model.receptive_field
    generator = torch.Generator().manual_seed(seed)

    def batch(step: int):
        x = torch.randn(2, 1, 128 + rf - 1, generator=generator)
        return x, torch.zeros(2, 2), 0.5 * x[..., rf - 1 :]

    return model, batch


def test_prefetching_trains_on_the_same_batches_in_the_same_order() -> None:
    results = []
    for prefetch in (False, True):
        model, batch = _toy()
        fit(model, batch, torch.nn.functional.mse_loss, steps=20, learning_rate=1e-2, prefetch=prefetch)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(results[0], results[1])


def test_the_feeder_makes_the_next_batch_in_the_background_while_a_step_runs() -> None:
    made: list[tuple[int, str]] = []

    def batch(step: int):
        made.append((step, threading.current_thread().name))
        return torch.full((1,), float(step)), torch.zeros(1), torch.zeros(1)

    feeder = BatchFeeder(batch, torch.device("cpu"), prefetch=True)
    try:
        assert float(feeder.get(0)[0]) == 0.0
        deadline = time.monotonic() + 5
        while len(made) < 2 and time.monotonic() < deadline:  # step 1 is made without being asked for
            time.sleep(0.01)
        assert [s for s, _ in made] == [0, 1] and made[1][1].startswith("batch-feeder")
        assert float(feeder.get(1)[0]) == 1.0 and float(feeder.get(2)[0]) == 2.0
    finally:
        feeder.close()
    assert [s for s, _ in made] in ([0, 1, 2], [0, 1, 2, 3])  # in order, at most one ahead (closing cancels it)


def test_the_time_budget_holds_with_prefetching() -> None:
    model, batch = _toy()
    result = fit(model, batch, torch.nn.functional.mse_loss, steps=10**6, max_seconds=1.0, prefetch=True)
    assert result.stopped_because == "time budget" and result.seconds < 2.5
    assert result.record()["device"] == "cpu"


def test_fit_moves_the_model_to_the_device_and_leaves_it_there() -> None:
    model, batch = _toy()
    result = fit(model, batch, torch.nn.functional.mse_loss, steps=2, device="cpu")
    assert module_device(model) == torch.device("cpu") and result.device == "cpu"


def test_server_jobs_train_on_the_servers_device(monkeypatch, tmp_path: Path) -> None:
    import models.steer
    from server.job_kinds import JobEnv
    from server.outputs import OutputReservations
    from server.steer_job import SteerRequest, prepare_steer

    seen: dict = {}

    def fake_steer(*args, **kwargs):
        seen.update(kwargs)
        return {"model": "x"}

    monkeypatch.setattr(models.steer, "steer_model", fake_steer)
    monkeypatch.setattr(models.steer, "check_new_model_name", lambda *a, **k: tmp_path)
    for name in ("dry.wav", "wet.wav"):
        (tmp_path / name).write_bytes(b"RIFF")
    env = JobEnv(output_dir=tmp_path, max_input_bytes=10**6, reservations=OutputReservations(), device="cpu")
    request = SteerRequest(dry=str(tmp_path / "dry.wav"), wet=str(tmp_path / "wet.wav"), name="x")

    class Context:
        def progress(self, *args) -> None: ...

        def stage(self, text: str) -> None: ...

        def should_cancel(self) -> bool:
            return False

    prepare_steer(request, env).run(Context())  # type: ignore[arg-type]
    assert seen["device"].device == torch.device("cpu") and seen["device"].source == "--device"


def test_the_server_config_carries_the_device_to_the_jobs(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from pydantic import BaseModel

    from server.app import create_app
    from server.job_kinds import JobKind, PreparedJob
    from server.serverconfig import ServerConfig

    class Empty(BaseModel):
        pass

    seen: list[str] = []

    def prepare(request, env):
        seen.append(env.device)
        return PreparedJob(run=lambda ctx: {})

    token = "device-test-token-0123456789"
    config = ServerConfig(token=token, output_dir=tmp_path, device="cuda:1")  # passed on as given, unchecked here
    app = create_app(config, kinds=[JobKind("probe", Empty, prepare, "probe")])
    with TestClient(app, base_url="http://127.0.0.1:47810") as client:
        answer = client.post("/v1/probe", json={}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (200, 202) and seen == ["cuda:1"]


def test_choosing_cuda_turns_off_tf32_convolutions(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    resolve_device("cpu")
    resolve_device("auto", cuda_available=lambda: False)
    assert torch.backends.cudnn.allow_tf32 is True  # the CPU leaves torch's settings alone
    resolve_device("auto", cuda_available=lambda: True)
    assert torch.backends.cudnn.allow_tf32 is False


def test_render_says_and_reports_its_device(tmp_path: Path, capsys) -> None:
    import numpy as np
    import soundfile as sf

    from models.render import render_file

    source = tmp_path / "in.wav"
    sf.write(source, np.zeros((4410, 2), np.float32), 44_100)
    assert main(["render", str(source), "--effect", "compressor", "--device", "auto"]) == 0
    assert "device: cpu (auto: torch sees no CUDA device)" in capsys.readouterr().err or not NO_CUDA
    assert render_file(source, tmp_path / "out.wav", "compressor", device="cpu").device == "cpu"
