"""Latency compensation: a network whose output lags its input renders aligned, sample for sample, through
``NeuralEffect.process``, the file renderer (any block size, with and without resampling) and batch rendering.

Two networks: the test-only DelayedGain (``y[n] = g * x[n - 7]``) and a small CRAFx (one of the thesis's frame
models, look-ahead 383 samples, with a knob), whose aligned output is known independently from the offline
overlap-add render (:func:`models.afx.framing.render`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from afx_tiny import TINY

from models.afx.framing import render
from models.afx.network import build_network
from models.library import load_model, save_model
from models.multi_render import render_files_together, render_many
from models.networks import NETWORK_TYPES
from models.render import render_file
from models.userdirs import user_models_dir
from tests.delay_network import DelayedGain

KNOB = {"name": "amount", "unit": "", "minimum": 0.0, "maximum": 1.0, "default": 0.5, "scale": "linear"}
RATE = 44_100


def _cleanup(name: str) -> None:
    for suffix in (".safetensors", ".json"):
        (user_models_dir() / f"{name}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def delayed_gain(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setitem(NETWORK_TYPES, "DelayedGain", "tests.delay_network:DelayedGain")
    model = DelayedGain(latency=7)
    with torch.no_grad():
        model.gain.weight.fill_(0.0)
        model.gain.bias.fill_(2.0)
    save_model(model, {"sample_rate": RATE, "knobs": [KNOB]}, user_models_dir(), "delayed-gain-7")
    yield "delayed-gain-7"
    _cleanup("delayed-gain-7")


@pytest.fixture(scope="module")
def small_crafx() -> Iterator[str]:
    torch.manual_seed(0)
    network = build_network("crafx", {**TINY["crafx"], "sample_rate": RATE, "knobs": 1})
    with torch.no_grad():  # away from the initial values (the knob's FiLM starts at zero)
        for p in network.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_model(network, {"sample_rate": RATE, "knobs": [KNOB]}, user_models_dir(), "small-crafx")
    yield "small-crafx"
    _cleanup("small-crafx")


def _expected(name: str, audio: np.ndarray, amount: float) -> np.ndarray:
    """What an aligned render must give: 2x the input, or the CRAFx's offline overlap-add render."""
    effect = load_model(name)
    if name.startswith("delayed-gain"):
        return 2.0 * audio
    return render(effect.model.model, audio, effect.control_vector({"amount": amount}))


def _noise(channels: int, samples: int, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal((channels, samples))).astype(np.float32)


@pytest.mark.parametrize("which", ["delayed_gain", "small_crafx"])
def test_process_lines_up_with_the_input(which: str, request: pytest.FixtureRequest) -> None:
    name = request.getfixturevalue(which)
    effect = load_model(name)
    assert effect.latency_samples == (7 if which == "delayed_gain" else 255 + 128)
    audio = _noise(2, 3001)
    out = effect.process(audio, {"amount": 0.2})
    assert out.shape == audio.shape
    np.testing.assert_allclose(out, _expected(name, audio, 0.2), atol=1e-5)
    assert effect.process(np.zeros((1, 0), np.float32)).shape == (1, 0)


@pytest.mark.parametrize("which", ["delayed_gain", "small_crafx"])
@pytest.mark.parametrize("block_frames", [1000, 70_000])
def test_file_render_lines_up_with_the_input(
    which: str, block_frames: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    name = request.getfixturevalue(which)
    audio = _noise(2, 20_000, seed=1)
    source = tmp_path / "in.wav"
    sf.write(source, audio.T, RATE, subtype="FLOAT")
    result = render_file(source, tmp_path / "out.wav", name, {"amount": 0.7}, tail_seconds=0.0,
                         read_block_frames=block_frames)  # fmt: skip
    out, rate = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert rate == RATE and result.duration_seconds == pytest.approx(20_000 / RATE)
    np.testing.assert_allclose(out.T, _expected(name, audio, 0.7), atol=1e-5)


def test_resampled_render_of_a_delay_is_not_shifted(delayed_gain: str, tmp_path: Path) -> None:
    """At 48 kHz in and 44.1 kHz in the model, a click comes out where it went in (not 7 model samples late)."""
    audio = np.zeros((1, 48_000), np.float32)
    audio[0, 24_000] = 0.5
    sf.write(tmp_path / "click.wav", audio.T, 48_000, subtype="FLOAT")
    render_file(tmp_path / "click.wav", tmp_path / "out.wav", delayed_gain, tail_seconds=0.0)
    out, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    assert int(np.argmax(np.abs(out))) == 24_000


@pytest.mark.parametrize("which", ["delayed_gain", "small_crafx"])
def test_batch_rendering_lines_up_with_the_input(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    name = request.getfixturevalue(which)
    effect = load_model(name)
    signals = [_noise(2, 9_000, 2), _noise(1, 2_500, 3), np.zeros((2, 0), np.float32)]
    for signal, out in zip(signals, render_many(effect, signals, {"amount": 0.4}, block_samples=4096), strict=True):
        np.testing.assert_allclose(out, _expected(name, signal, 0.4), atol=1e-5)
    jobs = []
    for index, signal in enumerate(signals[:2]):
        sf.write(tmp_path / f"in{index}.wav", signal.T, RATE, subtype="FLOAT")
        jobs.append((tmp_path / f"in{index}.wav", tmp_path / f"out{index}.wav"))
    results = render_files_together(jobs, effect, {"amount": 0.4}, tail_seconds=0.0)
    assert not [r for r in results if isinstance(r, Exception)]
    for (_, output), signal in zip(jobs, signals, strict=False):
        out, _ = sf.read(output, dtype="float32", always_2d=True)
        np.testing.assert_allclose(out.T, _expected(name, signal, 0.4), atol=1e-5)
