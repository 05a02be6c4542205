"""Training smoke tests of the pedal board: each network type trains a few steps end to end, is judged on held-out
material of another origin on the knob grid, and lands in the library with a complete sidecar."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.effects import PEDALS, REFERENCE_EFFECTS
from models.library import load_model
from models.pedals.training import pedal_recipe, train_pedal
from models.userdirs import user_models_dir
from server.cli import main


def _tiny(name: str, arch: str):
    return replace(
        pedal_recipe(name, arch),
        steps=3,
        batch_size=2,
        segment_samples=2048,
        train_clips=2,
        clip_seconds=2.0,
        heldout_seconds=1.0,
    )


@pytest.mark.parametrize(
    ("effect", "arch"),
    [
        *((effect, "ours") for effect in PEDALS),
        ("chorus", "tcn"),
        ("octave", "tcn"),
        ("fuzz", "mccool-cnn"),
        ("fuzz", "mccool-lstm"),
    ],  # fmt: skip
)
def test_a_pedal_trains_is_judged_and_renders(effect: str, arch: str) -> None:
    info = train_pedal(
        effect,
        user_models_dir(),
        arch=arch,
        recipe=_tiny(effect, arch),
        heldout_seconds=1.0,
        model_name=f"tiny-{effect}-{arch}",
    )
    try:
        sidecar = info.sidecar
        assert sidecar["training"]["arch"] == arch and sidecar["training"]["steps"] == 3
        assert sidecar["emulates"]["effect"] == REFERENCE_EFFECTS[effect].emulates
        verdict = sidecar["metrics"]["heldout_other_origin"]
        assert len(verdict["points"]) == 3 ** len(REFERENCE_EFFECTS[effect].knobs)
        assert {"guitar", "bass"} <= set(verdict["clips"]) and verdict["clip_seconds"] == 1.0
        assert verdict["summary"]["meets_goals"] in (True, False)
        assert 0.0 <= verdict["summary"]["segments_nearer_real_than_dry"] <= 1.0
        if effect == "chorus":
            rows = verdict["summary"]["modulation"]["points"]
            assert len(rows) == 3 and all(row["dry"] > 0 for row in rows)
        if effect == "octave":
            assert info.latency_samples == REFERENCE_EFFECTS["octave"].latency_samples > 0
        audio = np.random.default_rng(0).standard_normal((2, 5000)).astype(np.float32) * 0.1
        out = load_model(info.name).process(audio)
        assert out.shape == audio.shape and np.isfinite(out).all()
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()


def test_train_effect_takes_its_material_budget_from_the_command_line(tmp_path: Path) -> None:
    argv = ["train-effect", "--effect", "fuzz", "--arch", "mccool-cnn", "--steps", "2", "--clip-seconds", "2",
            "--heldout-seconds", "1", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    sidecar = json.loads((tmp_path / "fuzz-mccool-cnn.json").read_text())
    assert sidecar["training"]["data"]["clip_seconds"] == 2.0 and sidecar["training"]["recipe"]["heldout_seconds"] == 1
    assert sidecar["metrics"]["heldout_other_origin"]["clip_seconds"] == 1.0
    assert "--clip-seconds 2.0 --heldout-seconds 1.0" in sidecar["training"]["command"]


def test_baselines_are_for_the_pedal_board_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-effect", "--effect", "compressor", "--arch", "mccool-cnn", "--steps", "1"]) == 1
    assert "only the pedal-board effects" in capsys.readouterr().err


def test_the_listening_proxy_counts_audible_seconds_nearer_the_real_effect() -> None:
    """(Here, not with the fast network tests: its log-mel spectrograms import librosa, which takes seconds.)"""
    from models.pedals.training import nearer_segments

    rng = np.random.default_rng(4)
    dry = (rng.standard_normal(3 * 44_100) * 0.1).astype(np.float32)
    dry[44_100 : 2 * 44_100] = 0.0  # a silent second is not judged
    real = REFERENCE_EFFECTS["filter"].process(dry[None], 44_100, {"cutoff": 500.0, "resonance": 0.3})[0]
    assert nearer_segments(real, real, dry) == [True, True]
    assert nearer_segments(dry, real, dry) == [False, False]


def test_a_pedal_model_resumes_from_its_saved_weights(tmp_path: Path) -> None:
    base = ["train-effect", "--effect", "fuzz", "--arch", "mccool-cnn", "--steps", "2", "--clip-seconds", "2",
            "--heldout-seconds", "1", "--out", str(tmp_path)]  # fmt: skip
    assert main(base) == 0
    first = json.loads((tmp_path / "fuzz-mccool-cnn.json").read_text())
    assert main([*base, "--resume"]) == 0
    second = json.loads((tmp_path / "fuzz-mccool-cnn.json").read_text())
    assert second["training"]["resumed_from"]["steps"] == first["training"]["steps"] == 2
    assert second["training"]["learning_rate"] == first["training"]["learning_rate"] / 4
    assert "--resume" in second["training"]["command"]


def test_resuming_a_missing_pedal_model_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-effect", "--effect", "fuzz", "--arch", "mccool-cnn", "--resume", "--out", str(tmp_path)]) == 1
    assert "no fuzz-mccool-cnn model" in capsys.readouterr().err


def test_the_per_crop_waveform_error_counts_a_quiet_crop_as_much_as_a_loud_one() -> None:
    """A loud crop rendered exactly and a quiet one 10 % off: per crop, the ESR is the two crops' mean (0.005),
    whatever the loud crop's level; over the batch, the quiet crop's error hardly counts."""
    import torch

    from models.pedals.training import waveform_error

    rng = np.random.default_rng(5)
    target = torch.from_numpy(rng.standard_normal((2, 1, 4096)).astype(np.float32))
    target[1] *= 0.01
    estimate = target.clone()
    estimate[1] *= 1.1
    assert waveform_error(estimate, target, per_crop=True).item() == pytest.approx(0.005, rel=1e-3)
    assert waveform_error(estimate, target, per_crop=False).item() < 1e-5
    louder_target, louder_estimate = target.clone(), estimate.clone()
    louder_target[0] *= 100
    louder_estimate[0] *= 100
    per_crop = waveform_error(louder_estimate, louder_target, per_crop=True).item()
    assert per_crop == pytest.approx(0.005, rel=1e-3)
