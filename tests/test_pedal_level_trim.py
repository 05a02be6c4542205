"""The level trim over the knobs measured after training (models.pedals.level_trim) and the filter's use of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.networks import architecture_record, build_network
from models.pedals.biquads import BiquadConfig, ConditionedBiquads
from models.pedals.level_trim import KnobLevelTrim, corner_weights, measure_trim_db

SMALL = BiquadConfig(sections=2, units=4, cond_hidden=16, receptive_field=4096)
TRIMMED = BiquadConfig(sections=2, units=4, cond_hidden=16, receptive_field=4096, level_trim_points=3)


def test_the_trim_interpolates_between_its_grid_points() -> None:
    trim = KnobLevelTrim(knobs=2, points=3)
    with torch.no_grad():
        trim.trim_db.copy_(torch.arange(9.0))  # index = 3 * i + j at positions (i / 2, j / 2)
    positions = torch.tensor([[0.0, 0.0], [1.0, 0.5], [0.25, 0.0], [0.5, 0.75], [1.0, 1.0]])
    expected_db = torch.tensor([0.0, 7.0, 1.5, 4.5, 8.0])
    assert torch.allclose(20 * torch.log10(trim.gain(positions)), expected_db, atol=1e-5)
    _, weights = corner_weights(torch.rand(50, 3), 4)
    assert torch.allclose(weights.sum(-1), torch.ones(50), atol=1e-6)


def test_measuring_recovers_a_level_error_that_depends_on_the_knobs() -> None:
    """Crops whose real output is louder than the model's by 2 dB x knob 0 - 1 dB x knob 1: the measured grid
    follows it, and a grid point no crop reaches keeps 0 dB."""
    rng = np.random.default_rng(0)
    positions = rng.random((4000, 2)) * np.array([1.0, 0.5])  # knob 1 never above 0.5
    model = rng.uniform(0.1, 2.0, 4000)
    target = model * 10 ** ((2.0 * positions[:, 0] - 1.0 * positions[:, 1]) / 10)
    grid = measure_trim_db(positions, model, target, points=3).reshape(3, 3)
    expected = np.array([[2.0 * i / 2 - 1.0 * j / 2 for j in range(3)] for i in range(3)])
    assert np.allclose(grid[:, :2], expected[:, :2], atol=0.15)
    assert np.allclose(grid[:, 2], 0.0, atol=1e-9)
    assert measure_trim_db(positions[:5], model[:5] * 1e-9, model[:5], points=2).max() <= 6.0  # limited


def test_a_trimmed_filter_streams_as_one_pass_and_starts_as_the_untrimmed_one() -> None:
    torch.manual_seed(0)
    plain = ConditionedBiquads(SMALL, knobs=2)
    with torch.no_grad():
        for parameter in plain.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    trimmed = ConditionedBiquads(TRIMMED, knobs=2)
    assert trimmed.takes_weights_of(plain)
    assert not trimmed.takes_weights_of(ConditionedBiquads(BiquadConfig(sections=3, receptive_field=4096), knobs=2))
    rebuilt = build_network(architecture_record(trimmed))
    assert isinstance(rebuilt, ConditionedBiquads) and rebuilt.config == TRIMMED
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 1, 3 * 4096)).astype(np.float32) * 0.3)
    control = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        assert torch.allclose(trimmed(x, control[None]), plain(x, control[None]), atol=1e-6)
        trimmed.level_trim.trim_db.copy_(torch.linspace(-3.0, 3.0, 9))
        whole = trimmed(x, control[None])
    streamed = trimmed.stream(control).process(x)[..., 4095:]
    assert torch.max(torch.abs(whole - streamed)).item() < 1e-4
    blocks = trimmed.stream(control)
    parts = torch.cat([blocks.process(x[..., s : s + 1000]) for s in range(0, x.shape[-1], 1000)], dim=-1)
    assert torch.max(torch.abs(parts[..., 4095:] - streamed)).item() < 1e-4
    gain = trimmed.level_trim.gain(control[None])
    assert torch.allclose(whole, plain(x, control[None]).detach() * gain, atol=1e-5)


def test_a_level_trim_needs_two_points() -> None:
    with pytest.raises(ValueError, match="level_trim_points"):
        BiquadConfig(level_trim_points=1)
