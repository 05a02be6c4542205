"""The library renders any registered network type, not only the conditioned TCN (models.networks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.errors import ReaTimbreError
from models.library import load_model, read_info, save_model, scan_models
from models.networks import NETWORK_TYPES, architecture_record, build_network
from models.tcn import ConditionedTCN, TCNConfig
from models.userdirs import user_models_dir
from tests.delay_network import DelayedGain

KNOB = {
    "name": "gain",
    "unit": "",
    "minimum": 0.0,
    "maximum": 1.0,
    "default": 0.5,
    "scale": "linear",
    "conditioning": "normalised",
    "description": "test gain",
}


@pytest.fixture
def delayed_gain_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(NETWORK_TYPES, "DelayedGain", "tests.delay_network:DelayedGain")


def test_tcn_settings_round_trip() -> None:
    model = ConditionedTCN(TCNConfig(channels=4, layers=2, level_input=True, level_windows=(1, 64)))
    rebuilt = build_network(architecture_record(model))
    assert isinstance(rebuilt, ConditionedTCN)
    assert rebuilt.config == model.config


def test_unknown_type_is_a_damaged_model() -> None:
    model = ConditionedTCN(TCNConfig(channels=4, layers=2, cond_dim=1))
    info = save_model(model, {"sample_rate": 44100, "knobs": [KNOB]}, user_models_dir(), "odd-net")
    sidecar = json.loads(info.weights_path.with_suffix(".json").read_text())
    sidecar["architecture"]["type"] = "NoSuchNet"
    info.weights_path.with_suffix(".json").write_text(json.dumps(sidecar))
    try:
        with pytest.raises(ReaTimbreError, match="damaged: unknown network type 'NoSuchNet'"):
            read_info(info.weights_path.with_suffix(".json"), "user")
        assert any("odd-net" in problem for problem in scan_models()[1])
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()


def test_other_network_type_saves_loads_and_streams(delayed_gain_type: None) -> None:
    model = DelayedGain(latency=7)
    with torch.no_grad():
        model.gain.weight.fill_(2.0)
        model.gain.bias.fill_(0.0)
    info = save_model(model, {"sample_rate": 44100, "knobs": [KNOB]}, user_models_dir(), "delayed-gain")
    try:
        assert info.latency_samples == 7 and info.receptive_field == 8 and info.network_type == "DelayedGain"
        effect = load_model("delayed-gain")
        assert effect.latency_samples == 7
        x = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
        y = effect.process(x, {"gain": 1.0})  # the latency is compensated: aligned with the input
        np.testing.assert_allclose(y, 2.0 * x, rtol=1e-6)
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()
