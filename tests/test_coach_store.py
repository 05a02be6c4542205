"""Coach model files are written atomically: a failed save leaves nothing, an existing model untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.coach import store


def test_a_failed_save_leaves_the_old_model_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = torch.nn.Linear(3, 2)
    store.save_module(module, {"kind": "test"}, tmp_path, "m")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def disk_full(state: dict, filename: str) -> None:
        Path(filename).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "save_file", disk_full)
    with pytest.raises(OSError):
        store.save_module(torch.nn.Linear(3, 2), {"kind": "test"}, tmp_path, "m")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
