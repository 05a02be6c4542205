"""Block-by-block rendering of the thesis's architectures, equal to one offline pass delayed by the look-ahead.

A frame model's output sample ``m`` is the overlap-add of the frames that cover it, and the last of them (with its
``k`` context frames) reads up to ``m + N - 1 + k * hop``: that look-ahead is the stream's latency. :class:`FrameStream`
keeps the input since the next frame's first context sample and the partial overlap-add of the frames computed so
far, runs every frame whose input has arrived, and hands out finished samples ``latency`` behind the input. The
sliding WaveNet's :class:`SlidingStream` keeps the last ``rf - 1`` input samples and lags by the samples of its
window that lie after the centre. Both start from silence: fed ``latency`` samples of silence after a signal,
their output without its first ``latency`` samples equals :func:`models.afx.framing.render` of the signal.
"""

from __future__ import annotations

import torch

from models.afx.framing import (
    RENDER_BLOCK_SAMPLES,
    FrameModel,
    SlidingModel,
    batch_frames,
    example_span,
    frame_batches,
    overlap_add,
    window_sum,
)


def stream_latency(model: FrameModel | SlidingModel) -> int:
    """Samples the stream's output lags its input."""
    if isinstance(model, FrameModel):
        return model.framing.lookahead_samples
    return example_span(model)[1]


class FrameStream:
    """Streams a frame model for one fixed control (knobs,) (or None for a model without knobs)."""

    def __init__(self, model: FrameModel, control: torch.Tensor | None):
        f = model.framing
        self.model, self.control = model, control
        self.n, self.hop, self.k = f.frame_samples, f.hop_samples, f.context_frames
        overlap = self.n // self.hop
        self.latency = stream_latency(model)
        self.norm = window_sum(f)
        self.batch_frames = batch_frames(f)
        self.next_frame = -(overlap - 1) * self.hop  # absolute start of the next frame to compute
        self.input_start = self.next_frame - self.k * self.hop  # absolute position of self.input's first sample
        self.input: torch.Tensor | None = None  # (B, samples) not yet consumed by every frame that needs it
        self.partial: torch.Tensor | None = None  # (B, N - hop): the overlap-add of computed frames past next_frame
        self.ready: torch.Tensor | None = None  # (B, samples) finished output waiting to be handed out

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[0]
        if self.input is None:
            self.input = x.new_zeros(rows, -self.input_start)  # silence before the signal (absolute position 0)
            self.partial = x.new_zeros(rows, self.n - self.hop)
            self.ready = x.new_zeros(rows, self.latency + self.next_frame)  # outputs before the first frame
            self.norm = self.norm.to(x)
        assert self.partial is not None and self.ready is not None
        self.input = torch.cat((self.input, x[:, 0]), dim=-1)
        end = self.input_start + self.input.shape[-1]
        frames = max(0, (end - self.n - self.k * self.hop - self.next_frame) // self.hop + 1)
        if frames:
            span = (frames - 1 + 2 * self.k) * self.hop + self.n
            control = None if self.control is None else self.control.reshape(1, -1).expand(rows, -1).to(x)
            out = frame_batches(
                self.model, self.input[:, :span], frames, control, self.batch_frames, origin=self.input_start
            )
            added = overlap_add(out, self.hop)  # (B, (frames - 1) * hop + N)
            added[:, : self.partial.shape[-1]] += self.partial
            done = frames * self.hop
            finished = added[:, :done] / self.norm.repeat(frames)
            self.partial = added[:, done:]
            self.ready = torch.cat((self.ready, finished), dim=-1)
            self.next_frame += done
            self.input = self.input[:, done:]
            self.input_start += done
        count = x.shape[-1]
        if self.ready.shape[-1] < count:
            raise RuntimeError("frame stream fell behind its latency")  # cannot happen: see the module docstring
        block, self.ready = self.ready[:, :count], self.ready[:, count:]
        return block[:, None]


class SlidingStream:
    """Streams the sliding WaveNet for one fixed control: keeps the last ``rf - 1`` input samples."""

    def __init__(self, model: SlidingModel, control: torch.Tensor | None):
        self.model, self.control = model, control
        self.history_samples = model.receptive_field - 1
        self.latency = stream_latency(model)
        self.history: torch.Tensor | None = None

    @torch.inference_mode()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[0]
        if self.history is None:
            self.history = x.new_zeros(rows, 1, self.history_samples)
        joined = torch.cat((self.history, x), dim=-1)
        control = None if self.control is None else self.control.reshape(1, -1).expand(rows, -1).to(x)
        outputs = [
            self.model(joined[..., start : start + self.history_samples + RENDER_BLOCK_SAMPLES], control)
            for start in range(0, x.shape[-1], RENDER_BLOCK_SAMPLES)
        ]
        self.history = joined[..., joined.shape[-1] - self.history_samples :]
        return torch.cat(outputs, dim=-1) if outputs else x.new_zeros(rows, 1, 0)
