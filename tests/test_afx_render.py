"""Rendering any length: framing with hop and overlap-add, the sliding WaveNet, alignment with the input."""

import numpy as np
import pytest
import torch
from afx_tiny import TINY

from models.afx import ARCHITECTURES, build
from models.afx import framing as framing_module
from models.afx.framing import FrameModel, Framing, examples, overlap_add, render


class PassThrough(FrameModel):
    """Returns its current input frame, re-windowed as its output window says: the ideal model of 'no effect'."""

    def __init__(self, framing: Framing):
        super().__init__()
        self.framing = framing

    def forward(self, frames: torch.Tensor, control: torch.Tensor | None = None) -> torch.Tensor:
        f = self.framing
        current = frames[:, f.context_frames : f.context_frames + 1]
        if f.input_window == "rect":
            current = current * f.window(f.output_window)
        return current


FRAMINGS = [
    Framing(1024, 256, 0, "hann", "hann"),  # CEQ
    Framing(1024, 256, 0, "rect", "rect"),  # CAFx
    Framing(256, 128, 2, "rect", "rect"),  # CRAFx, CWAFx (small)
    Framing(256, 128, 1, "rect", "hann"),  # CSAFx (small)
]


@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f"{f.frame_samples}-{f.hop_samples}-{f.context_frames}")
@pytest.mark.parametrize("length", [1, 100, 1000, 4097])
def test_overlap_add_of_unchanged_frames_gives_back_the_input(framing: Framing, length: int) -> None:
    audio = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    out = render(PassThrough(framing), audio)
    assert out.shape == audio.shape
    np.testing.assert_allclose(out, audio, atol=1e-5)


def test_overlap_add_places_frames_hop_apart() -> None:
    frames = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    assert overlap_add(frames, 2).tolist() == [0, 1, 2 + 4, 3 + 5, 6 + 8, 7 + 9, 10, 11]


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("length", [1, 777, 3001])
def test_every_architecture_renders_any_length(arch: str, length: int) -> None:
    torch.manual_seed(0)
    model = build(arch, TINY[arch])
    audio = (0.1 * np.random.default_rng(0).standard_normal(length)).astype(np.float32)
    out = render(model, audio)
    assert out.shape == (length,) and out.dtype == np.float32 and np.isfinite(out).all()
    stereo = render(model, np.stack([audio, -audio]))
    assert stereo.shape == (2, length)
    np.testing.assert_allclose(stereo[0], out, atol=1e-6)


@pytest.mark.parametrize("arch", ["ceq", "crafx", "wavenet"])
def test_rendering_in_batches_or_blocks_changes_nothing(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = build(arch, TINY[arch])
    audio = (0.1 * np.random.default_rng(1).standard_normal(5000)).astype(np.float32)
    whole = render(model, audio)
    monkeypatch.setattr(framing_module, "PLAIN_BATCH_FRAMES", 3)
    monkeypatch.setattr(framing_module, "CONTEXT_BATCH_FRAMES", 3)
    monkeypatch.setattr(framing_module, "RENDER_BLOCK_SAMPLES", 333)
    np.testing.assert_allclose(render(model, audio), whole, atol=1e-5)


def test_wavenet_render_lines_up_with_one_unpadded_pass() -> None:
    torch.manual_seed(0)
    model = build("wavenet", TINY["wavenet"]).eval()
    audio = (0.1 * np.random.default_rng(2).standard_normal(2000)).astype(np.float32)
    half = model.receptive_field // 2
    padded = torch.nn.functional.pad(torch.from_numpy(audio), (half, half))[None, None]
    with torch.no_grad():
        expected = model(padded)[0, 0].numpy()
    np.testing.assert_allclose(render(model, audio), expected, atol=1e-5)


def test_training_examples_frame_the_target_where_rendering_puts_it() -> None:
    framing = Framing(256, 128, 1, "rect", "hann")
    model = PassThrough(framing)
    signal = torch.arange(2000, dtype=torch.float32)
    x, y = examples(model, signal, signal * 2, [400, 700])
    assert x.shape == (2, 3, 256) and y.shape == (2, 1, 256)
    assert x[0, 0, 0] == 400 - 128 and x[0, 1, 0] == 400 and x[0, 2, 0] == 400 + 128
    assert torch.allclose(y[1, 0], 2 * signal[700:956] * torch.hann_window(256))
    with pytest.raises(ValueError, match="runs off"):
        examples(model, signal, signal, [50])


@pytest.mark.parametrize("arch", ["crafx", "cwafx", "csafx"])
def test_context_frame_models_render_as_their_forward_on_each_frame(arch: str) -> None:
    """Rendering runs the front-end once per input frame and shares it between neighbours' contexts: the output is
    the model's ``forward`` on each output frame's own 2k+1 frames, with knobs too."""
    torch.manual_seed(0)
    model = build(arch, {**TINY[arch], "knobs": 1}).eval()
    torch.nn.init.normal_(model.film.linear.weight)  # a knob that changes the latents
    f = model.framing
    k, n, hop, frames = f.context_frames, f.frame_samples, f.hop_samples, 7
    padded = torch.randn(2, (frames - 1 + 2 * k) * hop + n) * 0.1
    control = torch.tensor([[0.2], [0.9]])
    with torch.no_grad():
        shared = framing_module.frame_batches(model, padded, frames, control, 3)
        each = padded.unfold(-1, n, hop).unfold(1, 2 * k + 1, 1).permute(0, 1, 3, 2).reshape(2 * frames, 2 * k + 1, n)
        alone = model(each, control.repeat_interleave(frames, 0))[:, 0].reshape(2, frames, n)
    synthesis = torch.hann_window(n) if f.output_window == "rect" else torch.ones(n)
    assert torch.allclose(shared, alone * synthesis, atol=1e-6) and alone.abs().max() > 1e-3
    assert not torch.allclose(shared[0], shared[1])  # the two rows' knobs and inputs differ
