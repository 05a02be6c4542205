"""CRAFx, CWAFx and CSAFx told the effect's LFO clocks (models/afx/clocks.py): they read the phases, render block by
block as in one pass, train on crops told where they lie in the render; without clocks nothing changes."""

import numpy as np
import pytest
import torch
from afx_tiny import TINY

from models.afx import build, parameter_count
from models.afx import framing as framing_module
from models.afx.framing import render, told_clocks
from models.afx.leslie import rotor_clocks
from models.afx.network import build_network
from models.afx.segment import Segment
from models.afx.train import SegmentSource, _Unconditioned

CLOCKED = ["crafx", "cwafx", "csafx"]
HOP = TINY["crafx"]["hop_samples"]  # 128 at 8 kHz
CYCLE = 5 * HOP  # 640 samples: one cycle of a 12.5 Hz clock at 8 kHz


def _fixed_clock(rate_hz: float) -> dict:
    return {"rate_index": 0, "rate_min_hz": rate_hz, "rate_max_hz": rate_hz, "rate_scale": "linear",
            "start_phase": 0.3}  # fmt: skip


def _clocked(arch: str, clocks: list[dict], knobs: int = 0) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build(arch, {**TINY[arch], "knobs": knobs, "clocks": clocks})
    with torch.no_grad():  # a clock term that is not zero, as after training
        for p in model.clock_modulation.parameters():
            p.normal_(0.0, 0.5)
    return model.eval()


def _audio(length: int, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(length)).astype(np.float32)


@pytest.mark.parametrize("arch", CLOCKED)
def test_without_clocks_the_models_are_unchanged_and_blind_to_where_a_frame_lies(arch: str) -> None:
    """No clock layers, the same parameters (the thesis's counts are checked in test_afx_architectures.py), and the
    output of audio delayed by whole hops is the output delayed: the model cannot know the render position."""
    model = build(arch, TINY[arch]).eval()
    assert not told_clocks(model) and model.clock_modulation is None
    assert not any("clock" in name for name in model.state_dict())
    clocked = build(arch, {**TINY[arch], "clocks": [_fixed_clock(12.5)]})
    features = 2 * 3  # one clock, 3 harmonics, sine and cosine
    lstm_inputs = {"crafx": 4 * 2 * 16, "cwafx": 0, "csafx": 4 * 2 * 16}[arch]  # 4 gates x 2 directions x units
    assert parameter_count(clocked) - parameter_count(model) == features * lstm_inputs + 2 * features * 8
    audio = _audio(2000)
    shifted = render(model, np.concatenate((np.zeros(2 * HOP, np.float32), audio)))[2 * HOP :]
    np.testing.assert_allclose(shifted, render(model, audio), atol=1e-5)


@pytest.mark.parametrize("arch", CLOCKED)
def test_a_clocked_model_reads_the_phase_of_each_frame(arch: str) -> None:
    """Told clocks of 12.5 and 25 Hz (whole cycles in 5 hops), the output of audio delayed by 5 hops is the output
    delayed, and by 2 hops it is not: the phase, counted from the render's first sample, changes the output."""
    model = _clocked(arch, [_fixed_clock(12.5), _fixed_clock(25.0)])
    audio = _audio(2000)
    plain = render(model, audio)

    def delayed(samples: int) -> np.ndarray:
        return render(model, np.concatenate((np.zeros(samples, np.float32), audio)))[samples:]

    np.testing.assert_allclose(delayed(CYCLE), plain, atol=1e-5)
    assert np.abs(delayed(2 * HOP) - plain).max() > 1e-2 * np.abs(plain).max()


@pytest.mark.parametrize("arch", CLOCKED)
def test_a_clocked_model_streams_block_by_block_as_its_offline_render(arch: str) -> None:
    """The Leslie's two rotor clocks, rates from the speed knob: any block sizes give one pass's output (within
    1e-4), which is the offline render delayed by the look-ahead (the renderers' latency compensation)."""
    network = build_network(arch, {**TINY[arch], "knobs": 1, "clocks": rotor_clocks()})
    with torch.no_grad():
        torch.manual_seed(1)
        for p in network.model.clock_modulation.parameters():
            p.normal_(0.0, 0.5)
    network.eval()
    length = 2500
    audio = torch.from_numpy(np.stack([_audio(length, 1), _audio(length, 2)])[:, None])
    control = torch.tensor([0.6])
    latency = network.latency_samples
    padded = torch.nn.functional.pad(audio, (0, latency))
    whole = network.stream(control).process(padded)
    stream = network.stream(control)
    sizes = np.random.default_rng(2).integers(1, 600, 60)
    edges = np.concatenate(([0], np.cumsum(sizes)))
    edges = edges[edges < length + latency].tolist() + [length + latency]
    blocks = torch.cat([stream.process(padded[..., a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)], -1)
    torch.testing.assert_close(blocks, whole, atol=1e-4, rtol=0)
    offline = network(audio, control.expand(2, 1))
    torch.testing.assert_close(whole[..., latency:], offline, atol=1e-4, rtol=0)
    faster = network(audio, torch.tensor([[1.0], [1.0]]))
    assert (faster - offline).abs().max() > 1e-3  # the knob sets the rotors' rates


@pytest.mark.parametrize("arch", CLOCKED)
def test_rendering_tells_each_frame_its_render_sample(arch: str) -> None:
    """The frames of a render (origin: the render sample of the padded input's first sample) are the model's
    forward on each frame told its current frame's first render sample."""
    model = _clocked(arch, rotor_clocks(), knobs=1)
    f = model.framing
    k, n, hop, frames, origin = f.context_frames, f.frame_samples, f.hop_samples, 7, -300
    padded = torch.randn(2, (frames - 1 + 2 * k) * hop + n) * 0.1
    control = torch.tensor([[0.2], [0.9]])
    with torch.no_grad():
        shared = framing_module.frame_batches(model, padded, frames, control, 3, origin=origin)
        each = padded.unfold(-1, n, hop).unfold(1, 2 * k + 1, 1).permute(0, 1, 3, 2).reshape(2 * frames, 2 * k + 1, n)
        starts = (origin + (torch.arange(frames) + k) * hop).repeat(2)
        alone = model(each, control.repeat_interleave(frames, 0), starts)[:, 0].reshape(2, frames, n)
        later = model(each, control.repeat_interleave(frames, 0), starts + 1000)[:, 0].reshape(2, frames, n)
    assert torch.allclose(shared, alone * torch.hann_window(n) if f.output_window == "rect" else alone, atol=1e-6)
    assert not torch.allclose(alone, later, atol=1e-4)
    with pytest.raises(ValueError, match="first render sample"):
        model(each, control.repeat_interleave(frames, 0))


def test_training_examples_are_told_where_they_lie_in_their_render() -> None:
    """A clocked model's training batches carry each example's render sample as the control's last column, and the
    training wrapper hands it to the model as ``first_sample``."""
    model = _clocked("crafx", rotor_clocks(), knobs=1)
    dry, wet = _audio(3000, 3), _audio(3000, 4)
    segment = Segment(dry, wet, np.array([0.5], np.float32))
    source = SegmentSource(model, [segment], seed=0, clocked=True)
    x, control, y = source.batch(4)
    assert control.shape == (4, 2) and torch.all(control[:, 0] == 0.5)
    inner = source.sources[0]
    for row in range(4):  # the target is the wet signal at that render sample
        first = int(control[row, 1])
        assert 0 <= first < 3000
        np.testing.assert_array_equal(y[row, 0].numpy(), np.pad(wet, (0, inner.length))[first : first + inner.length])
    wrapped = _Unconditioned(model)
    with torch.no_grad():
        expected = model(x, control[:, :1], control[:, 1].long())
        torch.testing.assert_close(wrapped(x, control), expected)
        assert not torch.allclose(wrapped(x, control + torch.tensor([0.0, 333.0])), expected, atol=1e-4)
    plain = SegmentSource(build("crafx", {**TINY["crafx"], "knobs": 1}), [segment], seed=0)
    assert plain.batch(4)[1].shape == (4, 1)  # an unclocked model's control is only the knobs
