"""The reverb network (models.reverb_tail): its impulse response, its block renderer and the library contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.evaluation import t60_estimate
from models.library import load_model, save_model
from models.networks import architecture_record, build_network
from models.reverb_tail import BAND_SCALE, ReverbTail, ReverbTailConfig, band_noise
from models.userdirs import user_models_dir

SMALL = ReverbTailConfig(tail_seconds=0.6, early_taps=256, bands=6, partition=128, cond_dim=2)
KNOBS = [
    {"name": n, "unit": "", "minimum": 0.0, "maximum": 1.0, "default": 0.5, "scale": "linear", "conditioning": "raw"}
    for n in ("size", "mix")
]


def _audible(config: ReverbTailConfig = SMALL, t60_seconds: float | None = None) -> ReverbTail:
    """A network whose tail is loud enough to matter (and, if given, decays with ``t60_seconds`` in every band)."""
    torch.manual_seed(0)
    model = ReverbTail(config)
    with torch.no_grad():
        model.band_gain.bias.fill_(math.log(0.3) / BAND_SCALE)
        model.band_gain.weight.normal_(0.0, 0.5 / BAND_SCALE)
        model.band_decay.weight.normal_(0.0, 0.5 / BAND_SCALE)
        if t60_seconds is not None:
            share = (t60_seconds - config.min_t60_seconds) / (config.max_t60_seconds - config.min_t60_seconds)
            model.band_decay.weight.zero_()
            model.band_decay.bias.fill_(math.log(share / (1 - share)) / BAND_SCALE)
    return model.eval()


def test_bands_add_up_to_the_white_noise() -> None:
    bands = band_noise(SMALL)
    white = np.random.default_rng(SMALL.noise_seed).standard_normal(SMALL.tail_length)
    assert bands.shape == (SMALL.bands, SMALL.tail_length)
    np.testing.assert_allclose(bands.sum(axis=0), white, atol=1e-4)
    spectra = np.abs(np.fft.rfft(bands, axis=1)) ** 2
    peaks = np.fft.rfftfreq(SMALL.tail_length, 1 / SMALL.sample_rate)[np.argmax(spectra, axis=1)]
    assert np.all(np.diff(peaks) > 0)  # each band sits above the one before


def test_it_starts_as_the_dry_input() -> None:
    model = ReverbTail(SMALL).eval()
    x = torch.randn(1, 1, 4000)
    with torch.no_grad():
        y = model(torch.nn.functional.pad(x, (model.receptive_field - 1, 0)), torch.zeros(1, 2))
    error = float(torch.sum((y - x) ** 2) / torch.sum(x**2))
    assert error < 1e-3  # the tail starts some 35 dB down


def test_the_decay_is_what_the_bands_say() -> None:
    config = ReverbTailConfig(tail_seconds=3.0, early_taps=512, bands=8)
    for t60 in (0.6, 1.5):
        model = _audible(config, t60)
        with torch.no_grad():
            response = model.impulse_response(torch.zeros(1, 2))[0].numpy()
        measured = t60_estimate(response, config.sample_rate).seconds
        assert measured == pytest.approx(t60, rel=0.1)


def test_blocks_of_any_size_render_what_one_pass_does() -> None:
    model = _audible()
    control = torch.tensor([0.3, 0.8])
    x = torch.randn(2, 1, 9000)
    with torch.no_grad():
        whole = model(torch.nn.functional.pad(x, (model.receptive_field - 1, 0)), control.expand(2, 2))
    rng = np.random.default_rng(0)
    for sizes in ([1] * 300 + [8700], [127, 128, 129, 5000, 3616], list(rng.integers(1, 700, 40))):
        stream = model.stream(control)
        blocks, start = [], 0
        for size in sizes:
            blocks.append(stream.process(x[..., start : start + int(size)]))
            start += int(size)
        blocks.append(stream.process(x[..., start:]))
        assert torch.max(torch.abs(torch.cat(blocks, -1) - whole)) < 1e-4 * torch.max(torch.abs(whole))


def test_the_control_steers_the_response() -> None:
    model = _audible()
    with torch.no_grad():
        responses = model.impulse_response(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert not torch.allclose(responses[0], responses[1])
    assert responses.shape == (2, SMALL.tail_length)


def test_settings_round_trip_and_bad_settings() -> None:
    model = ReverbTail(SMALL)
    rebuilt = build_network(architecture_record(model))
    assert isinstance(rebuilt, ReverbTail) and rebuilt.config == SMALL
    assert rebuilt.receptive_field == SMALL.tail_length and rebuilt.latency_samples == 0
    torch.testing.assert_close(rebuilt.noise, model.noise)  # the same seed gives the same tail
    with pytest.raises(ValueError, match="longer than the early part"):
        ReverbTailConfig(tail_seconds=0.001, early_taps=256)
    with pytest.raises(ValueError, match="min_t60_seconds"):
        ReverbTailConfig(tail_seconds=0.6, min_t60_seconds=0.5)


def test_the_library_saves_loads_and_renders_it() -> None:
    model = _audible()
    info = save_model(model, {"sample_rate": 44_100, "knobs": KNOBS}, user_models_dir(), "tail-net")
    try:
        assert info.network_type == "ReverbTail" and info.receptive_field == SMALL.tail_length
        effect = load_model("tail-net")
        audio = np.random.default_rng(1).standard_normal((2, 5000)).astype(np.float32) * 0.2
        rendered = effect.process(audio, {"size": 0.25, "mix": 0.75})
        x = torch.from_numpy(audio)[:, None, :]
        with torch.no_grad():
            padded = torch.nn.functional.pad(x, (model.receptive_field - 1, 0))
            expected = model(padded, torch.tensor([[0.25, 0.75]] * 2))
        np.testing.assert_allclose(rendered, expected[:, 0].numpy(), atol=1e-4)
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()


def test_it_starts_from_a_measured_impulse_response() -> None:
    """``start_from`` fits each band's decay and level to a measured response; the early taps take its start."""
    config = ReverbTailConfig(tail_seconds=1.5, early_taps=512, bands=6)
    rng = np.random.default_rng(7)
    t = np.arange(int(1.2 * config.sample_rate)) / config.sample_rate
    measured = 0.05 * rng.standard_normal(t.size) * np.exp(-math.log(1000) * t / 0.5)
    measured[0] = 0.7
    model = ReverbTail(config)
    fitted = model.start_from(measured, 1e-6 * rng.standard_normal(t.size))
    assert len(fitted["t60_seconds"]) >= config.bands - 1
    assert np.median(fitted["t60_seconds"]) == pytest.approx(0.5, rel=0.1), fitted
    assert all(0.35 < t60 < 0.7 for t60 in fitted["t60_seconds"]), fitted  # the lowest bands hold few cycles
    with torch.no_grad():
        response = model.impulse_response(torch.zeros(1, 2))[0].numpy()
    assert response[0] == pytest.approx(0.7, abs=1e-6)
    assert t60_estimate(response, config.sample_rate).seconds == pytest.approx(0.5, rel=0.1)
    late = slice(config.early_taps, t.size)
    assert np.sum(response[late] ** 2) == pytest.approx(np.sum(measured[late] ** 2), rel=0.2)
