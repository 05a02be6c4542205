"""The conditioned TCN: receptive field, causality, exact block-by-block rendering."""

import math
from dataclasses import replace

import pytest
import torch

from models.tcn import ConditionedTCN, TCNConfig, apply_gain_path, sliding_window


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (TCNConfig(kernel_size=9, dilation_growth=10, layers=4), 8_889),
        (TCNConfig(kernel_size=9, dilation_growth=10, layers=5), 88_889),
        (TCNConfig(kernel_size=3, dilation_growth=2, layers=8), 511),
        (TCNConfig(kernel_size=9, dilation_growth=10, layers=4, level_input=True, level_windows=(1, 4096)), 12_984),
        (TCNConfig(kernel_size=9, dilation_growth=10, layers=4, level_windows=(1, 4096)), 8_889),  # no level input
    ],
)
def test_receptive_field_formula(config: TCNConfig, expected: int) -> None:
    assert config.receptive_field == expected


def _trained_like(config: TCNConfig) -> ConditionedTCN:
    torch.manual_seed(0)
    model = ConditionedTCN(config)
    with torch.no_grad():  # non-zero biases everywhere, as after training
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.uniform_(-0.3, 0.3)
            elif name in ("output.weight", "gain_computer.last.weight"):  # a gain-path model starts with these at 0
                parameter.normal_(0.0, 0.3)
    return model.eval()


def test_receptive_field_matches_the_network() -> None:
    """Output sample t responds to input t-rf+1 and not to t-rf: the computed value is the real one."""
    config = TCNConfig(channels=4, kernel_size=3, dilation_growth=3, layers=4)
    model = _trained_like(config)
    rf = config.receptive_field
    x = torch.zeros(1, 1, rf + 1)
    cond = torch.tensor([[0.2, 0.8]])
    with torch.no_grad():
        base = model(x, cond)[0, 0, -1]
        inside, outside = x.clone(), x.clone()
        inside[..., 1] = 1.0  # rf-1 samples before the last: inside the receptive field
        outside[..., 0] = 1.0  # rf samples before the last: outside
        assert model(inside, cond)[0, 0, -1] != base
        assert model(outside, cond)[0, 0, -1] == base


LEVELS = {"level_input": True, "level_windows": (1, 16, 300, 1024), "level_rms": True}
OUTPUT_KINDS = [  # what the output and the first block's input are made of
    {},
    {"gain_path": True},
    {"gain_path": True, "level_input": True},
    {"gain_path": True, **LEVELS},
    {"gain_path": True, **LEVELS, "gain_computer": 8},
]


def test_receptive_field_includes_the_level_windows() -> None:
    """Output sample t responds to input t-rf+1 through the longest level window, and not to t-rf."""
    config = TCNConfig(
        channels=4, kernel_size=3, dilation_growth=2, layers=2, gain_path=True, **LEVELS, gain_computer=4
    )
    model = _trained_like(config)
    rf = config.receptive_field
    assert rf == 1 + 1023 + 2 * (1 + 2)
    x = torch.full((1, 1, rf + 1), 0.01)
    cond = torch.tensor([[0.2, 0.8]])
    with torch.no_grad():
        base = model(x, cond)[0, 0, -1]
        inside, outside = x.clone(), x.clone()
        inside[..., 1] = 0.9
        outside[..., 0] = 0.9
        assert model(inside, cond)[0, 0, -1] != base
        assert model(outside, cond)[0, 0, -1] == base


@pytest.mark.parametrize("window", [1, 2, 7, 64, 1000])
def test_sliding_window_max_and_sum(window: int) -> None:
    values = torch.rand(2, 1, 3_000, dtype=torch.float64)
    frames = values.unfold(-1, window, 1)  # (..., T - window + 1, window)
    assert torch.equal(sliding_window(values, window, torch.maximum), frames.amax(-1))
    assert torch.allclose(sliding_window(values, window, torch.add), frames.sum(-1))


@pytest.mark.parametrize("window", [0, -3])
def test_sliding_window_refuses_an_empty_window(window: int) -> None:
    with pytest.raises(ValueError, match="at least one sample"):  # it returned None before
        sliding_window(torch.rand(1, 1, 10), window, torch.maximum)


def test_level_input_reads_a_steady_tone_by_its_peak_whatever_its_shape() -> None:
    """A sine and a square wave of the same peak give the same level once the window spans a period."""
    model = ConditionedTCN(TCNConfig(channels=4, layers=2, level_input=True, level_windows=(1, 512)))
    t = torch.arange(4_000) / 44_100
    sine = 0.5 * torch.sin(2 * torch.pi * 220 * t)
    levels = [model.network_input(x.view(1, 1, -1))[0, 2, -1000:] for x in (sine, 0.5 * torch.sign(sine))]
    assert torch.allclose(levels[0], levels[1], atol=1e-3)
    assert torch.allclose(levels[0], torch.log10(torch.tensor(0.5 + 1e-4)) / 2, atol=1e-3)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_stream_equals_one_pass_for_any_block_sizes(kind: dict) -> None:
    config = TCNConfig(channels=8, kernel_size=9, dilation_growth=10, layers=4, **kind)
    model = _trained_like(config)
    x = 0.3 * torch.randn(2, 1, 30_000)
    cond = torch.tensor([0.7, 0.1])
    with torch.no_grad():
        one_pass = model(torch.nn.functional.pad(x, (config.receptive_field - 1, 0)), cond.expand(2, 2))
    stream = model.stream(cond)
    pieces, start = [], 0
    for size in (1, 5, 4_000, 17, 12_000, 13_977):
        pieces.append(stream.process(x[..., start : start + size]))
        start += size
    assert start == x.shape[-1]
    assert torch.max(torch.abs(torch.cat(pieces, dim=-1) - one_pass)) < 1e-4


def test_control_vector_changes_the_output() -> None:
    model = _trained_like(TCNConfig(channels=8, layers=2))
    x = torch.randn(1, 1, 5_000)
    a = model.stream(torch.tensor([0.0, 0.0])).process(x)
    b = model.stream(torch.tensor([1.0, 0.0])).process(x)
    assert not torch.allclose(a, b)


def test_flops_count_is_per_sample_work() -> None:
    config = TCNConfig(channels=16, kernel_size=9, layers=4)
    # first layer from 1 channel, then 16 -> 16; convs dominate.
    conv = 2 * (1 * 16 * 9 + 3 * 16 * 16 * 9)
    assert conv < config.flops_per_sample() < conv * 1.2


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_silence_in_gives_exact_silence_out(kind: dict) -> None:
    """No DC offset in pauses: biases and FiLM shifts are cancelled by subtracting the silence response."""
    config = TCNConfig(channels=8, kernel_size=3, dilation_growth=2, layers=5, **kind)
    model = _trained_like(config)
    for cond in (torch.tensor([0.0, 1.0]), torch.tensor([0.9, 0.2])):
        with torch.no_grad():
            assert torch.max(torch.abs(model(torch.zeros(2, 1, 2_000), cond.expand(2, 2)))) < 1e-6
        assert torch.max(torch.abs(model.stream(cond).process(torch.zeros(1, 1, 3_000)))) < 1e-6


def test_gain_path_starts_as_the_identity_and_scales_the_input() -> None:
    """An untrained gain-path model passes the dry sound through; its gain signal scales the current sample within
    +-30 dB, saturating."""
    config = TCNConfig(channels=4, kernel_size=3, dilation_growth=2, layers=3, gain_path=True)
    torch.manual_seed(1)
    for start in (config, replace(config, **LEVELS, gain_computer=4)):
        model = ConditionedTCN(start).eval()
        rf = start.receptive_field
        x = torch.randn(2, 1, 1_000 + rf - 1)
        with torch.no_grad():
            assert torch.equal(model(x, torch.zeros(2, 2)), x[..., rf - 1 :])
    dry = torch.tensor([[[1.0, -2.0, 0.5, 0.5]]])
    half = math.atanh(0.2)  # tanh -> 0.2: +6 dB
    residual_and_gain = torch.tensor([[[0.1, 0.0, -0.1, 0.0], [0.0, 50.0, -50.0, half]]])
    expected = torch.tensor([[[1.1, -2.0 * 10**1.5, 0.5 * 10**-1.5 - 0.1, 0.5 * 10**0.3]]])
    assert torch.allclose(apply_gain_path(dry, residual_and_gain), expected)
    with pytest.raises(ValueError, match="gain_path"):
        ConditionedTCN(TCNConfig(in_channels=1, out_channels=2, gain_path=True))


def test_gain_range_is_a_setting_and_widening_keeps_small_gains() -> None:
    """``max_gain_db`` bounds the gain path's gain; :meth:`ConditionedTCN.with_gain_range` rescales the gain signal so
    that gains well inside the old range stay nearly the same, and the new range reaches past the old one."""
    dry = torch.ones(1, 1, 1)
    saturated = torch.tensor([[[0.0], [50.0]]])
    assert torch.allclose(apply_gain_path(dry, saturated), torch.tensor(10 ** (30 / 20)).view(1, 1, 1))
    assert torch.allclose(apply_gain_path(dry, saturated, 60.0), torch.tensor(10 ** (60 / 20)).view(1, 1, 1))
    with pytest.raises(ValueError, match="max_gain_db"):
        TCNConfig(max_gain_db=0.0)
    for extra in ({}, {**LEVELS, "gain_computer": 4}):
        config = TCNConfig(channels=4, kernel_size=3, dilation_growth=2, layers=3, gain_path=True, **extra)
        torch.manual_seed(2)
        model = ConditionedTCN(config).eval()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))  # a gain of a few dB, varying
        wide = model.with_gain_range(60.0)
        assert wide.config == replace(config, max_gain_db=60.0)
        x = torch.nn.functional.pad(0.3 * torch.randn(2, 1, 2_000), (config.receptive_field - 1, 0))
        control = torch.rand(2, 2)
        with torch.no_grad():
            before, after = model(x, control), wide(x, control)
        assert not torch.equal(before, after) and torch.allclose(before, after, rtol=0.02, atol=1e-4)
        stream = wide.stream(control[0])
        assert torch.allclose(stream.process(x[:1, :, config.receptive_field - 1 :]), after[:1], atol=1e-5)
    with pytest.raises(ValueError, match="gain path"):
        ConditionedTCN(TCNConfig(channels=2, layers=1)).with_gain_range(60.0)
