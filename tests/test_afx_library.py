"""The thesis's architectures in the model library: saved as safetensors + sidecar, loaded without running code,
rendered block by block equal to one offline pass."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from afx_tiny import TINY

from models.afx import ARCHITECTURES
from models.afx.framing import lookahead_samples, render
from models.afx.network import AfxFrameNetwork, AfxSlidingNetwork, build_network
from models.errors import ReaTimbreError
from models.library import load_info, read_info, save_model

KNOB = {"name": "speed", "unit": "", "minimum": 0.0, "maximum": 1.0, "default": 0.0, "scale": "linear"}


def _perturbed(arch: str, knobs: int = 1) -> torch.nn.Module:
    torch.manual_seed(0)
    network = build_network(arch, {**TINY[arch], "knobs": knobs})
    with torch.no_grad():  # away from the initial values, so a load that kept fresh weights would show
        for p in network.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return network


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_save_and_load_give_identical_output(arch: str, tmp_path: Path) -> None:
    network = _perturbed(arch)
    sidecar = {"sample_rate": 8000, "knobs": [KNOB], **network.describe()}
    info = save_model(network, sidecar, tmp_path, f"my-{arch}")
    effect = load_info(read_info(tmp_path / f"my-{arch}.json", "user"))
    loaded = effect.model
    assert type(loaded) is type(network) and loaded.arch == arch
    state, again = network.state_dict(), loaded.state_dict()
    assert state.keys() == again.keys() and all(torch.equal(state[k], again[k]) for k in state)
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, 3001))).astype(np.float32)
    for speed in (0.0, 1.0):
        expected = render(network.model, audio, torch.tensor([speed]))
        np.testing.assert_allclose(effect.process(audio, {"speed": speed}), expected, atol=1e-5)
    assert not np.allclose(
        render(network.model, audio, torch.tensor([0.0])), render(network.model, audio, torch.tensor([1.0]))
    )
    written = json.loads((tmp_path / f"my-{arch}.json").read_text())
    assert written["architecture"]["type"] == ("AfxSlidingNetwork" if arch == "wavenet" else "AfxFrameNetwork")
    assert written["architecture"]["arch"] == arch and written["architecture"]["knobs"] == 1
    assert written["thesis"]["table_c1_parameters"] == ARCHITECTURES[arch].table_c1_parameters
    assert written["latency_samples"] == info.latency_samples == network.latency_samples
    assert written["lookahead_samples"] == lookahead_samples(network.model)


def test_latency_is_the_look_ahead() -> None:
    crafx = build_network("crafx", TINY["crafx"])  # frames of 256, hop 128, one context frame either side
    assert isinstance(crafx, AfxFrameNetwork)
    assert crafx.latency_samples == 255 + 128 and crafx.receptive_field == 2 * 383 + 1
    wavenet = build_network("wavenet", TINY["wavenet"])
    assert isinstance(wavenet, AfxSlidingNetwork)
    assert wavenet.latency_samples == wavenet.model.receptive_field // 2
    assert build_network("ceq").latency_samples == 1023 and build_network("csafx").latency_samples == 12_287


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_block_by_block_equals_one_pass(arch: str) -> None:
    network = _perturbed(arch).eval()
    audio = torch.from_numpy((0.2 * np.random.default_rng(1).standard_normal((2, 1, 2500))).astype(np.float32))
    control = torch.tensor([0.6])
    whole = network.stream(control).process(audio)
    stream = network.stream(control)
    sizes = np.random.default_rng(2).integers(1, 600, 40)
    edges = np.concatenate(([0], np.cumsum(sizes)))
    edges = edges[edges < 2500].tolist() + [2500]
    blocks = torch.cat([stream.process(audio[..., a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)], -1)
    assert blocks.shape == whole.shape == audio.shape
    torch.testing.assert_close(blocks, whole, atol=1e-4, rtol=0)


def test_damaged_or_mismatched_files_are_refused_with_one_line(tmp_path: Path) -> None:
    save_model(build_network("ceq", TINY["ceq"]), {"sample_rate": 8000, "knobs": []}, tmp_path, "eq")
    sidecar_path = tmp_path / "eq.json"
    sidecar = json.loads(sidecar_path.read_text())

    def refused(changed: dict, match: str) -> None:
        sidecar_path.write_text(json.dumps(changed))
        with pytest.raises(ReaTimbreError, match=match):
            load_info(read_info(sidecar_path, "user"))

    refused({**sidecar, "architecture": {**sidecar["architecture"], "filters": 4}}, "could not be loaded")
    refused({**sidecar, "architecture": {**sidecar["architecture"], "arch": "nope"}}, "unknown afx architecture")
    refused({**sidecar, "architecture": {**sidecar["architecture"], "arch": "wavenet"}}, "damaged")
    refused({**sidecar, "latency_samples": 1}, "latency does not match")
    with pytest.raises(ValueError, match="has 0 knobs"):
        build_network("ceq", TINY["ceq"]).stream(torch.tensor([0.5]))
