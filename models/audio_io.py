"""Reading and writing audio files safely.

Every problem with an input file becomes one :class:`ReaTimbreError` line that names the file. Output files are
written to a temporary file in the destination folder and renamed into place only when complete, so a failure or an
interruption never leaves a half-written file, and a user's input is never overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from models.atomic_files import atomic_path
from models.errors import ReaTimbreError
from models.input_files import check_regular_file

FLOAT_SUBTYPES = {"FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_III"}


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate


def probe(path: str | os.PathLike) -> AudioInfo:
    """Check that ``path`` is a readable, non-empty audio file and describe it."""
    path = Path(path)
    check_regular_file(path, field_name="")  # a FIFO or device is refused here, never waited on
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise ReaTimbreError(f"{path}: not a readable audio file ({_short(exc)})") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise ReaTimbreError(f"{path}: invalid header (sample rate {info.samplerate}, {info.channels} channels)")
    if info.frames <= 0:
        raise ReaTimbreError(f"{path}: the file holds no audio")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), info.format, info.subtype)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def read_blocks(info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    """Yield float32 blocks shaped (channels, frames) of the whole file, each checked for NaN and infinity."""
    position = 0
    try:
        with sf.SoundFile(str(info.path)) as handle:
            while True:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    break
                if not np.isfinite(block).all():
                    bad = position + int(np.argmax(~np.isfinite(block).all(axis=1)))
                    raise ReaTimbreError(
                        f"{info.path}: contains NaN or infinite samples (first at {bad / info.sample_rate:.3f} s)"
                    )
                position += len(block)
                yield block.T
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ReaTimbreError(f"{info.path}: read failed after {position} frames ({_short(exc)})") from None
    if position == 0:
        raise ReaTimbreError(f"{info.path}: the file holds no audio")


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The whole file as float32 (channels, frames) and its sample rate, checked like :func:`read_blocks`."""
    info = probe(path)
    blocks = list(read_blocks(info, 1 << 18))
    return np.concatenate(blocks, axis=1), info.sample_rate


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (following links), even if one does not exist yet."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output_path(output: Path, inputs: list[Path], overwrite: bool = False) -> Path:
    """Refuse to write over an input, into a missing folder, or over an existing file unless ``overwrite``."""
    output = Path(output)
    for source in inputs:
        if same_file(output, Path(source)):
            raise ReaTimbreError(f"{output}: output path is the input file; choose another name")
    if output.is_dir():
        raise ReaTimbreError(f"{output}: is a folder; give a file name")
    if not output.parent.is_dir():
        raise ReaTimbreError(f"{output.parent}: output folder does not exist")
    if output.exists() and not overwrite:
        raise ReaTimbreError(f"{output}: already exists (use --overwrite to replace it)")
    return output


def output_format(output: Path, like: AudioInfo | None = None, subtype: str | None = None) -> tuple[str, str]:
    """Format and subtype for ``output``: its extension decides the format; the subtype follows ``like`` when the
    format is the same, else the format's default, unless ``subtype`` is given."""
    extension = output.suffix.lstrip(".").upper()
    formats = sf.available_formats()
    aliases = {"AIF": "AIFF", "OGA": "OGG", "OPUS": "OGG"}
    fmt = aliases.get(extension, extension)
    if fmt not in formats:
        if like is not None and not extension:
            fmt = like.format
        else:
            raise ReaTimbreError(f"{output}: unknown audio file extension {output.suffix!r}")
    if subtype is None:
        if like is not None and like.format == fmt and sf.check_format(fmt, like.subtype):
            subtype = like.subtype
        else:
            subtype = "OPUS" if extension == "OPUS" else sf.default_subtype(fmt)
    subtype = subtype.upper()
    if not sf.check_format(fmt, subtype):
        raise ReaTimbreError(f"{output}: sample format {subtype} cannot be written as {fmt}")
    return fmt, subtype


def is_float_subtype(subtype: str) -> bool:
    """Whether a subtype stores samples beyond +-1.0 without clipping."""
    return subtype.upper() in FLOAT_SUBTYPES


def write_audio(
    path: Path, audio: np.ndarray, sample_rate: int, fmt: str | None = None, subtype: str | None = None
) -> None:
    """Write (channels, frames) audio atomically; integer formats are clipped to +-1."""
    path = Path(path)
    if fmt is None:
        fmt, subtype = output_format(path, subtype=subtype)
    elif subtype is None:
        subtype = sf.default_subtype(fmt)
    data = np.asarray(audio, dtype=np.float32).T
    if not is_float_subtype(subtype):
        data = np.clip(data, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, format=fmt, subtype=subtype)
