"""Model files of the thesis's architectures: safetensors weights + JSON sidecar, loaded without running code."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from afx_tiny import TINY
from safetensors.torch import load_file

from models.afx import ARCHITECTURES, build
from models.afx.files import AFX_FORMAT, load_afx_model, same_weights, save_afx_model
from models.afx.framing import render
from models.errors import ReaTimbreError


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_save_and_load_give_identical_output(arch: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build(arch, TINY[arch])
    with torch.no_grad():  # away from the initial values, so a load that kept fresh weights would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    info = save_afx_model(model, arch, tmp_path, f"my-{arch}", {"description": "test"})
    loaded, read = load_afx_model(tmp_path / f"my-{arch}.json")
    assert same_weights(model, loaded) and type(loaded) is type(model)
    audio = (0.1 * np.random.default_rng(0).standard_normal(3001)).astype(np.float32)
    np.testing.assert_array_equal(render(loaded, audio), render(model, audio))
    sidecar = json.loads((tmp_path / f"my-{arch}.json").read_text())
    assert sidecar == read.sidecar == info.sidecar
    assert sidecar["format"] == AFX_FORMAT and sidecar["architecture"]["type"] == arch
    assert sidecar["parameters"] == sum(p.numel() for p in model.parameters())
    assert sidecar["table_c1_parameters"] == ARCHITECTURES[arch].table_c1_parameters
    assert sidecar["description"] == "test" and sidecar["latency_samples"] == 0
    assert all(isinstance(v, torch.Tensor) for v in load_file(str(tmp_path / f"my-{arch}.safetensors")).values())


def test_sidecar_states_framing_and_look_ahead(tmp_path: Path) -> None:
    save_afx_model(build("crafx", TINY["crafx"]), "crafx", tmp_path, "c")
    save_afx_model(build("wavenet", TINY["wavenet"]), "wavenet", tmp_path, "w")
    crafx = json.loads((tmp_path / "c.json").read_text())
    assert crafx["framing"] == {
        "frame_samples": 256,
        "hop_samples": 128,
        "context_frames": 1,
        "input_window": "rect",
        "output_window": "rect",
    }
    assert crafx["lookahead_samples"] == 255 + 128 and crafx["receptive_field_samples"] is None
    wavenet = json.loads((tmp_path / "w.json").read_text())
    assert wavenet["framing"] is None and wavenet["lookahead_samples"] == wavenet["receptive_field_samples"] // 2


def test_damaged_or_foreign_files_are_refused_with_one_line(tmp_path: Path) -> None:
    save_afx_model(build("ceq", TINY["ceq"]), "ceq", tmp_path, "eq")
    sidecar_path = tmp_path / "eq.json"
    sidecar = json.loads(sidecar_path.read_text())

    def refused(changed: dict, match: str) -> None:
        sidecar_path.write_text(json.dumps(changed))
        with pytest.raises(ReaTimbreError, match=match):
            load_afx_model(sidecar_path)

    refused({**sidecar, "format": "reatimbre-effect-model/1"}, "not a reatimbre-afx-model/1 sidecar")
    refused({**sidecar, "architecture": {**sidecar["architecture"], "filters": 4}}, "could not be loaded")
    refused({**sidecar, "architecture": {**sidecar["architecture"], "type": "nope"}}, "could not be loaded")
    refused({**sidecar, "lookahead_samples": 1}, "look-ahead")
    sidecar_path.write_text("{not json")
    with pytest.raises(ReaTimbreError, match="unreadable"):
        load_afx_model(sidecar_path)
    sidecar_path.write_text(json.dumps(sidecar))
    (tmp_path / "eq.safetensors").unlink()
    with pytest.raises(ReaTimbreError, match="missing"):
        load_afx_model(sidecar_path)
    with pytest.raises(ReaTimbreError, match="invalid model name"):
        save_afx_model(build("ceq", TINY["ceq"]), "ceq", tmp_path, "../escape")
    with pytest.raises(ReaTimbreError, match="not a CAFx"):
        save_afx_model(build("ceq", TINY["ceq"]), "cafx", tmp_path, "wrong")
