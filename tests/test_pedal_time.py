"""The gray-box chorus and echo (models.pedals.swept_delay, models.pedals.echo): each streams block by block as one
pass and saves, loads and renders through the library; their delay lines and the outlier-proof fit of their measured
start are right. (Measuring the start on training pairs and training: tests/test_pedal_time_start.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.effects import REFERENCE_EFFECTS
from models.library import load_model, save_model
from models.networks import architecture_record, build_network
from models.pedals.delay_lines import comb_response, fft_convolve, read_delayed
from models.pedals.echo import EchoConfig, EchoNetwork
from models.pedals.knob_map import fit_affine
from models.pedals.swept_delay import SweptDelayConfig, SweptDelayNetwork
from models.pedals.training import render
from models.userdirs import user_models_dir

SR = 44_100
BLOCKS = [1, 700, 33, 4096, 5000, 2]


def _chorus(config: SweptDelayConfig | None = None) -> SweptDelayNetwork:
    network = (config or SweptDelayConfig()).build(REFERENCE_EFFECTS["chorus"])
    with torch.no_grad():  # a swept voice that is heard (it starts as the dry sound)
        network.parts.affine.bias[1] = 0.5
        network.parts.affine.weight[3, 1] = 3.0  # the sweep deepens with the depth knob
    return network


def _echo(config: EchoConfig | None = None) -> EchoNetwork:
    network = (config or EchoConfig(max_delay_ms=100.0)).build(REFERENCE_EFFECTS["delay"])
    with torch.no_grad():
        network.parts.affine.bias.copy_(torch.tensor([0.7, 0.4, 23.0, 0.5]))  # dry, wet, delay (ms), feedback
        network.parts.affine.weight[2, 0] = 30.0
    return network


@pytest.mark.parametrize("kind", ["chorus", "echo"])
def test_streaming_equals_one_pass(kind: str) -> None:
    network: torch.nn.Module = _chorus() if kind == "chorus" else _echo()
    torch.manual_seed(0)
    x = torch.randn(2, 1, sum(BLOCKS)) * 0.3
    rf = int(network.receptive_field)  # type: ignore[arg-type]
    for control in (torch.tensor([0.9, 0.8, 0.5]), torch.tensor([0.1, 0.3, 0.9])):
        with torch.no_grad():
            padded = torch.nn.functional.pad(x, (rf - 1, 0))
            args = (-(rf - 1),) if kind == "chorus" else ()
            whole = network(padded, control.expand(2, -1), *args)
        stream = network.stream(control)  # type: ignore[operator]
        parts, start = [], 0
        for size in BLOCKS:
            parts.append(stream.process(x[..., start : start + size]))
            start += size
        torch.testing.assert_close(torch.cat(parts, dim=-1), whole, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["chorus", "echo"])
def test_saves_loads_and_renders_through_the_library(kind: str) -> None:
    network: torch.nn.Module = _chorus() if kind == "chorus" else _echo()
    rebuilt = build_network(architecture_record(network))
    assert type(rebuilt) is type(network) and rebuilt.settings() == network.settings()  # type: ignore[operator]
    effect = REFERENCE_EFFECTS["chorus" if kind == "chorus" else "delay"]
    sidecar = {"sample_rate": SR, "knobs": [k.to_dict() for k in effect.knobs]}
    info = save_model(network, sidecar, user_models_dir(), f"pedal-time-{kind}")
    try:
        loaded = load_model(info.name)
        audio = np.random.default_rng(0).standard_normal((2, 9000)).astype(np.float32) * 0.1
        knob = effect.knobs[0]
        out = loaded.process(audio, {knob.name: knob.value_at(0.7)})
        assert out.shape == audio.shape and np.isfinite(out).all()
        expected = render(network.stream(loaded.control_vector({knob.name: knob.value_at(0.7)})), audio[1], 0)  # type: ignore[operator]
        np.testing.assert_allclose(out[1], expected, atol=1e-6)
        assert not np.allclose(out[1], audio[1], atol=1e-3)  # the swept voice or the echo is heard
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()


def test_delay_line_parts() -> None:
    """An integer delay reads the sample that many back; the comb's response holds g^(k-1) at k D; convolving with
    it is the recursion w[n] = x[n - D] + g w[n - D]."""
    x = torch.randn(1, 1, 400)
    np.testing.assert_allclose(read_delayed(x, torch.full((1, 100), 7.0), 300)[0, 0], x[0, 0, 293:393])
    half = read_delayed(x, torch.full((1, 10), 7.5), 300)[0, 0]
    np.testing.assert_allclose(half, 0.5 * (x[0, 0, 292:302] + x[0, 0, 293:303]), atol=1e-6)
    response = comb_response(torch.tensor([30.0]), torch.tensor([-0.5]), 200)[0]
    expected = np.zeros(200)
    expected[30::30] = (-0.5) ** np.arange(6)
    np.testing.assert_allclose(response, expected, atol=1e-7)
    w = np.zeros(400)
    for n in range(30, 400):
        w[n] = x[0, 0, n - 30] - 0.5 * w[n - 30]
    np.testing.assert_allclose(
        fft_convolve(x, comb_response(torch.tensor([30.0]), torch.tensor([-0.5]), 400))[0, 0], w, atol=1e-5
    )


def test_affine_fit_keeps_out_measurements_gone_wrong() -> None:
    rng = np.random.default_rng(0)
    knobs = rng.random((60, 3))
    values = knobs @ np.array([340.0, 0.0, 2.0]) + 60.0
    values[::3] = rng.uniform(0, 1000, 20)  # a third of the measurements wrong
    w, b, kept = fit_affine(knobs, values, tolerance=0.01)
    np.testing.assert_allclose([*w, b], [340.0, 0.0, 2.0, 60.0], atol=1e-6)
    assert kept.sum() == 40
