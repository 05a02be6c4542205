"""``reatimbre afx-train`` and ``reatimbre afx-bench`` end to end with tiny budgets: models land in the library
with their knob and held-out figures, and the bench writes one table (merged from runs side by side)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from afx_tiny import TINY

from models.afx.leslie import rotor_clocks
from models.library import load_info, read_info
from server.cli import main


def _settings(arch: str) -> str:
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in TINY[arch].items() if k != "sample_rate"})


def test_afx_train_writes_a_library_model_with_its_knob(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["afx-train", "--arch", "crafx", "--task", "leslie", "--minutes", "0.02", "--seconds", "3",
            "--heldout-seconds", "2", "--pretrain-steps", "2", "--out", str(tmp_path), "--name", "tiny-leslie",
            "--settings", _settings("crafx")]  # fmt: skip
    assert main(argv) == 0
    assert "held-out ratio" in capsys.readouterr().out
    info = read_info(tmp_path / "tiny-leslie.json", "user")
    assert [k.name for k in info.knobs] == ["speed"] and info.network_type == "AfxFrameNetwork"
    assert info.latency_samples == 255 + 128 and info.sample_rate == 16_000
    held = info.sidecar["metrics"]["heldout"]
    assert set(held["ratio"]) == {"mae", "mfcc_cosine", "ms_mse", "logpower_mse", "mrstft"}
    assert held["model"]["mrstft"] > 0 and held["dry"]["mrstft"] > 0  # what `reatimbre models` shows
    every = held["training_loss"]["every_frame"]  # the loss over every held-out frame, not only validation's
    assert every["examples"] > 16 and every["dry"] > 0 and every["ratio"] == every["model"] / every["dry"]
    history = info.sidecar["training"]["validation_history"]
    assert history[0]["step"] == 0 and history[-1]["step"] == info.sidecar["training"]["steps"]
    assert info.sidecar["emulates"]["task"] == "leslie" and info.sidecar["training"]["knob_values"] == [0.0, 1.0]
    assert info.sidecar["training"]["command"].startswith("reatimbre ")
    effect = load_info(info)
    audio = (0.1 * np.random.default_rng(0).standard_normal((1, 4000))).astype(np.float32)
    assert effect.process(audio, {"speed": 1.0}).shape == audio.shape


@pytest.mark.parametrize(("arch", "network"), [("rotors", "Rotors"), ("lfo-tcn", "LFOTCN")])
def test_afx_train_of_a_network_told_the_rotor_phases(arch: str, network: str, tmp_path: Path) -> None:
    """A short run saves a model that records its goals per knob value (a warning when missed) and renders at each
    knob end; a task without rotor clocks is refused before any material is made."""
    argv = ["afx-train", "--arch", arch, "--task", "leslie", "--minutes", "5", "--steps", "20", "--seconds", "3",
            "--heldout-seconds", "2", "--out", str(tmp_path), "--name", "phases"]  # fmt: skip
    assert main(argv) == 0
    info = read_info(tmp_path / "phases.json", "user")
    assert info.network_type == network and info.latency_samples == 0 and [k.name for k in info.knobs] == ["speed"]
    assert info.sidecar["training"]["steps"] == 20
    goals = info.sidecar["metrics"]["heldout_goals"]
    assert [point["value"] for point in goals["per_knob_value"]] == [0.0, 1.0]
    assert all(set(point["ratio"]) == {"ms_mse", "mrstft"} for point in goals["per_knob_value"])
    met = all(r < 1 for point in goals["per_knob_value"] for r in point["ratio"].values())
    assert goals["meets_goals"] == met and (info.quality_warnings == []) == met
    effect = load_info(info)
    audio = (0.1 * np.random.default_rng(0).standard_normal((1, 4000))).astype(np.float32)
    slow, fast = (effect.process(audio, {"speed": s}) for s in (0.0, 1.0))
    assert slow.shape == fast.shape == audio.shape
    with pytest.raises(SystemExit):
        main(["afx-train", "--arch", "rotors", "--task", "no-such-task"])
    assert main(["afx-train", "--arch", arch, "--task", "eq-peak", "--steps", "1", "--out", str(tmp_path)]) == 1


def test_afx_train_and_bench_tell_a_context_frame_model_the_rotor_phases(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``--clocks``: the sidecar records the clocks and that the model was told them (and ``--loss``, the loss), the
    model renders through the library at both speeds, the bench names the rows told the phases; an architecture or a
    task without clocks, or a loss for our TCN, is refused in one line."""
    argv = ["afx-train", "--arch", "csafx", "--task", "leslie", "--clocks", "--steps", "2", "--seconds", "2",
            "--heldout-seconds", "1", "--pretrain-steps", "1", "--out", str(tmp_path), "--name", "told",
            "--settings", _settings("csafx"), "--loss", "mae+mrstft"]  # fmt: skip
    assert main(argv) == 0
    info = read_info(tmp_path / "told.json", "user")
    assert info.sidecar["architecture"]["clocks"] == rotor_clocks() and info.sidecar["training"]["told_phases"]
    assert info.sidecar["metrics"]["heldout"]["training_loss"]["loss"] == "mae+mrstft"
    effect = load_info(info)
    audio = (0.1 * np.random.default_rng(0).standard_normal((1, 4000))).astype(np.float32)
    slow, fast = (effect.process(audio, {"speed": s}) for s in (0.0, 1.0))
    assert slow.shape == fast.shape == audio.shape and not np.allclose(slow, fast)
    for arch, task_name, message in (("ceq", "leslie", "only crafx, cwafx, csafx"), ("crafx", "eq-peak", "no LFO")):
        refused = ["afx-train", "--arch", arch, "--task", task_name, "--clocks", "--steps", "1", "--out", str(tmp_path)]
        assert main(refused) == 1
        assert message in capsys.readouterr().err
    assert main(["afx-train", "--arch", "tcn", "--task", "leslie", "--loss", "mae", "--out", str(tmp_path)]) == 1
    assert "thesis's architectures only" in capsys.readouterr().err
    argv = ["afx-bench", "--archs", "crafx", "tcn", "rotors", "--tasks", "leslie-slow", "--clocks", "--steps", "1",
            "--seconds", "2", "--heldout-seconds", "1", "--pretrain-steps", "1", "--rtf-seconds", "0.2",
            "--out", str(tmp_path / "b")]  # fmt: skip
    assert main(argv) == 0
    with (tmp_path / "b" / "afx-bench.csv").open() as handle:
        rows = {row["arch"]: row["told_phases"] for row in csv.DictReader(handle)}
    assert rows == {"crafx": "yes", "tcn": "no", "rotors": "yes"}  # the shipped Leslie's network has its row too
    table = (tmp_path / "b" / "afx-bench.md").read_text()
    assert "| crafx, told the phases |" in table and "| tcn |" in table and "| rotors, told the phases |" in table


def test_afx_train_and_bench_stop_at_their_step_budget(tmp_path: Path) -> None:
    argv = ["afx-train", "--arch", "tcn", "--task", "eq-peak", "--minutes", "5", "--steps", "3", "--seconds", "2",
            "--heldout-seconds", "1", "--out", str(tmp_path), "--name", "three-steps"]  # fmt: skip
    assert main(argv) == 0
    training = read_info(tmp_path / "three-steps.json", "user").sidecar["training"]
    assert training["steps"] == 3 and training["settings"]["steps"] == 3 and training["seconds"] < 60
    argv = ["afx-bench", "--archs", "ceq", "--tasks", "eq-peak", "--minutes", "5", "--steps", "2", "--seconds", "2",
            "--heldout-seconds", "1", "--pretrain-steps", "1", "--rtf-seconds", "0.5",
            "--out", str(tmp_path / "b")]  # fmt: skip
    assert main(argv) == 0
    with (tmp_path / "b" / "afx-bench.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert row["steps"] == "2" and float(row["rtf_16k"]) > 0
    assert row["loss"] == "eq49" and float(row["loss_ratio"]) > 0 and float(row["loss_validation_ratio"]) > 0


def test_afx_train_refuses_bad_settings(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    argv = ["afx-train", "--arch", "ceq", "--task", "eq-peak", "--out", str(tmp_path), "--settings"]
    assert main([*argv, "[1]"]) == 1
    assert "must be a JSON object" in capsys.readouterr().err
    assert main([*argv, '{"no_such_field": 1}']) == 1
    assert "afx-train:" in capsys.readouterr().err


def test_afx_bench_writes_one_table_and_merges_runs(tmp_path: Path) -> None:
    for task_name in ("eq-peak", "spring"):
        argv = ["afx-bench", "--archs", "tcn", "--tasks", task_name, "--minutes", "0.01", "--seconds", "2",
                "--heldout-seconds", "2", "--out", str(tmp_path / task_name)]  # fmt: skip
        assert main(argv) == 0
        assert (tmp_path / task_name / "models" / f"tcn-{task_name}.json").is_file()
    assert main(["afx-bench", "--merge", str(tmp_path / "eq-peak"), str(tmp_path / "spring"),
                 "--out", str(tmp_path / "all")]) == 0  # fmt: skip
    with (tmp_path / "all" / "afx-bench.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["arch"], r["task"]) for r in rows] == [("tcn", "eq-peak"), ("tcn", "spring")]
    assert float(rows[0]["rtf_16k"]) > 0 and rows[1]["t60_error_ratio"] != "" and rows[0]["t60_error_ratio"] == ""
    table = (tmp_path / "all" / "afx-bench.md").read_text()
    assert "| tcn |" in table and "spring t60_error" in table and "eq-peak mrstft" in table
    assert "0.01 min" in table


def test_steer_an_architecture_from_a_pair(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import soundfile as sf
    from scipy import signal

    from models.afx.steer_afx import steer_afx
    from models.afx.tasks import material
    from models.library import load_info, read_info

    dry = material(8.0, 44_100, seed=0)
    wet = signal.lfilter(*signal.butter(2, 1000.0, fs=44_100), dry).astype(np.float32)
    sf.write(tmp_path / "dry.wav", dry, 44_100, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", wet, 44_100, subtype="FLOAT")
    settings = {k: v for k, v in TINY["ceq"].items() if k != "sample_rate"}
    result = steer_afx(tmp_path / "dry.wav", tmp_path / "wet.wav", "steered-ceq", "ceq", 0.05, keep_anyway=True,
                       directory=tmp_path, settings=settings, pretrain_steps=5)  # fmt: skip
    assert result["saved"] and result["arch"] == "ceq" and result["heldout_dry_mrstft"] > 0
    info = read_info(tmp_path / "steered-ceq.json", "user")
    assert [k.name for k in info.knobs] == ["c1", "c2"] and info.sample_rate == 44_100
    effect = load_info(info)
    audio = dry[None, :20_000]
    at_zero, moved = effect.process(audio, {"c1": 0.0}), effect.process(audio, {"c1": 4.0, "c2": -3.0})
    assert at_zero.shape == audio.shape and not np.allclose(at_zero, moved)  # the knobs vary the steered effect
    # the command line takes --arch (the TCN stays the default)
    from server.cli import build_parser

    args = build_parser().parse_args(["steer", "d.wav", "w.wav", "--name", "x", "--arch", "crafx"])
    assert args.arch == "crafx"
    assert build_parser().parse_args(["steer", "d.wav", "w.wav", "--name", "x"]).arch == "tcn"
