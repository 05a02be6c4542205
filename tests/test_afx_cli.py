"""``reatimbre afx-train`` and ``reatimbre afx-bench`` end to end with tiny budgets: models land in the library
with their knob and held-out figures, and the bench writes one table (merged from runs side by side)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from afx_tiny import TINY

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
    assert info.sidecar["emulates"]["task"] == "leslie" and info.sidecar["training"]["knob_values"] == [0.0, 1.0]
    assert info.sidecar["training"]["command"].startswith("reatimbre ")
    effect = load_info(info)
    audio = (0.1 * np.random.default_rng(0).standard_normal((1, 4000))).astype(np.float32)
    assert effect.process(audio, {"speed": 1.0}).shape == audio.shape


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
