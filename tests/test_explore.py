"""Explore: knob-grid loudness and T60 maps of an effect, as PNG and JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from models.errors import ReaTimbreError
from models.evaluation import DecayTime, t60_estimate
from models.explore import explore
from models.rates import SAMPLE_RATE_HZ
from models.steer import RECIPES, steer_model
from models.tcn import TCNConfig
from server.cli import main
from tests.test_steer_pair import bursts, reverberate, saturate

SR = SAMPLE_RATE_HZ


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


def _decaying_noise(t60: float, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.random.default_rng(seed).standard_normal(t.size) * 10 ** (-3 * t / t60)


@pytest.mark.parametrize("t60", [0.3, 1.0, 2.5])
def test_t60_of_exponentially_decaying_noise(t60: float) -> None:
    estimate = t60_estimate(_decaying_noise(t60), SR)
    assert estimate.reason is None and estimate.seconds == pytest.approx(t60, rel=0.10)


@pytest.mark.parametrize("t60", [0.3, 1.0, 2.5])
def test_t60_leaves_out_a_loud_direct_sound(t60: float) -> None:
    """A dry path carrying 30 dB more energy than the tail that starts 30 ms later does not count as decay."""
    response = np.zeros(int(3.0 * SR))
    start = int(0.03 * SR)
    tail = _decaying_noise(t60, 3.0 - start / SR, seed=1)
    response[start:] = tail * np.sqrt(1e-3 / np.sum(tail**2))
    response[0] = 1.0
    estimate = t60_estimate(response, SR)
    assert estimate.reason is None and estimate.seconds == pytest.approx(t60, rel=0.10)


def test_t60_says_why_when_there_is_no_decay_to_measure() -> None:
    delay = np.zeros(SR)
    delay[441] = 0.5  # a pure 10 ms delay: the direct sound and nothing after it
    assert t60_estimate(delay, SR) == DecayTime(None, "too short: no decay after the direct sound")
    click = np.zeros(SR)
    click[100:140] = np.exp(-np.arange(40) / 4.0)  # gone within 1 ms: not a reverberant decay
    assert t60_estimate(click, SR).seconds is None and t60_estimate(click, SR).reason.startswith("too short")
    for endless in (np.random.default_rng(2).standard_normal(3 * SR), _decaying_noise(20.0)):
        estimate = t60_estimate(endless, SR)  # still ringing at the end of the 3 s window
        assert estimate.seconds is None and estimate.reason.startswith("too long")
    assert t60_estimate(np.zeros(100), SR) == DecayTime(None, "silent")


def test_t60_ignores_a_noise_floor_below_the_decay() -> None:
    response = _decaying_noise(0.8) + 10 ** (-50 / 20) * np.random.default_rng(3).standard_normal(3 * SR)
    assert t60_estimate(response, SR).seconds == pytest.approx(0.8, rel=0.10)


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
    for values, reasons in zip(result["t60_seconds"], result["t60_reasons"], strict=True):
        assert all((value is None) == (reason is not None) for value, reason in zip(values, reasons, strict=True))


def test_map_draws_points_without_a_t60_with_their_reason(tmp_path, monkeypatch) -> None:
    from matplotlib.axes import Axes

    from models.explore import plot

    labels: list[str] = []
    original = Axes.text
    monkeypatch.setattr(
        Axes, "text", lambda self, x, y, s, *a, **k: labels.append(s) or original(self, x, y, s, *a, **k)
    )

    result = {
        "model": "m",
        "knobs": {"size": [0.0, 1.0], "mix": [0.2, 1.0]},
        "loudness_lufs": [[-20.0, -21.0], [-22.0, -23.0]],
        "t60_seconds": [[0.9, None], [None, 1.5]],
        "t60_reasons": [[None, "too long: it does not fall 35 dB"], ["too short: no decay", None]],
    }
    path = tmp_path / "map.png"
    plot(result, path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert labels == ["-20.0", "-21.0", "-22.0", "-23.0", "0.90", "too long", "too short", "1.50"]


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


def test_compare_real_maps_the_real_effect_beside_the_model() -> None:
    """The shipped compressor: the real grid is the real effect's loudness at each point, and the difference and
    agreement follow from the two grids."""
    from models.effects import REFERENCE_EFFECTS
    from models.evaluation import loudness_lufs

    audio = bursts(seconds=1.5, seed=4)
    result = explore("compressor", audio, grid=2, sample_rate=SR, compare_real=True)
    real = result["real"]
    assert real["effect"] == "pedalboard.Compressor" and real["mapping"]["threshold_db"] == "threshold"
    knobs = result["knobs"]
    assert knobs == {"threshold": [-50.0, -5.0], "ratio": [1.5, 20.0]}
    for row, ratio in enumerate(knobs["ratio"]):
        for column, threshold in enumerate(knobs["threshold"]):
            rendered = REFERENCE_EFFECTS["compressor"].process(
                audio[None, :], SR, {"threshold": threshold, "ratio": ratio}
            )
            assert real["loudness_lufs"][row][column] == pytest.approx(loudness_lufs(rendered, SR), abs=0.002)
            difference = result["loudness_lufs"][row][column] - real["loudness_lufs"][row][column]
            assert result["difference"]["loudness_lu"][row][column] == pytest.approx(difference, abs=0.002)
    worst = max(abs(v) for line in result["difference"]["loudness_lu"] for v in line)
    assert result["agreement"]["loudness_max_error_lu"] == pytest.approx(worst, abs=0.002)
    assert result["t60_seconds"] is None and result["agreement"]["t60_points"] is None


def test_compare_real_measures_the_real_reverb_decay_with_the_same_estimator() -> None:
    result = explore("reverb", bursts(seconds=0.5, seed=6), grid=2, sample_rate=SR, compare_real=True)
    real_t60 = np.array(result["real"]["t60_seconds"], dtype=float)
    # Freeverb at room size 0.45 and 0.8: about 0.95 s and 2.35 s, whatever the mix (the direct sound is left out).
    assert real_t60[:, 0] == pytest.approx([0.95, 0.95], rel=0.05)
    assert real_t60[:, 1] == pytest.approx([2.35, 2.35], rel=0.05)
    relative = result["difference"]["t60_relative"]
    for row in range(2):
        for column in range(2):
            model = result["t60_seconds"][row][column]
            expected = None if model is None else model / real_t60[row, column] - 1
            assert relative[row][column] == (None if expected is None else pytest.approx(expected, abs=1e-3))
    assert result["agreement"]["t60_points"] == 4


def test_compare_real_needs_a_model_that_names_its_real_effect(steered, tmp_path, capsys) -> None:
    with pytest.raises(ReaTimbreError, match="names no real effect it emulates"):
        explore(steered["short"], bursts(1.0), grid=2, sample_rate=SR, compare_real=True)
    source = tmp_path / "in.wav"
    sf.write(source, bursts(seconds=1.0), SR)
    command = ["explore", steered["short"], "--input", str(source), "--grid", "2", "--out", str(tmp_path / "m")]
    assert main([*command, "--compare-real"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "names no real effect it emulates" in error[0]
    assert not list(tmp_path.glob("m.*"))


def test_cli_compare_real_writes_three_panels_and_the_numbers(tmp_path, capsys) -> None:
    source = tmp_path / "in.wav"
    sf.write(source, bursts(seconds=1.0, seed=3), SR)
    prefix = tmp_path / "overdrive-map"
    assert (
        main(["explore", "overdrive", "--input", str(source), "--grid", "2", "--out", str(prefix), "--compare-real"])
        == 0
    )
    line = capsys.readouterr().out
    assert "against the real effect: loudness within" in line
    numbers = json.loads(prefix.with_suffix(".json").read_text())
    assert numbers["real"]["effect"] == "pedalboard.Distortion -> pedalboard.LowpassFilter"
    assert len(numbers["difference"]["loudness_lu"]) == 2
    from PIL import Image

    with Image.open(prefix.with_suffix(".png")) as image:
        width, height = image.size
    assert width > 2.5 * height  # model, real effect and difference side by side
