"""The bench's table: the loss column over every held-out frame, and merging tables written before newer columns."""

import csv
from pathlib import Path

from models.afx.bench import loss_columns, merge, write_tables


def _sidecar(model: float, dry: float, every: dict | None) -> dict:
    loss = {"loss": "eq49", "model": model, "dry": dry, **({"every_frame": every} if every else {})}
    return {"metrics": {"heldout": {"training_loss": loss}}}


def test_the_loss_column_is_over_every_heldout_frame_where_the_sidecar_has_it() -> None:
    every = {"model": 0.3, "dry": 6.0, "ratio": 0.05, "examples": 1250}
    assert loss_columns(_sidecar(0.1, 5.0, every)) == {
        "loss": "eq49",
        "loss_ratio": "0.05",
        "loss_validation_ratio": "0.02",
    }
    assert loss_columns(_sidecar(0.1, 5.0, None))["loss_ratio"] == "0.02"  # older sidecars: the validation figure
    assert loss_columns({})["loss_ratio"] == ""


def test_merging_an_older_table_with_a_newer_one_keeps_every_column(tmp_path: Path) -> None:
    with (Path(__file__).parents[1] / "docs" / "afx-bench-short" / "afx-bench.csv").open(newline="") as handle:
        old = next(csv.DictReader(handle))  # written before the loss_validation_ratio column
    assert "loss_validation_ratio" not in old
    new = {**old, "task": "eq-shelf", "loss_ratio": "0.01", "loss_validation_ratio": "0.02"}
    folders = tmp_path / "old", tmp_path / "new"
    write_tables([old], folders[0])
    write_tables([new], folders[1])
    rows = merge(list(folders), tmp_path / "all")
    assert [r["task"] for r in rows] == [old["task"], "eq-shelf"]
    with (tmp_path / "all" / "afx-bench.csv").open() as handle:
        merged = list(csv.DictReader(handle))
    assert merged[0]["loss_validation_ratio"] == "" and merged[1]["loss_validation_ratio"] == "0.02"
    assert "eq-shelf loss" in (tmp_path / "all" / "afx-bench.md").read_text()
