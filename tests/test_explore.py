"""Explore: knob-grid loudness and T60 maps of an effect, as PNG and JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from models.errors import ReaTimbreError
from models.explore import explore, t60_seconds
from models.steer import RECIPES, steer_model
from models.steer_pair import MODEL_SAMPLE_RATE
from models.tcn import TCNConfig
from server.cli import main
from tests.test_steer_pair import bursts, reverberate, saturate

SR = MODEL_SAMPLE_RATE


@pytest.fixture(scope="module")
def steered() -> dict[str, str]:
    """A tiny short-memory and a tiny long-memory steered model (a few steps each)."""
    dry = bursts(seconds=4.0, seed=5)
    small = TCNConfig(channels=4, kernel_size=9, dilation_growth=10, layers=3)
    short = replace(RECIPES["short"], config=small, segment_samples=4096, batch_size=2)
    long = replace(RECIPES["long"], config=replace(small, layers=5, channels=2), segment_samples=8192)
    steer_model(
        dry, saturate(dry), "explore-short", "short", 1, sample_rate=SR, steps=2, recipe=short, keep_anyway=True
    )
    steer_model(
        dry, reverberate(dry), "explore-long", "long", 1, sample_rate=SR, steps=2, recipe=long, keep_anyway=True
    )
    return {"short": "explore-short", "long": "explore-long"}


@pytest.mark.parametrize("t60", [0.5, 1.0, 2.0])
def test_t60_of_an_exponential_decay(t60: float) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(2 * t60 * SR)) / SR
    response = rng.standard_normal(t.size) * 10 ** (-3 * t / t60)
    assert t60_seconds(response, SR) == pytest.approx(t60, rel=0.05)
    assert t60_seconds(np.zeros(100), SR) is None
    assert t60_seconds(np.ones(SR), SR) is None  # no decay at all


def test_grid_loudness_follows_the_knobs(steered) -> None:
    audio = bursts(seconds=2.0, seed=9)
    result = explore(steered["short"], audio, grid=3, sample_rate=SR)
    assert result["knobs"] == {"c1": [-5.0, 0.0, 5.0], "c2": [-5.0, 0.0, 5.0]}
    loudness = np.array(result["loudness_lufs"])
    assert loudness.shape == (3, 3) and np.isfinite(loudness).all()
    assert result["t60_seconds"] is None  # a short-memory model is not reverb-like
    # The centre is the steered effect: its loudness is that of rendering with the knobs at 0.
    from models.evaluation import loudness_lufs
    from models.library import load_model

    centre = load_model(steered["short"]).process(audio[None, :])
    assert loudness[1, 1] == pytest.approx(loudness_lufs(centre, SR), abs=0.01)
    assert loudness.std() > 0  # the controls change the sound


def test_reverb_like_model_gets_a_t60_map(steered) -> None:
    result = explore(steered["long"], bursts(seconds=1.0), grid=2, sample_rate=SR)
    assert len(result["t60_seconds"]) == 2 and all(len(row) == 2 for row in result["t60_seconds"])
    assert result["impulse_level"] == 0.5


def test_cli_writes_png_and_json_and_never_overwrites(steered, tmp_path, capsys) -> None:
    source = tmp_path / "in.wav"
    sf.write(source, np.stack([bursts(seconds=1.5), bursts(seconds=1.5, seed=2)], axis=1), 48_000)
    prefix = tmp_path / "map"
    assert main(["explore", steered["long"], "--input", str(source), "--grid", "2", "--out", str(prefix)]) == 0
    assert "LUFS" in capsys.readouterr().out
    png, data = prefix.with_suffix(".png"), prefix.with_suffix(".json")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads(data.read_text())
    assert numbers["model"] == steered["long"] and len(numbers["loudness_lufs"]) == 2
    before = png.read_bytes()
    assert main(["explore", steered["long"], "--input", str(source), "--grid", "2", "--out", str(prefix)]) == 1
    assert "already exists" in capsys.readouterr().err and png.read_bytes() == before
    assert not list(tmp_path.glob(".*partial*"))


def test_bad_requests(steered, tmp_path) -> None:
    with pytest.raises(ReaTimbreError, match="grid must be"):
        explore(steered["short"], bursts(1.0), grid=1, sample_rate=SR)
    with pytest.raises(ReaTimbreError, match="unknown effect"):
        explore("no-such-effect", bursts(1.0), grid=3, sample_rate=SR)
    with pytest.raises(ReaTimbreError, match="silent"):
        explore(steered["short"], np.zeros(SR, np.float32), grid=2, sample_rate=SR)
    with pytest.raises(ReaTimbreError, match="cancelled"):
        explore(steered["short"], bursts(1.0), grid=2, sample_rate=SR, should_cancel=lambda: True)
