"""Sample-rate conversion, done one way everywhere: soxr's high-quality resampler.

:func:`resample` converts a whole signal; streaming renders use :class:`StreamResampler`, which converts block by
block and keeps the output aligned with the input.
"""

from __future__ import annotations

import numpy as np
import soxr


def resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """``audio`` (samples,) or (channels, samples) from ``from_hz`` to ``to_hz``, float32; a copy-free pass-through
    when the rates match."""
    audio = np.asarray(audio, dtype=np.float32)
    if from_hz == to_hz:
        return audio
    if audio.ndim == 1:
        return np.ascontiguousarray(soxr.resample(audio, from_hz, to_hz, quality="HQ"), dtype=np.float32)
    return np.ascontiguousarray(soxr.resample(audio.T, from_hz, to_hz, quality="HQ").T, dtype=np.float32)


class StreamResampler:
    """Block-by-block conversion of (channels, frames) audio (identity when the rates match); the concatenated
    output equals one pass over the whole signal, so it stays aligned with the input."""

    def __init__(self, from_hz: int, to_hz: int, channels: int) -> None:
        self._stream = None if from_hz == to_hz else soxr.ResampleStream(from_hz, to_hz, channels, "float32", "HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """(channels, frames) in, (channels, frames') out; ``last`` flushes what the filter still holds."""
        if self._stream is None:
            return block
        return self._stream.resample_chunk(np.ascontiguousarray(block.T), last=last).T
