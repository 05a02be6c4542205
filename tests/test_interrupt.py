"""Ctrl-C stops a training command that trains several models at once: what was trained is saved, nothing more
starts, and the command exits with status 130 (``match-train``'s own case is in tests/test_match_cli.py)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.afx import tcn_baseline
from models.coach import train as coach_train
from models.fit import FitProgress, FitResult
from models.synth.dataset import DatasetConfig, generate
from server.cli import main

REPO = Path(__file__).parents[1]


def test_ctrl_c_in_train_effect_all_saves_that_effect_and_starts_no_other(tmp_path: Path) -> None:
    out = tmp_path / "effects"
    command = [sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main(sys.argv[1:]))",
               "train-effect", "--effect", "all", "--minutes", "2", "--clip-seconds", "2", "--heldout-seconds", "2",
               "--out", str(out)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    assert process.stdout is not None
    for line in process.stdout:  # the first effect's progress: it is training
        if line.startswith("compressor: step"):
            break
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=120)[0]
    assert process.returncode == 130, rest
    assert "compressor: saved" in rest and rest.rstrip().endswith("reatimbre: interrupted")
    assert sorted(p.name for p in out.iterdir()) == ["compressor.json", "compressor.safetensors"]
    training = json.loads((out / "compressor.json").read_text())["training"]
    assert training["stopped_because"] == "interrupted" and training["steps"] >= 25


def test_ctrl_c_in_afx_bench_keeps_the_row_and_starts_no_other_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_fit = tcn_baseline.fit

    def fit_interrupted_at_step_3(*args: Any, **kwargs: Any) -> FitResult:
        def progress(p: FitProgress) -> None:
            if p.step == 3:
                raise KeyboardInterrupt  # what Ctrl-C raises in the training loop

        return real_fit(*args, **{**kwargs, "progress": progress})

    monkeypatch.setattr(tcn_baseline, "fit", fit_interrupted_at_step_3)
    argv = ["afx-bench", "--archs", "tcn", "ceq", "--tasks", "eq-peak", "--minutes", "5", "--steps", "50",
            "--seconds", "2", "--heldout-seconds", "1", "--rtf-seconds", "0.5", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().endswith("reatimbre: interrupted")
    with (tmp_path / "afx-bench.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["arch"], row["steps"]) for row in rows] == [("tcn", "3")]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tcn-eq-peak.json", "tcn-eq-peak.safetensors"]


def test_ctrl_c_in_coach_train_keeps_the_model_in_training_and_starts_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(DatasetConfig(group="basic_shapes", clips=96, shard_clips=32), tmp_path / "data", 1, progress=False)
    real_fit = coach_train.fit

    def fit_interrupted_at_step_2(*args: Any, **kwargs: Any) -> FitResult:
        def progress(p: FitProgress) -> None:
            if p.step == 2:
                raise KeyboardInterrupt

        return real_fit(*args, **{**kwargs, "progress": progress})

    monkeypatch.setattr(coach_train, "fit", fit_interrupted_at_step_2)
    argv = ["coach-train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "w"), "--cnn-steps", "20",
            "--rnn-steps", "20", "--validate-every", "1", "--quiet"]  # fmt: skip
    assert main(argv) == 130
    printed = capsys.readouterr()
    first = printed.out.splitlines()
    assert len(first) == 1 and "2 steps" in first[0] and "(interrupted)" in first[0]
    name = first[0].split(":")[0]
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [f"{name}.json", f"{name}.safetensors"]
    assert printed.err.strip().endswith("reatimbre: interrupted")
