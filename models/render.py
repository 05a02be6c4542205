"""Render audio through a neural effect: files of any length, rate and channel count, streamed in blocks.

Audio flows: file blocks -> resample to the model's rate -> the model's block renderer (exact receptive-field
history, see :class:`models.tcn.TCNStream`; its latency compensated, so the output lines up with the input sample
for sample) -> resample back -> dry/wet mix -> a temporary file that is renamed into
place when complete. Every channel goes through the same (mono) model. Silence is fed after the input for the
effect's tail (a reverb rings out past the end).

The model runs on its own device (``device`` of :func:`render_file`): the channels of a file are one batch, in
long blocks on CUDA. A renderer can also be given the model's output precomputed (``wet``, from
:func:`models.multi_render.render_many`, which renders many files' channels in one pass); everything else, the
resampling, mix, tail and writing, is the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch

from models.atomic_files import atomic_path
from models.audio_io import (
    AudioInfo,
    check_output_path,
    is_float_subtype,
    output_format,
    probe,
    read_blocks,
)
from models.errors import ReaTimbreError
from models.knobs import resolve_knobs
from models.library import NeuralEffect, block_samples_for, load_model
from models.resample import StreamResampler

READ_BLOCK_SECONDS = 1.0


class StreamRenderer:
    """Turns consecutive blocks of (channels, frames) audio at ``sample_rate`` into the effect's output.

    Output blocks may differ in length from input blocks while resampling; over the whole stream the output has
    exactly as many frames as went in once :meth:`finish` has been called. ``wet``, when given, is the model's
    output for the whole stream at the model's rate (channels, samples), rendered beforehand: it is used instead of
    running the model.
    """

    def __init__(
        self,
        effect: NeuralEffect,
        knobs: dict[str, float] | None,
        sample_rate: int,
        channels: int,
        mix: float = 1.0,
        wet: np.ndarray | None = None,
    ):
        if not 0.0 <= mix <= 1.0 or not np.isfinite(mix):
            raise ReaTimbreError(f"--mix must be between 0 and 1, got {mix}")
        self.effect = effect
        self.mix = float(mix)
        self.channels = channels
        self._stream = effect.stream(knobs) if wet is None else None
        # The model's output lags by its latency: that many samples are dropped from its start and as many of
        # silence fed after the end (a precomputed ``wet`` is already aligned).
        self._latency = effect.latency_samples if wet is None else 0
        self._skip = self._latency
        self._wet, self._wet_used = wet, 0
        self._block = block_samples_for(effect.device)
        self._to_model = StreamResampler(sample_rate, effect.sample_rate, channels)
        self._from_model = StreamResampler(effect.sample_rate, sample_rate, channels)
        self._pending = np.zeros((channels, 0), np.float32)  # model-rate samples waiting for a full block
        self._dry = np.zeros((channels, 0), np.float32)  # input-rate samples waiting for their wet partner
        self.frames_in = 0
        self.frames_out = 0

    def _run_model(self, audio: np.ndarray, flush: bool) -> np.ndarray:
        self._pending = np.concatenate([self._pending, audio], axis=1)
        if flush and self._latency:
            self._pending = np.concatenate([self._pending, np.zeros((self.channels, self._latency), np.float32)], 1)
        block = self._block
        usable = self._pending.shape[1] if flush else self._pending.shape[1] // block * block
        outputs = []
        if self._stream is None:
            assert self._wet is not None  # one of the two is set in __init__
            taken = self._wet[:, self._wet_used : self._wet_used + usable]
            outputs.append(np.pad(taken, ((0, 0), (0, usable - taken.shape[1]))))
            self._wet_used += usable
        else:
            device = self.effect.device
            for start in range(0, usable, block):
                chunk = torch.from_numpy(np.ascontiguousarray(self._pending[:, start : start + block])).to(device)
                outputs.append(self._stream.process(chunk[:, None, :])[:, 0, :].cpu().numpy())
        self._pending = self._pending[:, usable:]
        out = np.concatenate(outputs, axis=1) if outputs else np.zeros((self.channels, 0), np.float32)
        if self._skip:
            dropped = min(self._skip, out.shape[1])
            out, self._skip = out[:, dropped:], self._skip - dropped
        return out

    def _mix(self, wet: np.ndarray) -> np.ndarray:
        n = wet.shape[1]
        dry, self._dry = self._dry[:, :n], self._dry[:, n:]
        self.frames_out += n
        return wet if self.mix == 1.0 else (self.mix * wet + (1.0 - self.mix) * dry).astype(np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed a block; returns whatever output is ready."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        self.frames_in += block.shape[1]
        self._dry = np.concatenate([self._dry, block], axis=1)
        return self._mix(self._from_model(self._run_model(self._to_model(block), flush=False)))

    def finish(self) -> np.ndarray:
        """Flush everything still buffered; afterwards ``frames_out == frames_in``."""
        empty = np.zeros((self.channels, 0), np.float32)
        wet = self._from_model(self._run_model(self._to_model(empty, last=True), flush=True), last=True)
        missing = self.frames_in - self.frames_out - wet.shape[1]
        if missing > 0:  # resampler rounding: pad the last frame or two
            wet = np.concatenate([wet, np.zeros((self.channels, missing), np.float32)], axis=1)
        return self._mix(wet[:, : self.frames_in - self.frames_out])


@dataclass
class RenderResult:
    """What a render did."""

    input_path: str
    output_path: str
    effect: str
    knobs: dict[str, float]
    mix: float
    tail_seconds: float
    sample_rate: int
    model_sample_rate: int
    channels: int
    input_seconds: float
    duration_seconds: float
    format: str
    subtype: str
    peak: float
    clipped_samples: int
    elapsed_seconds: float
    realtime_factor: float
    device: str = "cpu"  # where the model ran

    def to_dict(self) -> dict:
        return asdict(self)


def default_output_path(input_path: Path, effect: str) -> Path:
    """``song.wav`` rendered through ``reverb`` goes to ``song-reverb.wav`` beside it."""
    return input_path.with_name(f"{input_path.stem}-{effect}{input_path.suffix}")


def check_tail(tail_seconds: float | None, effect: NeuralEffect) -> float:
    tail = effect.info.tail_seconds if tail_seconds is None else tail_seconds
    try:
        tail = float(tail)
    except (TypeError, ValueError):
        raise ReaTimbreError(f"--tail needs a number of seconds, got {tail_seconds!r}") from None
    if not np.isfinite(tail) or not 0.0 <= tail <= 60.0:
        raise ReaTimbreError(f"--tail must be between 0 and 60 seconds, got {tail_seconds}")
    return tail


def render_file(
    input_path: str | Path,
    output_path: str | Path | None,
    effect: str,
    knobs: dict[str, float] | None = None,
    mix: float = 1.0,
    tail_seconds: float | None = None,
    *,
    subtype: str | None = None,
    overwrite: bool = False,
    progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    read_block_frames: int | None = None,
    device: torch.device | str = "cpu",
) -> RenderResult:
    """Render ``input_path`` through the model ``effect`` on ``device`` into ``output_path`` (default: beside
    the input).

    ``tail_seconds`` of silence are rendered after the input (default: the model's own tail, e.g. a reverb's decay).
    The output keeps the input's format and sample format unless the output's extension or ``subtype`` says
    otherwise. Raises :class:`ReaTimbreError` for any bad input, leaving no output file behind.
    """
    started = time.perf_counter()
    info: AudioInfo = probe(input_path)
    model = load_model(effect, device)
    output = Path(output_path) if output_path is not None else default_output_path(info.path, effect)
    check_output_path(output, [info.path], overwrite=overwrite)
    with atomic_path(output) as tmp:
        return _render(
            info, model, str(tmp), output, knobs, mix, tail_seconds, subtype, progress, should_cancel,
            read_block_frames, started,
        )  # fmt: skip


def render_precomputed(
    info: AudioInfo,
    model: NeuralEffect,
    output: Path,
    knobs: dict[str, float],
    mix: float,
    tail: float,
    wet: np.ndarray,
    started: float,
) -> RenderResult:
    """Write ``info``'s render into ``output`` (atomically, never over an existing file) from ``wet``, the model's
    output for the input and ``tail`` seconds of silence at the model's rate (:func:`model_rate_input` through
    the model)."""
    check_output_path(output, [info.path])
    with atomic_path(output) as tmp:
        return _render(info, model, str(tmp), output, knobs, mix, tail, None, None, None, None, started, wet)


def render_to_fd(
    input_path: str | Path,
    fd: int,
    output_name: Path,
    effect: str,
    knobs: dict[str, float] | None = None,
    mix: float = 1.0,
    tail_seconds: float | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    device: torch.device | str = "cpu",
) -> RenderResult:
    """Like :func:`render_file`, but write into the open, empty file ``fd`` (left open); ``output_name``'s
    extension picks the format and is what the result reports (the server publishes the file under it)."""
    started = time.perf_counter()
    info: AudioInfo = probe(input_path)
    model = load_model(effect, device)
    # Through a Python file object, not the raw descriptor: on Windows a C runtime descriptor cannot be shared
    # with libsndfile's DLL.
    with open(fd, "r+b", buffering=0, closefd=False) as sink:
        return _render(
            info, model, sink, Path(output_name), knobs, mix, tail_seconds, None, progress, should_cancel, None, started
        )


def _render(
    info: AudioInfo,
    model: NeuralEffect,
    target: str | BinaryIO,
    output: Path,
    knobs: dict[str, float] | None,
    mix: float,
    tail_seconds: float | None,
    subtype: str | None,
    progress: Callable[[float], None] | None,
    should_cancel: Callable[[], bool] | None,
    read_block_frames: int | None,
    started: float,
    wet: np.ndarray | None = None,
) -> RenderResult:
    """Stream ``info``'s audio through ``model`` into ``target`` (a path or an open binary file); ``wet``: the
    model's output at its rate, rendered beforehand (see :class:`StreamRenderer`)."""
    values = resolve_knobs(model.info.knobs, knobs)
    tail = check_tail(tail_seconds, model)
    fmt, out_subtype = output_format(output, like=info, subtype=subtype)
    renderer = StreamRenderer(model, values, info.sample_rate, info.channels, mix, wet)
    tail_frames = int(round(tail * info.sample_rate))
    total_frames = info.frames + tail_frames
    peak, clipped = 0.0, 0
    clip = not is_float_subtype(out_subtype)

    def blocks():
        yield from input_blocks(info, tail, read_block_frames)

    try:
        handle = sf.SoundFile(target, "w", info.sample_rate, info.channels, out_subtype, format=fmt, closefd=False)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ReaTimbreError(f"{output}: cannot write {fmt}/{out_subtype} ({exc})") from None
    with handle:

        def write(out: np.ndarray) -> None:
            nonlocal peak, clipped
            if not out.shape[1]:
                return
            peak = max(peak, float(np.max(np.abs(out))))
            if clip:
                clipped += int(np.count_nonzero(np.abs(out) > 1.0))
                out = np.clip(out, -1.0, 1.0)
            handle.write(out.T)

        for block in blocks():
            if should_cancel is not None and should_cancel():
                raise ReaTimbreError("cancelled")
            write(renderer.process(block))
            if progress is not None:
                progress(min(1.0, renderer.frames_in / total_frames))
        write(renderer.finish())
    elapsed = time.perf_counter() - started
    duration = renderer.frames_out / info.sample_rate
    return RenderResult(
        input_path=str(info.path),
        output_path=str(output),
        effect=model.name,
        knobs=values,
        mix=float(mix),
        tail_seconds=tail,
        sample_rate=info.sample_rate,
        model_sample_rate=model.sample_rate,
        channels=info.channels,
        input_seconds=info.duration_seconds,
        duration_seconds=duration,
        format=fmt,
        subtype=out_subtype,
        peak=peak,
        clipped_samples=clipped,
        elapsed_seconds=elapsed,
        realtime_factor=duration / elapsed if elapsed > 0 else float("inf"),
        device=str(model.device),
    )


def input_blocks(info: AudioInfo, tail_seconds: float, read_block_frames: int | None = None) -> Iterator[np.ndarray]:
    """What a render feeds its renderer: the file's blocks, then ``tail_seconds`` of silence, in the same blocks."""
    block_frames = read_block_frames or max(1, int(READ_BLOCK_SECONDS * info.sample_rate))
    tail_frames = int(round(tail_seconds * info.sample_rate))
    yield from read_blocks(info, block_frames)
    for start in range(0, tail_frames, block_frames):
        yield np.zeros((info.channels, min(block_frames, tail_frames - start)), np.float32)


def model_rate_input(info: AudioInfo, sample_rate: int, tail_seconds: float) -> np.ndarray:
    """The whole input (tail included) resampled to ``sample_rate`` exactly as a :class:`StreamRenderer` does it:
    what the model sees, (channels, samples)."""
    resample = StreamResampler(info.sample_rate, sample_rate, info.channels)
    parts = [resample(np.ascontiguousarray(block, dtype=np.float32)) for block in input_blocks(info, tail_seconds)]
    parts.append(resample(np.zeros((info.channels, 0), np.float32), last=True))
    return np.concatenate(parts, axis=1)
