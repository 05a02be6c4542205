"""How the architectures see audio: frames with hop and overlap-add, or a sliding receptive field.

The frame-based models (CEQ, CAFx, CRAFx, CWAFx, CSAFx) map one frame of ``N`` samples, with ``k`` context frames
either side at the hop ``H`` (thesis Eq. 6.1), to one output frame. :func:`render` frames any length of audio,
runs the model and overlap-adds the output frames with a Hann window, divided by the summed window, so the result
has exactly the input's length and lines up with it sample for sample (the look-ahead is compensated offline). A
model whose output frames already carry a Hann window (CEQ and CSAFx are trained on Hann-windowed targets) is
added as it is; one trained on rectangular frames (CAFx, CRAFx, CWAFx) gets the Hann window at synthesis, as in the
thesis. The sliding model (the feed-forward WaveNet) maps ``L + rf - 1`` input samples to the ``L`` samples centred
in them.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import asdict, dataclass
from typing import Protocol, TypeAlias

import numpy as np
import torch
from torch import nn

from models.afx.layers import AdaptiveFrontEnd, TiedDeconvolution
from models.networks import model_device

WINDOWS = ("hann", "rect")
CONTEXT_BATCH_FRAMES = 32  # frames per forward pass of a model with context frames (they share the front-end)
PLAIN_BATCH_FRAMES = 8  # frames per forward pass of a model without: its feature maps then stay in cache
RENDER_BLOCK_SAMPLES = 1024  # output samples per forward pass of a sliding model: its wide maps then stay in cache


@dataclass(frozen=True)
class Framing:
    """Frame size, hop, context frames either side, and the windows of the model's input and output frames."""

    frame_samples: int
    hop_samples: int
    context_frames: int = 0
    input_window: str = "rect"
    output_window: str = "rect"  # the window the model's output frames carry (its training targets')

    def __post_init__(self) -> None:
        if self.frame_samples % self.hop_samples:
            raise ValueError(f"hop {self.hop_samples} must divide the frame of {self.frame_samples} samples")
        if self.frame_samples // self.hop_samples < 2:
            raise ValueError("frames must overlap (hop at most half the frame) for the overlap-add")
        if self.input_window not in WINDOWS or self.output_window not in WINDOWS:
            raise ValueError(f"windows must be one of {WINDOWS}")

    @property
    def lookahead_samples(self) -> int:
        """Samples of future input that one output sample depends on (compensated by :func:`render`)."""
        return self.frame_samples - 1 + self.context_frames * self.hop_samples

    def window(self, kind: str) -> torch.Tensor:
        return torch.hann_window(self.frame_samples) if kind == "hann" else torch.ones(self.frame_samples)

    def to_dict(self) -> dict:
        return asdict(self)


class AfxConfig(Protocol):
    """What every architecture's config offers: its sample rate and its fields as a dict (for the sidecar)."""

    @property
    def sample_rate(self) -> int: ...

    def to_dict(self) -> dict: ...


class FrameModel(nn.Module):
    """A model over frames: ``forward`` maps (B, 2k+1, N) input frames to (B, 1, N) output frames, through the
    adaptive front-end and its tied synthesis (which pretraining trains alone, :func:`models.afx.train.reconstruct`)."""

    config: AfxConfig
    framing: Framing
    front_end: AdaptiveFrontEnd
    deconv: TiedDeconvolution

    @property
    def told_clocks(self) -> bool:
        """Whether the model is told its effect's LFO clocks (:mod:`models.afx.clocks`; CRAFx, CWAFx and CSAFx can
        be): then every frame needs the render sample its current frame starts at."""
        return False


class ContextFrames(FrameModel, metaclass=ABCMeta):
    """A frame model that runs its front-end on each of an example's 2k+1 frames alike: neighbouring output frames
    share 2k of them, so :func:`frame_batches` runs the front-end once per input frame (``encode_frames``) and hands
    each output frame its context's latents (``decode``); ``forward`` is ``decode`` after ``encode``."""

    @abstractmethod
    def encode_frames(
        self, frames: torch.Tensor, control: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (M, N) to their residuals R (M, filters, N) and latents (M, filters, latent), conditioned on
        ``control`` (one row per equal run of consecutive frames)."""

    @abstractmethod
    def decode(
        self,
        residual: torch.Tensor,
        latents: torch.Tensor,
        control: torch.Tensor | None = None,
        first_sample: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The current frame's residual (B, filters, N) and the 2k+1 frames' latents (B, 2k+1, filters, latent) to
        the output frame (B, 1, N); a model told its effect's clocks also reads the knobs ``control`` (B, knobs)
        and the render sample each current frame starts at, ``first_sample`` (B,)."""


class SlidingModel(nn.Module):
    """A model over a sliding window: ``forward`` maps (B, 1, L + rf - 1) to the centred (B, 1, L)."""

    config: AfxConfig
    receptive_field: int
    output_samples: int  # L of one training example
    output: nn.Conv1d  # the last layer (its bias is added after every weight)

    @property
    def lookahead_samples(self) -> int:
        return self.receptive_field // 2


AfxModel: TypeAlias = FrameModel | SlidingModel
"""Any of the thesis's architectures: it sees audio either as frames or through a sliding receptive field."""


def told_clocks(model: AfxModel) -> bool:
    """Whether ``model`` is told its effect's LFO clocks (:mod:`models.afx.clocks`): then each frame it renders
    needs the render sample its current frame starts at."""
    return isinstance(model, FrameModel) and model.told_clocks


def lookahead_samples(model: AfxModel) -> int:
    """Future input samples one output sample depends on."""
    return model.framing.lookahead_samples if isinstance(model, FrameModel) else model.lookahead_samples


def example_span(model: AfxModel) -> tuple[int, int]:
    """Input samples an example needs (before, after) its target's first sample, beyond the target itself."""
    if isinstance(model, FrameModel):
        f = model.framing
        return f.context_frames * f.hop_samples, f.context_frames * f.hop_samples
    half = model.receptive_field // 2
    return half, model.receptive_field - 1 - half


def target_samples(model: AfxModel) -> int:
    """Output samples of one training example."""
    return model.framing.frame_samples if isinstance(model, FrameModel) else model.output_samples


def examples(
    model: AfxModel, dry: torch.Tensor, wet: torch.Tensor, starts: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training inputs and targets for the given target start samples of ``dry`` and ``wet`` (T,) signals.

    Each start must leave the span the model needs inside the signals (see :func:`example_span`).
    """
    before, after = example_span(model)
    length = target_samples(model)
    inputs, targets = [], []
    for start in starts:
        if start - before < 0 or start + length + after > dry.shape[-1]:
            raise ValueError(f"example at sample {start} runs off the signal")
        targets.append(wet[start : start + length])
        if isinstance(model, FrameModel):
            f = model.framing
            hops = range(-f.context_frames, f.context_frames + 1)
            inputs.append(
                torch.stack([dry[start + j * f.hop_samples : start + j * f.hop_samples + length] for j in hops])
            )
        else:
            inputs.append(dry[start - before : start + length + after][None])
    x, y = torch.stack(inputs), torch.stack(targets)[:, None]
    if isinstance(model, FrameModel):
        x = x * model.framing.window(model.framing.input_window).to(x)
        y = y * model.framing.window(model.framing.output_window).to(y)
    return x, y


@torch.no_grad()
def render(model: AfxModel, audio: np.ndarray, control: torch.Tensor | None = None) -> np.ndarray:
    """Process ``audio`` (samples,) or (channels, samples), each channel on its own, for ``control`` (knobs,) if
    the model has knobs; returns the same shape."""
    model.eval()
    signal = np.asarray(audio, dtype=np.float32)
    if signal.ndim not in (1, 2):
        raise ValueError(f"audio must be (samples,) or (channels, samples), got shape {signal.shape}")
    if signal.size == 0:
        return signal.copy()
    rows = signal.reshape(-1, signal.shape[-1])
    controls = None if control is None else control.reshape(1, -1).expand(len(rows), -1)
    out = render_rows(model, torch.from_numpy(rows.copy()), controls)
    return out.numpy().astype(np.float32).reshape(signal.shape)


def render_rows(model: AfxModel, x: torch.Tensor, control: torch.Tensor | None = None) -> torch.Tensor:
    """Signals (B, T) to their aligned outputs (B, T) for controls (B, knobs) (differentiable outside no_grad)."""
    if isinstance(model, FrameModel):
        return _render_frames(model, x, control)
    return _render_sliding(model, x, control)


@torch.no_grad()
def render_with_examples(
    model: AfxModel, audio: np.ndarray, control: torch.Tensor | None = None
) -> tuple[np.ndarray, torch.Tensor]:
    """:func:`render` of a signal (samples,) and, from the same forward passes, the model's output for every
    example of it one step apart from its first sample (E, 1, N): frames a hop apart, or the sliding model's outputs
    end to end, in the order :meth:`models.afx.train.ExampleSource.every` yields them (the last may run past the
    end, into silence)."""
    model.eval()
    signal = torch.from_numpy(np.asarray(audio, dtype=np.float32).copy())
    if signal.ndim != 1 or not len(signal):
        raise ValueError(f"audio must be (samples,) and not empty, got shape {tuple(signal.shape)}")
    where = model_device(model)
    rows = signal[None].to(where)
    controls = None if control is None else control.reshape(1, -1).to(where)
    if isinstance(model, FrameModel):
        rendered, outputs = _render_frames_and_outputs(model, rows, controls)
        return rendered[0].cpu().numpy(), outputs[0, :, None].cpu()
    step = model.output_samples
    count = -(-len(signal) // step)
    full = _render_sliding(model, torch.nn.functional.pad(rows, (0, count * step - len(signal))), controls)
    return full[0, : len(signal)].cpu().numpy(), full[0].reshape(count, 1, step).cpu()


def frame_batches(
    model: FrameModel,
    padded: torch.Tensor,
    frames: int,
    control: torch.Tensor | None,
    batch_frames: int,
    origin: int = 0,
    synthesis: bool = True,
) -> torch.Tensor:
    """The model's output frames (B, frames, N) times :func:`synthesis_window` (what the overlap-add sums; with
    ``synthesis`` False, as the model gives them) for ``padded`` input (B, (frames - 1 + 2k) * hop + N) whose frame
    ``i`` starts at ``i * hop`` (context frames included), ``batch_frames`` frames per forward pass.
    ``padded[..., 0]`` is render sample ``origin`` (negative in the padding before the signal): a model told its
    effect's clocks is told where each frame lies in the render."""
    f = model.framing
    n, hop, k = f.frame_samples, f.hop_samples, f.context_frames
    rows = padded.shape[0]
    all_frames = padded.unfold(-1, n, hop)  # (B, frames + 2k, N)
    analysis = f.window(f.input_window).to(padded)
    clocked = told_clocks(model)
    outputs = []
    for first in range(0, frames, batch_frames):
        count = min(batch_frames, frames - first)
        controls = None if control is None else control.repeat_interleave(count, dim=0)
        starts = None
        if clocked:  # the render sample of each output frame's current frame, row by row
            current = origin + (first + k + torch.arange(count, device=padded.device)) * hop
            starts = current.repeat(rows)
        if isinstance(model, ContextFrames) and k:
            span = all_frames[:, first : first + count + 2 * k] * analysis
            out = _shared_context_frames(model, span, control, controls, starts)
        else:
            batch = all_frames[:, first : first + count + 2 * k].unfold(1, 2 * k + 1, 1).permute(0, 1, 3, 2)
            batch = batch.reshape(rows * count, 2 * k + 1, n) * analysis
            out = model(batch, controls) if starts is None else model(batch, controls, starts)
        outputs.append(out[:, 0].reshape(rows, count, n))
    joined = torch.cat(outputs, dim=1)
    return joined * synthesis_window(f).to(joined) if synthesis else joined


def synthesis_window(framing: Framing) -> torch.Tensor:
    """(N,): what each output frame is multiplied by before the overlap-add: a Hann window for a model trained on
    rectangular frames, none (ones) for one whose output frames already carry it."""
    n = framing.frame_samples
    return torch.hann_window(n) if framing.output_window == "rect" else torch.ones(n)


def _shared_context_frames(
    model: ContextFrames,
    span: torch.Tensor,
    control: torch.Tensor | None,
    frame_controls: torch.Tensor | None,
    starts: torch.Tensor | None,
) -> torch.Tensor:
    """Output frames (B * count, 1, N) for input frames (B, count + 2k, N), the front-end run once per input frame:
    the same as the model on each output frame's 2k+1 frames. ``control`` is per row (B, knobs),
    ``frame_controls`` per output frame (B * count, knobs), ``starts`` each output frame's first render sample
    (B * count,) for a model told clocks (else None)."""
    rows, total, n = span.shape
    k = model.framing.context_frames
    count = total - 2 * k
    residual, latent = model.encode_frames(span.reshape(rows * total, n), control)
    residual = residual.reshape(rows, total, *residual.shape[1:])[:, k : k + count].reshape(rows * count, -1, n)
    latents = latent.reshape(rows, total, *latent.shape[1:]).unfold(1, 2 * k + 1, 1)  # (B, count, C, L, 2k+1)
    latents = latents.permute(0, 1, 4, 2, 3).reshape(rows * count, 2 * k + 1, *latent.shape[1:])
    if starts is None:
        return model.decode(residual, latents)
    return model.decode(residual, latents, frame_controls, starts)


def consecutive_frames(
    model: FrameModel, x: torch.Tensor, control: torch.Tensor | None, starts: torch.Tensor | None = None
) -> torch.Tensor:
    """``model(x, control[, starts])`` for examples (B, 2k+1, N) whose current frames lie one hop apart, in order
    (as :meth:`models.afx.train.ExampleSource.every` yields them at the hop): a model with context frames runs its
    front-end once per distinct input frame (B + 2k of them) instead of 2k+1 times per example. ``control`` is
    (knobs,) or None, the same for every example; ``starts`` (B,) each current frame's first render sample, for a
    model told its effect's clocks."""
    row = None if control is None else control.reshape(1, -1)
    controls = None if row is None else row.expand(x.shape[0], -1)
    k = model.framing.context_frames
    if not isinstance(model, ContextFrames) or not k:
        return model(x, controls) if starts is None else model(x, controls, starts)
    span = torch.cat((x[:, 0], x[-1, 1:]))[None]  # frame i + j of the run is example i's context frame j
    return _shared_context_frames(model, span, row, controls, starts)


def batch_frames(framing: Framing) -> int:
    """Output frames per forward pass (when rendering and streaming; bounds memory on long files). A batch of
    frames with context frames runs the front-end on ``batch + 2k`` input frames, so larger batches recompute less;
    without context frames a small batch is fastest (CAFx's 8 x 128 x 1024 feature maps fit a core's cache: 1.8x
    faster than 32 frames, benchmarks/afx_speed.py)."""
    return CONTEXT_BATCH_FRAMES if framing.context_frames else PLAIN_BATCH_FRAMES


def window_sum(framing: Framing) -> torch.Tensor:
    """The Hann windows of overlapping frames summed over one hop: (hop,), what overlap-add divides by."""
    n, hop = framing.frame_samples, framing.hop_samples
    return torch.hann_window(n).reshape(n // hop, hop).sum(0).clamp(min=1e-8)


def _render_frames(model: FrameModel, x: torch.Tensor, control: torch.Tensor | None) -> torch.Tensor:
    return _render_frames_and_outputs(model, x, control)[0]


def _render_frames_and_outputs(
    model: FrameModel, x: torch.Tensor, control: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The render (B, T) and the model's output frames (B, ceil(T / hop), N) that start at samples 0, hop, ..."""
    f = model.framing
    n, hop, k = f.frame_samples, f.hop_samples, f.context_frames
    overlap = n // hop  # frames covering each sample
    length = x.shape[-1]
    frames = -(-length // hop) + overlap - 1  # output frame i starts at (i - overlap + 1) * hop
    front = (overlap - 1 + k) * hop
    back = (frames - 1 + 2 * k) * hop + n - front - length
    padded = torch.nn.functional.pad(x, (front, back))
    outputs = frame_batches(model, padded, frames, control, batch_frames(f), origin=-front, synthesis=False)
    added = overlap_add(outputs * synthesis_window(f).to(outputs), hop)
    start = (overlap - 1) * hop
    norm = window_sum(f).to(x).repeat(-(-length // hop))[:length]
    return added[:, start : start + length] / norm, outputs[:, overlap - 1 :]


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Sum (..., F, N) frames placed ``hop`` apart (N a multiple of ``hop``): (..., (F + N/hop - 1) * hop)."""
    *lead, count, n = frames.shape
    overlap = n // hop
    blocks = frames.new_zeros(*lead, count + overlap - 1, hop)
    parts = frames.reshape(*lead, count, overlap, hop)
    for j in range(overlap):
        blocks[..., j : j + count, :] = blocks[..., j : j + count, :] + parts[..., j, :]
    return blocks.reshape(*lead, -1)


def _render_sliding(model: SlidingModel, x: torch.Tensor, control: torch.Tensor | None) -> torch.Tensor:
    before, after = example_span(model)
    padded = torch.nn.functional.pad(x, (before, after))[:, None]
    blocks = []
    for start in range(0, x.shape[-1], RENDER_BLOCK_SAMPLES):
        length = min(RENDER_BLOCK_SAMPLES, x.shape[-1] - start)
        blocks.append(model(padded[..., start : start + length + before + after], control)[:, 0])
    return torch.cat(blocks, dim=-1)
