"""A matching equaliser: the minimum-phase FIR that gives a model's output the long-term spectrum of the target.

A gray-box network learnt by gradient descent can end with a tonal balance that its loss hardly sees: the amp's
drive chain came out of training 3 to 4 dB short at 90 to 200 Hz and 5 to 8 dB too loud at 40 to 60 Hz (its
cabinet's low resonance), the same at every knob setting and on every clip, which on a bass line is 1 to 2 dB of
loudness. Short STFT frames barely resolve that band and the low poles move slowly. What is missing there is one
linear filter after the network, and it can be measured directly, as an audio engineer would with a matching EQ:

1. run the trained network on training pairs (random crops and knob positions) and accumulate the power spectra of
   its outputs and of the real effect's (Hann frames of ``fft_samples``, half overlapping);
2. smooth both over ``smoothing_octaves`` (each bin's power summed over the bins within half that span on either
   side), take the amplitude ratio ``sqrt(target / model)`` per bin, limited to +-``limit_db``;
3. turn that magnitude into a minimum-phase FIR (real cepstrum, folded onto positive quefrencies): no latency, and
   most of its energy in the first taps, so truncating it to ``taps`` (with a half-Hann fade over the last quarter)
   changes little.

The filter is the same at every knob position: it corrects what training left wrong everywhere, not a knob's
mapping. Nothing of the real effect's chain is read: only its outputs on the training pairs.
"""

from __future__ import annotations

import numpy as np

MIN_POWER = 1e-20  # power spectra are floored here before any ratio or logarithm


class SpectrumPair:
    """Accumulates the long-term power spectra of a model's output and the target's, frame by frame."""

    def __init__(self, fft_samples: int):
        self.fft_samples = fft_samples
        self.window = np.hanning(fft_samples)
        self.model = np.zeros(fft_samples // 2 + 1)
        self.target = np.zeros(fft_samples // 2 + 1)

    def _power(self, rows: np.ndarray) -> np.ndarray:
        n, hop = self.fft_samples, self.fft_samples // 2
        if rows.shape[-1] < n:
            raise ValueError(f"a matching EQ needs crops of at least {n} samples, got {rows.shape[-1]}")
        frames = np.lib.stride_tricks.sliding_window_view(rows, n, axis=-1)[..., ::hop, :]
        return np.sum(np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** 2, axis=tuple(range(frames.ndim - 1)))

    def add(self, model: np.ndarray, target: np.ndarray) -> None:
        """Add (rows, samples) of model output and the target for the same input (same shapes)."""
        if model.shape != target.shape:
            raise ValueError(f"model output {model.shape} and target {target.shape} differ in shape")
        self.model += self._power(model.astype(np.float64))
        self.target += self._power(target.astype(np.float64))


def smoothed(power: np.ndarray, smoothing_octaves: float) -> np.ndarray:
    """Each bin's power summed over the bins within ``smoothing_octaves / 2`` octaves on either side (bin 0 alone)."""
    bins = np.arange(len(power), dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    half = 2.0 ** (smoothing_octaves / 2)
    low = np.clip(np.floor(bins / half), 0, len(power) - 1).astype(int)
    high = np.clip(np.ceil(bins * half), 0, len(power) - 1).astype(int)
    low[0] = high[0] = 0
    return cumulative[high + 1] - cumulative[low]


def matching_magnitude(pair: SpectrumPair, smoothing_octaves: float = 1 / 6, limit_db: float = 18.0) -> np.ndarray:
    """The amplitude ratio target / model per bin of ``pair``'s FFT, smoothed and limited to +-``limit_db``."""
    model = np.maximum(smoothed(pair.model, smoothing_octaves), MIN_POWER)
    target = np.maximum(smoothed(pair.target, smoothing_octaves), MIN_POWER)
    limit = 10.0 ** (limit_db / 20)
    return np.clip(np.sqrt(target / model), 1 / limit, limit)


def minimum_phase_fir(magnitude: np.ndarray, taps: int) -> np.ndarray:
    """A minimum-phase FIR of ``taps`` taps whose amplitude response follows ``magnitude`` (bins 0..Nyquist of an
    even FFT), from the real cepstrum on an FFT eight times ``taps`` long; the last quarter fades out (half Hann)."""
    size = max(8 * taps, 2 * (len(magnitude) - 1))
    grid = np.linspace(0.0, 1.0, size // 2 + 1)
    fine = np.interp(grid, np.linspace(0.0, 1.0, len(magnitude)), np.log(np.maximum(magnitude, MIN_POWER)))
    cepstrum = np.fft.irfft(fine, size)
    folded = np.zeros(size)
    folded[0] = cepstrum[0]
    folded[1 : size // 2] = 2.0 * cepstrum[1 : size // 2]
    folded[size // 2] = cepstrum[size // 2]
    impulse = np.fft.irfft(np.exp(np.fft.rfft(folded)), size)[:taps]
    fade = max(1, taps // 4)
    impulse[taps - fade :] *= np.cos(0.5 * np.pi * np.arange(1, fade + 1) / fade) ** 2
    return impulse
