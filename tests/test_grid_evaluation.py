"""The knob-grid evaluation on material of another origin: the clips, the "times closer than dry" grid, the reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import grid_evaluation
from models.effects import REFERENCE_EFFECTS
from models.errors import ReaTimbreError
from models.evaluation import mrstft_distance
from models.grid_evaluation import (
    JUST_NOTICEABLE_DB,
    SIDECAR_KEY,
    block_failures,
    evaluate_grid,
    goal_failures,
    markdown,
    record,
    sidecar_block,
    write_report,
)
from models.library import load_model
from models.material import make_program
from models.other_origin import MATERIALS, PEAK_DBFS, missing_tools, other_origin_material

RATE = 44_100
needs_tools = pytest.mark.skipif(
    bool(missing_tools()), reason=f"needs the Debian packages {', '.join(missing_tools())} (CI installs them)"
)


@pytest.fixture(scope="module")
def result() -> dict:
    """A 2 x 2 compressor grid on two short clips: one far below every threshold (the real effect leaves it
    unchanged), one loud program."""
    loud = make_program(1.0, RATE, np.random.default_rng(5))
    loud = loud / np.max(np.abs(loud)) * 0.9
    quiet = (loud * 10 ** (-60 / 20)).astype(np.float32)
    return evaluate_grid("compressor", {"loud": loud.astype(np.float32), "quiet": quiet}, grid=2)


def test_each_point_is_the_dry_distance_over_the_model_distance_above_the_floor(result: dict) -> None:
    assert result["knobs"] == {"threshold": [-50.0, -5.0], "ratio": [1.5, 20.0]}
    for clip, figures in result["per_clip"].items():
        floor = result["clips"][clip]["floor_mrstft"]
        for dry_row, model_row, closer_row in zip(
            figures["dry_mrstft"], figures["model_mrstft"], figures["closer"], strict=True
        ):
            for dry, model, closer in zip(dry_row, model_row, closer_row, strict=True):
                assert closer == pytest.approx(max(dry, floor) / max(model, floor), rel=2e-3, abs=2e-4)
    # Heavy compression of a loud program: the dry input is far from the real effect, the model much closer.
    assert result["per_clip"]["loud"]["closer"][1][0] > 4.0
    # A clip 60 dB down never reaches the thresholds: the real effect returns it unchanged, so the dry distance is
    # (almost) zero and the model can at best tie with it.
    assert max(max(row) for row in result["per_clip"]["quiet"]["dry_mrstft"]) < 0.01
    assert max(max(row) for row in result["per_clip"]["quiet"]["closer"]) <= 1.0 + 1e-6


def test_the_floor_is_what_a_just_noticeable_level_change_does_to_the_clip(result: dict) -> None:
    clip = make_program(1.0, RATE, np.random.default_rng(5))
    clip = (clip / np.max(np.abs(clip)) * 0.9).astype(np.float32)[None, :]
    expected = mrstft_distance(clip * 10 ** (JUST_NOTICEABLE_DB / 20), clip)
    assert result["clips"]["loud"]["floor_mrstft"] == pytest.approx(expected, rel=1e-3)


def test_summary_is_taken_from_the_grids(result: dict) -> None:
    closer = np.array([figures["closer"] for figures in result["per_clip"].values()])
    assert result["points"] == closer.size == 8
    assert result["geometric_mean_closer"] == pytest.approx(float(np.exp(np.log(closer).mean())), rel=2e-3)
    assert result["worst"]["closer"] == pytest.approx(float(closer.min()), abs=2e-4)
    assert result["points_further_than_dry"] == int(np.sum(closer < 1.0))
    loudness = np.array([figures["loudness_lu"] for figures in result["per_clip"].values()])
    assert result["loudness_max_error_lu"] == pytest.approx(float(np.abs(loudness).max()), abs=2e-3)
    assert result["goals"] == {"min_closer": 1.0, "geometric_mean_closer": 4.0}
    assert result["meets_goals"] == (not goal_failures(result))


def test_goal_failures_say_what_is_missed() -> None:
    base = {
        "points_further_than_dry": 0,
        "points": 25,
        "worst": {"closer": 1.2, "clip": "piano", "threshold": -5.0, "ratio": 1.5},
        "geometric_mean_closer": 4.5,
        "goals": {"min_closer": 1.0, "geometric_mean_closer": 4.0},
    }
    assert goal_failures(base) == []
    worse = {
        **base,
        "points_further_than_dry": 2,
        "worst": {**base["worst"], "closer": 0.5},
        "geometric_mean_closer": 3,
    }
    assert goal_failures(worse) == [
        "further from the real effect than the dry input at 2 of 25 points (worst x0.50: clip piano, threshold -5.0, "
        "ratio 1.5)",
        "geometric mean x3.00 closer than dry (goal x4)",
    ]


def test_reports_hold_the_same_numbers(result: dict, tmp_path: Path) -> None:
    paths = write_report(result, tmp_path / "out")
    assert [p.name for p in paths] == ["compressor_grid.json", "compressor_grid.md", "compressor_grid.png"]
    assert json.loads(paths[0].read_text()) == json.loads(json.dumps(result))
    text = paths[1].read_text()
    assert text == markdown(result) + "\n"
    first_row = result["closer_geometric_mean_over_clips"][0]
    assert f"| 1.5 | {first_row[0]:.2f} | {first_row[1]:.2f} |" in text
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_grids_are_one_line_errors() -> None:
    with pytest.raises(ReaTimbreError, match="at least 2 points"):
        evaluate_grid("compressor", {"a": np.zeros(100, np.float32)}, grid=1)
    with pytest.raises(ReaTimbreError, match="at least one clip"):
        evaluate_grid("compressor", {}, grid=2)


@needs_tools
def test_other_origin_material_is_sampled_instruments_speech_and_a_mix() -> None:
    clips = other_origin_material(1.0)
    assert tuple(clips) == MATERIALS
    for name, clip in clips.items():
        assert clip.shape == (RATE,) and clip.dtype == np.float32, name
        assert 20 * np.log10(np.max(np.abs(clip))) == pytest.approx(PEAK_DBFS, abs=0.01), name
        assert np.mean(np.abs(clip) > 1e-3) > 0.3, name  # sound, not a click in silence
    spectra = {name: np.abs(np.fft.rfft(clip)) for name, clip in clips.items()}
    centroid = {name: float(np.sum(np.arange(s.size) * s) / np.sum(s)) for name, s in spectra.items()}
    assert centroid["bass"] < centroid["piano"] < centroid["drums"]  # three different instruments
    assert not np.array_equal(clips["mix"], clips["piano"])
    again = other_origin_material(1.0)
    assert all(np.array_equal(clips[name], again[name]) for name in MATERIALS)  # the same on every run


@needs_tools
def test_command_line_writes_the_three_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert grid_evaluation.main(["overdrive", "--grid", "2", "--seconds", "0.5", "--out", str(tmp_path)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("overdrive: x") and "closer than dry (geometric mean)" in line
    saved = json.loads((tmp_path / "overdrive_grid.json").read_text())
    assert saved["real_effect"] == REFERENCE_EFFECTS["overdrive"].emulates
    assert set(saved["per_clip"]) == set(MATERIALS)
    assert (tmp_path / "overdrive_grid.png").is_file() and (tmp_path / "overdrive_grid.md").is_file()


def test_command_line_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert grid_evaluation.main(["no-such-model", "--seconds", "0.1", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_sidecar_block_keeps_the_grids_and_is_judged_from_them(result: dict) -> None:
    block = sidecar_block(result)
    assert block["command"] == "python -m models.grid_evaluation compressor --grid 2 --seconds 1 --record"
    assert block["closer"] == {clip: figures["closer"] for clip, figures in result["per_clip"].items()}
    assert block_failures(block) == goal_failures(result) or block_failures(block)[0].startswith("further")
    passing = {**block, "closer": {"a": [[5.0, 4.0], [1.0, 20.0]]}}
    assert block_failures(passing) == []
    failing = {**block, "closer": {"a": [[5.0, 0.9], [1.0, 2.0]]}, "meets_goals": True}  # the summary lies
    assert block_failures(failing) == [
        "further from the real effect than the dry input at 1 of 4 points",
        "geometric mean x1.73 closer than dry (goal x4)",
    ]
    with pytest.raises(ReaTimbreError, match="malformed"):
        block_failures({"closer": {}})


def test_record_writes_the_block_into_the_models_sidecar(tiny_model: str) -> None:
    clip = make_program(0.5, RATE, np.random.default_rng(9))
    found = evaluate_grid(tiny_model, {"program": clip}, grid=2)
    path = record(found)
    assert path == load_model(tiny_model).info.weights_path.with_suffix(".json")
    saved = load_model(tiny_model).info.sidecar["metrics"][SIDECAR_KEY]
    assert saved == json.loads(json.dumps(sidecar_block(found)))
    assert load_model(tiny_model).info.sidecar["metrics"]["heldout"]  # the rest of the sidecar is kept
