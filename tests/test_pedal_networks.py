"""The pedal board's network types (models.pedals): the LFO phase lines up with the real effect's LFO, every type
streams block by block exactly as one pass, keeps the library contract, and has its latency removed in renders."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.signal import hilbert

from models.effect_training import PEDAL_TCN_RECIPES
from models.effects import REFERENCE_EFFECTS
from models.library import load_model, save_model
from models.modulation import modulation_distance, modulation_spectrum
from models.networks import architecture_record, build_network
from models.pedals.baselines import McCoolCNN, McCoolLSTM
from models.pedals.lfo_tcn import LFOTCN
from models.pedals.training import build_network as build_pedal_network
from models.pedals.training import render
from models.tcn import TCNConfig
from models.userdirs import user_models_dir

SR = 44_100


def _small_lfo_tcn(latency: int = 0) -> LFOTCN:
    chorus = REFERENCE_EFFECTS["chorus"]
    recipe = PEDAL_TCN_RECIPES["chorus"]
    small = TCNConfig(channels=4, kernel_size=3, dilation_growth=4, layers=3, cond_dim=3, out_channels=3)
    network = build_pedal_network("tcn", chorus, type(recipe)(**{**recipe.__dict__, "config": small}))
    assert isinstance(network, LFOTCN)
    network.latency = latency
    torch.nn.init.normal_(network.tcn.output.weight, std=0.3)  # it starts as the dry sound: give the TCN a say
    return network


def test_the_lfo_phase_is_the_real_chorus_lfo() -> None:
    """Measure the real chorus's delay sweep on a 3 kHz tone and compare it with the network's LFO input."""
    chorus = REFERENCE_EFFECTS["chorus"]
    network = _small_lfo_tcn()
    n = 2 * SR
    tone = (0.3 * np.sin(2 * np.pi * 3000 * np.arange(n) / SR)).astype(np.float32)
    for rate in (0.3, 1.0, 2.7):
        knobs = {"rate": rate, "depth": 0.6, "mix": 0.9}
        wet = chorus.process(tone[None], SR, knobs)[0]
        phase_lag = np.unwrap(np.angle(hilbert(wet))) - np.unwrap(np.angle(hilbert(tone)))
        delay = (-phase_lag / (2 * np.pi * 3000))[2000:-2000]  # the real effect's delay at each sample
        control = torch.tensor([[k.position(knobs[k.name]) for k in chorus.knobs]])
        assert network.rate_hz(control).item() == pytest.approx(rate, rel=1e-6)
        lfo = torch.sin(network.phase(control, 0, n))[0].numpy()[2000:-2000]
        assert np.corrcoef(delay, lfo)[0, 1] > 0.99
        half = round(SR / rate / 2)  # the LFO half a cycle on: the sweep the other way round
        shifted = torch.sin(network.phase(control, half, n))[0].numpy()[2000:-2000]
        assert np.corrcoef(delay, shifted)[0, 1] < -0.99


def _stream_equals_one_pass(network: torch.nn.Module, knobs: int, blocks: list[int]) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, sum(blocks)) * 0.3
    control = torch.rand(knobs)
    rf = network.receptive_field  # type: ignore[attr-defined]
    with torch.no_grad():
        whole = network(
            torch.nn.functional.pad(x, (rf - 1, 0)),
            control.expand(2, -1),
            *([-(rf - 1)] if isinstance(network, LFOTCN) else []),
        )
    stream = network.stream(control)  # type: ignore[operator]
    parts, start = [], 0
    for size in blocks:
        parts.append(stream.process(x[..., start : start + size]))
        start += size
    torch.testing.assert_close(torch.cat(parts, dim=-1), whole, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["lfo", "latency", "cnn", "lstm"])
def test_streaming_equals_one_pass(kind: str) -> None:
    blocks = [1, 700, 33, 4096, 5000, 2]
    if kind == "lfo":
        _stream_equals_one_pass(_small_lfo_tcn(), 3, blocks)
    elif kind == "latency":
        octave = REFERENCE_EFFECTS["octave"]
        small = TCNConfig(channels=4, kernel_size=3, dilation_growth=4, layers=3)
        network = build_pedal_network("tcn", octave, replace(PEDAL_TCN_RECIPES["octave"], config=small))
        assert isinstance(network, LFOTCN) and network.latency_samples == octave.latency_samples > 0
        torch.nn.init.normal_(network.tcn.output.weight, std=0.3)
        _stream_equals_one_pass(network, 2, blocks)
    elif kind == "cnn":
        _stream_equals_one_pass(McCoolCNN(window=64, channels=4, hidden=8, knobs=2), 2, blocks)
    else:
        _stream_equals_one_pass(McCoolLSTM(hidden=8, layers=2, knobs=2, warmup=100), 2, blocks)


@pytest.mark.parametrize(
    "settings",
    [
        {"window": 128, "channels": 8, "kernel_size": 5, "hidden": 32, "knobs": 2},  # the benchmark's size
        {"window": 37, "channels": 3, "kernel_size": 4, "hidden": 5, "knobs": 1},  # a pool that leaves samples over
        {"window": 30, "channels": 2, "kernel_size": 3, "hidden": 4, "knobs": 0},
    ],
)
def test_the_mccool_cnn_is_its_window_per_output_sample_definition(settings: dict) -> None:
    """The paper's CNN maps the ``window`` samples up to each output sample through its convolutions, pooling and
    dense layers; the one-pass computation must give that, and the same gradients, for any window and kernel."""
    torch.manual_seed(3)
    network = McCoolCNN(**settings)
    x = torch.randn(2, 1, 600)
    control = torch.rand(2, settings["knobs"])

    def window_by_window() -> torch.Tensor:
        windows = x[:, 0].unfold(-1, network.window, 1)  # (B, outputs, window)
        outputs = windows.shape[1]
        features = network.convs(windows.reshape(-1, 1, network.window)).flatten(1)
        knobs = control[:, None, :].expand(-1, outputs, -1).reshape(2 * outputs, -1)
        return network.dense(torch.cat((features, knobs), dim=1)).reshape(2, 1, outputs)

    expected, got = window_by_window(), network(x, control)
    assert got.shape == (2, 1, 600 - network.window + 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    expected_grads = torch.autograd.grad(expected.square().mean(), list(network.parameters()))
    got_grads = torch.autograd.grad(got.square().mean(), list(network.parameters()))
    for want, have in zip(expected_grads, got_grads, strict=True):
        torch.testing.assert_close(have, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "network",
    [_small_lfo_tcn(latency=5), McCoolCNN(window=32, channels=2, hidden=4, knobs=3), McCoolLSTM(4, 1, 3, 16)],
    ids=["LFOTCN", "McCoolCNN", "McCoolLSTM"],
)
def test_each_type_saves_loads_and_renders_through_the_library(network: torch.nn.Module) -> None:
    rebuilt = build_network(architecture_record(network))
    assert type(rebuilt) is type(network) and rebuilt.settings() == network.settings()  # type: ignore[operator]
    chorus = REFERENCE_EFFECTS["chorus"]
    sidecar = {"sample_rate": SR, "knobs": [k.to_dict() for k in chorus.knobs]}
    info = save_model(network, sidecar, user_models_dir(), f"pedal-{type(network).__name__}")
    try:
        effect = load_model(info.name)
        assert effect.latency_samples == network.latency_samples  # type: ignore[attr-defined]
        audio = np.random.default_rng(0).standard_normal((2, 3000)).astype(np.float32) * 0.1
        out = effect.process(audio, {"rate": 1.0})
        assert out.shape == audio.shape and np.isfinite(out).all()
        stream = network.stream(effect.control_vector({"rate": 1.0}))  # type: ignore[operator]
        expected = render(stream, audio[0], effect.latency_samples)  # the library lines renders up with the input
        np.testing.assert_allclose(out[0], expected, atol=1e-6)
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()


def test_an_untrained_pedal_network_is_the_dry_sound_delayed_by_its_latency() -> None:
    octave = REFERENCE_EFFECTS["octave"]
    network = build_pedal_network("tcn", octave, PEDAL_TCN_RECIPES["octave"])
    audio = np.random.default_rng(2).standard_normal(3000).astype(np.float32) * 0.1
    raw = render(network.stream(torch.rand(2)), audio, 0)  # type: ignore[operator]
    np.testing.assert_allclose(raw[octave.latency_samples :], audio[: -octave.latency_samples], atol=1e-6)
    np.testing.assert_allclose(render(network.stream(torch.rand(2)), audio, octave.latency_samples), audio, atol=1e-6)  # type: ignore[operator]


def test_render_removes_the_declared_latency() -> None:
    network = _small_lfo_tcn(latency=7)
    control = torch.rand(3)
    audio = np.random.default_rng(1).standard_normal(5000).astype(np.float32) * 0.1
    raw = render(network.stream(control), audio, 0)
    aligned = render(network.stream(control), audio, 7)
    np.testing.assert_allclose(aligned[:-7], raw[7:], atol=1e-6)
    assert aligned.shape == audio.shape


def test_modulation_distance_tells_a_sweep_from_a_frozen_one() -> None:
    """A chorus and the same chorus frozen at its mean delay: the distance tells them apart, and tells the real
    sweep from one at another rate, while the real sweep is at distance 0 from itself."""
    t = np.arange(6 * SR) / SR
    chord = sum(np.sin(2 * np.pi * h * f * t) / h for f in (110, 138.6, 164.8) for h in range(1, 30) if h * f < 15_000)
    chord = (0.3 * chord / np.abs(chord).max()).astype(np.float32)
    chorus = REFERENCE_EFFECTS["chorus"]
    real = chorus.process(chord[None], SR, {"rate": 1.5, "depth": 0.8, "mix": 0.5})[0]
    other = chorus.process(chord[None], SR, {"rate": 0.2, "depth": 0.8, "mix": 0.5})[0]
    delay = int(0.007 * SR)
    frozen = 0.5 * chord + 0.5 * np.concatenate([np.zeros(delay, np.float32), chord[:-delay]])
    assert modulation_distance(real, real, SR) == 0.0
    assert modulation_distance(frozen, real, SR) > 2 * modulation_distance(other, real, SR) > 0
    spectrum, rates = modulation_spectrum(real, SR)
    strongest = rates[int(np.argmax(spectrum.mean(axis=0)))]
    assert min(abs(strongest - 1.5), abs(strongest - 3.0)) < 0.3  # the LFO's rate (or twice it: up and down sweeps)
