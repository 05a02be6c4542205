"""The shipped models: complete sidecars, held-out quality against the real effects, and knobs that do what the
real effect's knobs do."""

import numpy as np
import pytest

from models.effects import REFERENCE_EFFECTS
from models.evaluation import loudness_lufs, mrstft_distance
from models.grid_evaluation import SIDECAR_KEY, block_failures
from models.library import SHIPPED_DIR, list_models, load_model
from models.material import make_program

RATE = 44_100
# How much closer to the real effect than the dry input each model must be (held-out MR-STFT).
REQUIRED_GAIN = {"compressor": 20.0, "overdrive": 3.0, "reverb": 1.5}
# Models whose sidecar must record the knob grid on material of another origin (models.grid_evaluation), meeting
# its goals: never further from the real effect than the dry input, geometric mean x4 (x2 for a reverb).
OTHER_ORIGIN_GRID_REQUIRED = ("compressor", "overdrive", "reverb")


@pytest.fixture(scope="module")
def program() -> np.ndarray:
    return make_program(3.0, RATE, np.random.default_rng(424242))[None, :]


def test_three_shipped_effects_with_two_knobs_each() -> None:
    shipped = {m.name: m for m in list_models() if m.kind == "shipped" and m.weights_path.parent == SHIPPED_DIR}
    assert set(REQUIRED_GAIN) <= set(shipped)
    for name in REQUIRED_GAIN:
        info = shipped[name]
        assert [k.name for k in info.knobs] == [k.name for k in REFERENCE_EFFECTS[name].knobs]
        assert info.receptive_field == info.build().receptive_field and info.latency_samples == 0
        assert info.sidecar["training"]["command"].startswith("reatimbre train-effect --effect")
        assert info.sidecar["emulates"]["mapping"]


@pytest.mark.parametrize("name", list(REQUIRED_GAIN))
def test_heldout_quality_recorded_in_sidecar_meets_the_goal(name: str) -> None:
    held = load_model(name).info.sidecar["metrics"]["heldout"]
    assert held["dry"]["mrstft"] / held["model"]["mrstft"] >= REQUIRED_GAIN[name]
    assert held["model"]["loudness_error_db"] < held["dry"]["loudness_error_db"]


@pytest.mark.parametrize("name", list(REQUIRED_GAIN))
def test_other_origin_grid_recorded_in_sidecar_meets_the_goals(name: str) -> None:
    block = load_model(name).info.sidecar["metrics"].get(SIDECAR_KEY)
    if block is None:
        assert name not in OTHER_ORIGIN_GRID_REQUIRED, f"{name}'s sidecar must record {SIDECAR_KEY}"
        pytest.skip(f"{name}'s sidecar records no {SIDECAR_KEY} yet")
    assert block["real_effect"] == REFERENCE_EFFECTS[name].emulates
    assert all(len(grid) == 5 and all(len(line) == 5 for line in grid) for grid in block["closer"].values())
    assert {"piano", "drums", "speech", "mix"} <= set(block["clips"])
    assert block_failures(block) == []


def _both(name: str, audio: np.ndarray, knobs: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    tail = np.zeros((1, int(REFERENCE_EFFECTS[name].tail_seconds * RATE)), np.float32)
    padded = np.concatenate([audio, tail], axis=1)
    return load_model(name).process(padded, knobs), REFERENCE_EFFECTS[name].process(padded, RATE, knobs)


def test_compressor_threshold_turns_loudness_down_like_the_real_one(program: np.ndarray) -> None:
    levels = []
    for threshold in (-10.0, -30.0, -45.0):
        model, real = _both("compressor", program, {"threshold": threshold, "ratio": 8.0})
        levels.append((loudness_lufs(model, RATE), loudness_lufs(real, RATE)))
        assert mrstft_distance(model, real) < mrstft_distance(program, real) or threshold == -10.0
    model_levels, real_levels = zip(*levels, strict=True)
    assert model_levels[0] > model_levels[1] > model_levels[2]
    assert np.max(np.abs(np.array(model_levels) - np.array(real_levels))) < 3.0


def _centroid_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio[0]))
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / RATE)
    return float(np.sum(freqs * spectrum) / np.sum(spectrum))


def test_overdrive_tone_and_drive_act_like_the_real_ones(program: np.ndarray) -> None:
    dark_model, dark_real = _both("overdrive", program, {"drive": 24.0, "tone": 0.1})
    bright_model, bright_real = _both("overdrive", program, {"drive": 24.0, "tone": 0.9})
    assert _centroid_hz(bright_model) > 1.5 * _centroid_hz(dark_model)
    assert _centroid_hz(bright_real) > 1.5 * _centroid_hz(dark_real)
    soft_model, soft_real = _both("overdrive", program, {"drive": 3.0, "tone": 0.5})
    hard_model, hard_real = _both("overdrive", program, {"drive": 33.0, "tone": 0.5})
    assert loudness_lufs(hard_model, RATE) - loudness_lufs(soft_model, RATE) > 6.0
    for model, real in ((dark_model, dark_real), (bright_model, bright_real), (hard_model, hard_real)):
        assert mrstft_distance(model, real) < mrstft_distance(program, real)


def test_reverb_size_lengthens_the_tail_like_the_real_one(program: np.ndarray) -> None:
    burst = np.zeros((1, RATE), np.float32)
    burst[0, :2_000] = np.random.default_rng(0).standard_normal(2_000) * 0.3
    tails = {}
    for size in (0.1, 0.9):
        model, real = _both("reverb", burst, {"size": size, "mix": 0.8})
        window = slice(int(0.5 * RATE), int(1.5 * RATE))  # energy from 0.5 s to 1.5 s after the burst
        tails[size] = (float(np.sum(model[0, window] ** 2)), float(np.sum(real[0, window] ** 2)))
    assert tails[0.9][1] > 2 * tails[0.1][1]  # the real effect: a bigger hall rings longer
    assert tails[0.9][0] > 2 * tails[0.1][0]  # and so does the model
