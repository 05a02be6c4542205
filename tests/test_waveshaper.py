"""The conditioned waveshaper (models.waveshaper): the library contract, and a tiny training run on the overdrive."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.networks import architecture_record, build_network
from models.waveshaper import ConditionedWaveshaper, WaveshaperConfig

SMALL = WaveshaperConfig(units=4, taps=16)


def _random(config: WaveshaperConfig = SMALL) -> ConditionedWaveshaper:
    torch.manual_seed(3)
    model = ConditionedWaveshaper(config).eval()
    with torch.no_grad():
        model.curve.weight.normal_(0.0, 0.3)
        model.filter.weight.normal_(0.0, 0.3)
    return model


def test_settings_round_trip_and_receptive_field() -> None:
    model = ConditionedWaveshaper(SMALL)
    rebuilt = build_network(architecture_record(model))
    assert isinstance(rebuilt, ConditionedWaveshaper) and rebuilt.config == SMALL
    assert model.receptive_field == 16 and model.latency_samples == 0
    with pytest.raises(ValueError, match="positive"):
        WaveshaperConfig(taps=0)


def test_starts_as_the_identity_and_keeps_silence_silent() -> None:
    x = torch.randn(2, 1, 500) * 0.5
    control = torch.tensor([[0.2, 0.9], [1.0, 0.0]])
    fresh = ConditionedWaveshaper(SMALL)
    with torch.no_grad():
        assert torch.allclose(fresh(x, control), x[..., SMALL.taps - 1 :], atol=1e-6)
    stream = _random().stream(torch.tensor([0.7, 0.1]))
    assert torch.equal(stream.process(torch.zeros(1, 1, 300)), torch.zeros(1, 1, 300))


def test_stream_equals_one_pass_whatever_the_blocks() -> None:
    model = _random()
    control = torch.tensor([0.3, 0.8])
    x = torch.randn(2, 1, 2_000) * 0.4
    with torch.no_grad():
        whole = model(torch.nn.functional.pad(x, (SMALL.taps - 1, 0)), control.expand(2, -1))
    stream = model.stream(control)
    edges = [0, 1, 9, 10, 700, 2_000]
    blocks = [stream.process(x[..., a:b]) for a, b in zip(edges, edges[1:], strict=False)]
    assert torch.allclose(torch.cat(blocks, dim=-1), whole, atol=1e-5)


def test_the_curve_can_be_a_drive_into_tanh_and_the_filter_a_delay() -> None:
    """The shapes the overdrive needs are within reach: ``tanh(g x)`` from one unit, any FIR from the taps."""
    model = ConditionedWaveshaper(SMALL)
    with torch.no_grad():
        model.curve.weight.zero_()  # the same curve at any knob setting
        model.curve.bias[0] = 0.0  # no linear part
        model.curve.bias[1] = float(np.log(20.0))  # unit 0: gain 20 (26 dB), no offset, weight 1
        model.curve.bias[1 + 2 * SMALL.units] = 1.0
        model.filter.bias.zero_()
        model.filter.bias[3] = 0.5  # half the level, three samples late
        x = torch.linspace(-1, 1, 200).reshape(1, 1, -1)
        y = model(torch.nn.functional.pad(x, (SMALL.taps - 1, 0)), torch.zeros(1, 2))
    expected = 0.5 * torch.nn.functional.pad(torch.tanh(20 * x), (3, 0))[..., :200]
    assert torch.allclose(y, expected, atol=1e-6)


def test_a_tiny_overdrive_run_learns_and_saves_a_waveshaper(tmp_path) -> None:
    from models.effect_training import RECIPES, train_effect
    from models.library import load_info, read_info

    recipe = replace(
        RECIPES["overdrive"],
        config=replace(RECIPES["overdrive"].config, taps=32),
        steps=60,
        batch_size=4,
        segment_samples=2_048,
        train_clips=2,
        heldout_clips=1,
        clip_seconds=3.0,
        heldout_seconds=1.0,
        grid=(0.5,),
        warmup_fraction=0.0,
        learning_rate=1e-2,
    )
    torch.manual_seed(0)
    info = train_effect("overdrive", tmp_path, recipe=recipe, model_name="shaper")
    sidecar = info.sidecar
    assert sidecar["architecture"]["type"] == "ConditionedWaveshaper" and sidecar["receptive_field_samples"] == 32
    held = sidecar["metrics"]["heldout"]
    assert held["model"]["mrstft"] < 0.8 * held["dry"]["mrstft"]  # it learnt the drive and the tone
    history = [row["validation"] for row in sidecar["metrics"]["validation_history"]]
    assert min(history[1:]) < history[0]
    loaded = load_info(read_info(tmp_path / "shaper.json", "user"))
    assert loaded.process(np.zeros((2, 100), np.float32), {"drive": 30.0}).shape == (2, 100)
