"""Measuring delays between a dry signal and a wet one: where the delayed copies of the input are in the output.

Used only to start a delay network near the real effect before gradient descent (``start_from`` of
:mod:`models.pedals.echo` and :mod:`models.pedals.swept_delay`): gradient descent moves a delay by following the
slope between neighbouring samples, so it cannot travel thousands of samples from a wrong start. The measure is
the cross-correlation of the output, its dry part taken out, with the input; whitened (the generalised
cross-correlation with phase transform, GCC-PHAT: the cross-spectrum with its magnitude divided out) its peak at
the lag of a copy of the input stays sharp however coloured the material is. :func:`copy_gains` then finds by
least squares how loud each copy is.
"""

from __future__ import annotations

import numpy as np

WHITENING_FLOOR = 0.01  # of the reference's mean power: bins below it carry no weight in the whitened correlation


def lag_correlation(reference: np.ndarray, signal: np.ndarray, lags: int, whiten: bool) -> np.ndarray:
    """(lags + 1,): the cross-correlation of ``signal`` with ``reference`` delayed by 0..lags samples, whitened
    (GCC-PHAT: each frequency bin of the cross-spectrum at unit magnitude, bins where the reference is near silent at
    zero) or not. ``reference`` covers ``signal``'s span with ``lags`` samples more in front."""
    if len(reference) != len(signal) + lags:
        raise ValueError(f"the reference needs {len(signal) + lags} samples, not {len(reference)}")
    size = 1 << (len(reference) + len(signal)).bit_length()
    spectrum = np.fft.rfft(reference, size)
    cross = np.fft.rfft(signal, size) * np.conj(spectrum)
    if whiten:
        power = np.abs(spectrum) ** 2
        audible = power > WHITENING_FLOOR * max(float(np.mean(power)), 1e-30)
        cross = np.where(audible, cross / np.maximum(np.abs(cross), 1e-30), 0.0)
    correlation = np.fft.irfft(cross, size)
    return correlation[(np.arange(lags + 1) - lags) % size]


def strongest_lag(reference: np.ndarray, signal: np.ndarray, min_lag: int, max_lag: int, whiten: bool = True) -> int:
    """The lag in ``min_lag..max_lag`` where ``signal`` holds the strongest delayed copy of ``reference`` (laid out
    as for :func:`lag_correlation`), once the least-squares copy at lag 0 (a dry path) is taken out of it."""
    aligned = reference[max_lag:]
    dry = float(np.dot(signal, aligned) / max(float(np.dot(aligned, aligned)), 1e-30))
    correlation = lag_correlation(reference, signal - dry * aligned, max_lag, whiten)[min_lag:]
    return min_lag + int(np.argmax(correlation))


def copy_gains(dry: np.ndarray, wet: np.ndarray, delays: list[np.ndarray]) -> np.ndarray:
    """Least-squares gains ``g`` with ``wet ~ sum_i g_i dry[n - delays[i][n]]`` over the last ``len(wet)`` samples of
    ``dry`` (each delay (len(wet),) in samples, read with linear interpolation; reads before ``dry``'s start are
    silence)."""
    n = np.arange(len(dry) - len(wet), len(dry), dtype=float)
    columns = []
    for delay in delays:
        position = n - delay
        index = np.floor(position).astype(int)
        fraction = position - index
        padded = np.concatenate([[0.0], dry, [0.0]])  # index -1 -> silence, and one sample past the end
        low = padded[np.clip(index, -1, len(dry)) + 1]
        high = padded[np.clip(index + 1, -1, len(dry)) + 1]
        columns.append((1 - fraction) * low + fraction * high)
    return np.linalg.lstsq(np.stack(columns, axis=1), wet, rcond=None)[0]
