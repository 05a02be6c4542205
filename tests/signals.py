"""Test signals made on the fly (no audio files are downloaded or needed)."""

from __future__ import annotations

import numpy as np


def tone(seconds: float, sample_rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A test signal (channels, frames): decaying harmonic notes plus a little noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    base = 0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * (t % 0.5)) + 0.1 * np.sin(2 * np.pi * 660 * t)
    channels_audio = [base * (1 - 0.1 * c) + 0.01 * rng.standard_normal(len(t)) for c in range(channels)]
    return np.stack(channels_audio).astype(np.float32)
