"""The gray-box chorus and echo (models.pedals.swept_delay, models.pedals.echo): each streams block by block as one
pass and saves, loads and renders through the library; their delay lines and the outlier-proof fit of their measured
start are right. (Measuring the start on training pairs and training: tests/test_pedal_time_start.py.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.signal import hilbert

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


def _real_sweep(rate: float, depth: float, samples: int) -> np.ndarray:
    """The real chorus's delay in samples at every sample (edges cut), measured on a 3 kHz tone from the wet voice's
    phase lag, up to whole periods of the tone."""
    chorus = REFERENCE_EFFECTS["chorus"]
    tone = (0.3 * np.sin(2 * np.pi * 3000 * np.arange(samples) / SR)).astype(np.float32)
    knobs = {"rate": rate, "depth": depth, "mix": 0.9}
    wet = (chorus.process(tone[None], SR, knobs)[0] - 0.1 * tone) / 0.9  # the swept voice alone
    phase_lag = np.unwrap(np.angle(hilbert(wet))) - np.unwrap(np.angle(hilbert(tone)))
    return (-phase_lag / (2 * np.pi * 3000))[2000:-2000] * SR


def test_the_shipped_chorus_sweeps_its_delay_as_the_real_one() -> None:
    """The shipped chorus's learnt delay sweep, at three rates and depths, lies on the real chorus's measured sweep
    (within 3 samples over the first second, where the sweep spans 40 to 440 samples)."""
    network = load_model("chorus").model
    assert isinstance(network, SweptDelayNetwork)
    chorus = REFERENCE_EFFECTS["chorus"]
    for rate, depth in ((0.3, 0.6), (1.0, 0.2), (2.7, 0.9)):
        real = _real_sweep(rate, depth, SR + 4000)
        control = torch.tensor([[chorus.knobs[0].position(rate), depth, 0.5]], dtype=torch.float32)
        with torch.no_grad():
            delay = network.delay_and_gains(control, 0, SR + 4000)[0][0].numpy()[2000:-2000]
        period = SR / 3000
        real = real + period * np.round(np.median(delay - real) / period)  # the phase lag's whole periods
        assert np.max(np.abs(delay - real)) < 3.0


def test_the_shipped_delay_echoes_at_the_real_echo_times() -> None:
    """A click through the shipped delay and through the real one: echoes at the same times (the delay within one
    sample) and levels (within 5 % or 0.001 of the click), at every point of the 3-per-knob grid."""
    effect = REFERENCE_EFFECTS["delay"]
    model = load_model("delay")
    click = np.zeros((1, SR), np.float32)
    click[0, 100] = 1.0
    for positions in itertools.product((0.1, 0.5, 0.9), repeat=3):
        knobs = {k.name: k.value_at(p) for k, p in zip(effect.knobs, positions, strict=True)}
        real = effect.process(click, SR, knobs)[0]
        ours = model.process(click, knobs)[0]
        real_echoes = np.flatnonzero(np.abs(real) > 1e-3)
        our_echoes = np.flatnonzero(np.abs(ours) > 1e-3)[: len(real_echoes)]
        assert len(real_echoes) >= 3 and our_echoes[0] == real_echoes[0] == 100  # the dry click
        # the delay to a sample: the k-th echo at most k samples off
        assert np.all(np.abs(our_echoes - real_echoes) <= np.arange(len(real_echoes)))
        np.testing.assert_allclose(ours[our_echoes], real[real_echoes], rtol=0.05, atol=1e-3)
