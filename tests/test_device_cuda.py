"""On a CUDA machine: training, steering and rendering on the GPU agree with the CPU, weights move between the two,
and the CUDA-only options (prefetching, larger batches, bf16) work. Skipped where torch sees no CUDA device; run
them with ``bash benchmarks/device_check.sh`` on a GPU machine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.device import resolve_device
from models.fit import fit
from models.library import find_model, load_info, save_model
from models.tcn import ConditionedTCN, TCNConfig

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"
)

# float32 on both devices (cuDNN's TF32 is turned off by resolve_device): different kernels, same precision.
ATOL = 2e-4
RTOL = 1e-3


@pytest.fixture(autouse=True)
def _full_float32() -> None:
    resolve_device("cuda")


def _configs() -> list[TCNConfig]:
    from models.effect_training import RECIPES as TRAIN_RECIPES
    from models.steer import RECIPES as STEER_RECIPES

    return [r.config for r in STEER_RECIPES.values()] + [r.config for r in TRAIN_RECIPES.values()]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: f"rf{c.receptive_field}")
def test_forward_and_gradients_on_the_gpu_match_the_cpu(config: TCNConfig) -> None:
    torch.manual_seed(0)
    model = ConditionedTCN(config)
    for p in model.output.parameters():  # leave the identity start: the whole network contributes
        torch.nn.init.normal_(p, std=0.1)
    x = 0.3 * torch.randn(2, 1, config.receptive_field - 1 + 8192)
    cond = torch.rand(2, config.cond_dim)
    target = 0.5 * x[..., config.receptive_field - 1 :]
    outputs, grads = [], []
    for device in ("cpu", "cuda"):
        model.to(device).zero_grad()
        out = model(x.to(device), cond.to(device))
        torch.nn.functional.mse_loss(out, target.to(device)).backward()
        outputs.append(out.detach().cpu())
        grads.append(torch.cat([p.grad.detach().flatten().cpu() for p in model.parameters()]))
    torch.testing.assert_close(outputs[1], outputs[0], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(grads[1], grads[0], atol=ATOL, rtol=1e-2)


@pytest.mark.parametrize("name", ["compressor", "overdrive", "reverb"])
def test_shipped_models_render_the_same_on_the_gpu(name: str) -> None:
    info = find_model(name)
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((2, 3 * info.sample_rate))).astype(np.float32)
    knobs = {k.name: k.maximum for k in info.knobs}
    on_cpu = load_info(info, "cpu").process(audio, knobs)
    on_gpu = load_info(info, "cuda").process(audio, knobs)
    assert isinstance(on_gpu, np.ndarray) and on_gpu.shape == audio.shape
    np.testing.assert_allclose(on_gpu, on_cpu, atol=ATOL, rtol=RTOL)


def test_weights_saved_from_the_gpu_load_on_the_cpu_and_back(tmp_path: Path) -> None:
    info = find_model("compressor")
    on_gpu = load_info(info, "cuda")
    assert {p.device.type for p in on_gpu.model.parameters()} == {"cuda"}
    saved = save_model(on_gpu.model, {"sample_rate": info.sample_rate, "knobs": info.sidecar["knobs"]}, tmp_path, "c")
    on_cpu = load_info(saved, "cpu")
    for a, b in zip(on_cpu.model.state_dict().values(), on_gpu.model.state_dict().values(), strict=True):
        assert a.device.type == "cpu" and torch.equal(a, b.cpu())


def _toy():
    torch.manual_seed(0)
    model = ConditionedTCN(TCNConfig(channels=8, kernel_size=3, dilation_growth=2, layers=3))
    rf = model.receptive_field
    generator = torch.Generator().manual_seed(0)

    def batch(step: int):
        x = torch.randn(8, 1, 2048 + rf - 1, generator=generator)
        return x, torch.zeros(8, 2), 0.5 * x[..., rf - 1 :]

    x_val, c_val, y_val = batch(-1)

    @torch.no_grad()
    def validate(m: torch.nn.Module) -> float:
        device = m.output.weight.device
        return float(torch.nn.functional.mse_loss(m(x_val.to(device), c_val.to(device)), y_val.to(device)))

    return model, batch, validate


@pytest.mark.parametrize("bf16", [False, True])
def test_fit_trains_on_the_gpu_with_prefetching(bf16: bool) -> None:
    model, batch, validate = _toy()
    before = validate(model)
    result = fit(
        model, batch, torch.nn.functional.mse_loss, steps=200, learning_rate=1e-2, validate=validate,
        validate_every=50, device="cuda", bf16=bf16,
    )  # fmt: skip
    assert result.device == "cuda" and result.bf16 is bf16 and result.steps == 200
    assert model.output.weight.device.type == "cuda"
    assert result.best_validation is not None and result.best_validation < before / 5


def test_steering_on_the_gpu_scales_the_batch_and_records_the_device(tmp_path: Path) -> None:
    from models.steer import steer_model
    from tests.test_steer import SR, TINY, gain
    from tests.test_steer_pair import bursts

    lines: list[str] = []
    dry = bursts(seconds=4.0)
    result = steer_model(
        dry, gain(dry), "steer-cuda", "short", 1, sample_rate=SR, steps=150, recipe=TINY, directory=tmp_path,
        report=lines.append, keep_anyway=True, device=resolve_device("cuda"),
    )  # fmt: skip
    assert result["device"].startswith("cuda:")
    assert result["heldout_mrstft"] < result["heldout_dry_mrstft"]
    sidecar = json.loads((tmp_path / "steer-cuda.json").read_text())
    assert sidecar["training"]["batch_size"] == TINY.batch_size * TINY.cuda_batch_scale
    assert sidecar["training"]["device"]["device"].startswith("cuda:")
    assert any(line.startswith("device: cuda:") for line in lines)


def test_coach_losses_run_on_the_gpu() -> None:
    from models.coach.train import next_effect_loss
    from models.synth.profiles import EFFECT_NAMES

    n = len(EFFECT_NAMES)
    torch.manual_seed(0)
    output = torch.randn(16, 2 * n)
    labels = torch.stack([torch.randint(0, n, (16,)), torch.randint(0, 2**n, (16,))], 1)
    on_cpu = next_effect_loss(output, labels, presence_weight=0.5)
    on_gpu = next_effect_loss(output.cuda(), labels.cuda(), presence_weight=0.5)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-5, rtol=1e-5)


def test_auto_takes_the_gpu() -> None:
    choice = resolve_device("auto")
    assert choice.is_cuda and choice.describe().endswith("(auto: torch sees CUDA)")


def test_many_files_in_one_pass_on_the_gpu_match_the_cpu() -> None:
    from models.multi_render import render_many

    info = find_model("reverb")
    rng = np.random.default_rng(1)
    signals = [(0.3 * rng.standard_normal((2, n))).astype(np.float32) for n in (50_000, 200_000, 9_000)]
    on_cpu = render_many(load_info(info, "cpu"), signals)
    on_gpu = render_many(load_info(info, "cuda"), signals)
    for a, b in zip(on_gpu, on_cpu, strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL, rtol=RTOL)


def test_files_render_the_same_on_the_gpu(tmp_path: Path) -> None:
    import soundfile as sf

    from models.render import render_file
    from server.batch import RenderSettings, collect_inputs, plan_tasks, run_batch

    rng = np.random.default_rng(2)
    (tmp_path / "in").mkdir()
    for index, rate in enumerate((44_100, 48_000, 44_100)):
        audio = (0.3 * rng.standard_normal((rate * (index + 1), 2))).astype(np.float32)
        sf.write(tmp_path / "in" / f"t{index}.wav", audio, rate, subtype="FLOAT")
    single = tmp_path / "in" / "t1.wav"
    on_cpu = render_file(single, tmp_path / "cpu.wav", "reverb", device="cpu")
    on_gpu = render_file(single, tmp_path / "gpu.wav", "reverb", device="cuda")
    assert on_gpu.device.startswith("cuda")
    np.testing.assert_allclose(sf.read(on_gpu.output_path)[0], sf.read(on_cpu.output_path)[0], atol=ATOL)
    inputs = collect_inputs([str(tmp_path / "in")])
    cpu_batch = run_batch(plan_tasks(inputs, tmp_path / "b-cpu", RenderSettings("reverb")))
    gpu_batch = run_batch(plan_tasks(inputs, tmp_path / "b-gpu", RenderSettings("reverb", device="cuda")))
    assert gpu_batch.count("rendered") == 3
    for a, b in zip(gpu_batch.outcomes, cpu_batch.outcomes, strict=True):
        np.testing.assert_allclose(sf.read(a.output_path)[0], sf.read(b.output_path)[0], atol=ATOL)
