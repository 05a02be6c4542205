"""Probabilistic YIN pitch tracking (Mauch & Dixon, 2014) with a banded Viterbi pass.

The same tracker as librosa's ``pyin`` with its default settings (100 thresholds under a beta(2, 18) prior, a
Boltzmann prior on the troughs, pitch bins a tenth of a semitone apart, at most 35.92 octaves per second, a 1 %
voiced/unvoiced switch), frame for frame, about thirty times as fast. librosa decodes the hidden Markov model with
a dense transition matrix over every pair of its 2 × 841 states (C1..C8), about 1.2 s for half a second of audio on
a 2-core AMD EPYC; a pitch can only move a few semitones between frames, so each state has few possible
predecessors (with :mod:`models.pitch`'s frames, 51 pitch bins, voiced or not: 102), and only those are scored here
(0.04 s). Ties are broken as librosa breaks them (the lowest state), and the arithmetic is librosa's, so the path is
the same (``tests/test_pitch_track.py`` checks it against ``librosa.pyin``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.signal
import scipy.stats

THRESHOLDS = 100
BETA_SHAPE = (2.0, 18.0)  # prior over YIN's threshold
BOLTZMANN_SHAPE = 2.0  # prior over which trough under the threshold is the period: earlier troughs favoured
BINS_PER_SEMITONE = 10
MAX_OCTAVES_PER_SECOND = 35.92
SWITCH_PROBABILITY = 0.01  # voiced to unvoiced or back, per frame
NO_TROUGH_PROBABILITY = 0.01  # given to the global minimum when no trough is below a threshold


def _difference(frames: np.ndarray, min_period: int, max_period: int) -> np.ndarray:
    """YIN's cumulative mean normalised difference, periods ``min_period..max_period`` (samples) × frames."""
    import librosa

    autocorrelation = librosa.autocorrelate(frames, max_size=max_period + 1, axis=-2)
    energy = np.cumsum(np.square(frames), axis=-2)
    energy[0, :] = 0  # as librosa: d(1) = 2 (r(0) - r(1)), d(k) = 2 (r(0) - r(k)) - (y(1)² + ... + y(k-1)²)
    lags = slice(1, max_period + 1)
    difference = np.empty_like(energy)
    difference[0, :] = 0
    difference[lags, :] = 2 * (autocorrelation[0:1, :] - autocorrelation[lags, :]) - energy[: lags.stop - 1, :]
    numerator = difference[min_period : max_period + 1, :]
    running_mean = np.cumsum(difference[lags, :], axis=-2) / np.arange(1, max_period + 1)[:, None]
    denominator = running_mean[min_period - 1 : max_period, :]
    return numerator / (denominator + np.finfo(denominator.dtype).tiny)


def _parabolic_shifts(difference: np.ndarray) -> np.ndarray:
    """Where the parabola through each point and its neighbours has its vertex, in periods (0 at the edges and
    where the vertex lies beyond a neighbour). Computed in float64 and stored in the input's type, as librosa does."""
    middle = difference[1:-1].astype(np.float64)
    above = difference[2:]
    below = difference[:-2]
    curvature = (above + below).astype(np.float64) - 2 * middle
    slope = (above - below).astype(np.float64) / 2
    inside = np.abs(slope) < np.abs(curvature)
    shifts = np.zeros_like(difference)
    with np.errstate(divide="ignore", invalid="ignore"):
        shifts[1:-1] = np.where(inside, -slope / np.where(inside, curvature, 1.0), 0.0)
    return shifts


def _troughs(column: np.ndarray) -> np.ndarray:
    """Indices of the local minima of one frame's difference function (the first point counts when it is below
    the second; the last when it is below the one before it)."""
    is_trough = np.zeros(column.size, bool)
    is_trough[1:-1] = (column[1:-1] < column[:-2]) & (column[1:-1] <= column[2:])
    is_trough[-1] = column[-1] < column[-2]
    is_trough[0] = column[0] < column[1]
    return np.flatnonzero(is_trough)


def _observations(
    difference: np.ndarray, shifts: np.ndarray, rate_hz: float, min_period: int, fmin_hz: float, pitch_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's probability of every voiced pitch bin and of being unvoiced (spread over the unvoiced bins):
    (2 × pitch_bins, frames) and the voiced probability (1, frames)."""
    thresholds = np.linspace(0, 1, THRESHOLDS + 1)
    threshold_probability = np.diff(scipy.stats.beta.cdf(thresholds, *BETA_SHAPE))
    period_probability = np.zeros_like(difference)
    for frame in range(difference.shape[1]):
        column = difference[:, frame]
        troughs = _troughs(column)
        if troughs.size == 0:
            continue
        heights = column[troughs]
        below = np.less.outer(heights, thresholds[1:])  # trough × threshold
        position = np.cumsum(below, axis=0) - 1  # which trough under the threshold, from the shortest period
        prior = scipy.stats.boltzmann.pmf(position, BOLTZMANN_SHAPE, np.count_nonzero(below, axis=0))
        prior[~below] = 0
        probability = prior.dot(threshold_probability)
        lowest = int(np.argmin(heights))
        probability[lowest] += NO_TROUGH_PROBABILITY * np.sum(threshold_probability[: np.count_nonzero(~below[lowest])])
        period_probability[troughs, frame] = probability
    period_index, frame_index = np.nonzero(period_probability)
    periods = min_period + period_index + shifts[period_index, frame_index]
    bins = 12 * BINS_PER_SEMITONE * np.log2(rate_hz / periods / fmin_hz)
    bins = np.clip(np.round(bins), 0, pitch_bins).astype(int)
    observations = np.zeros((2 * pitch_bins, difference.shape[1]))
    observations[bins, frame_index] = period_probability[period_index, frame_index]
    voiced_probability = np.clip(np.sum(observations[:pitch_bins, :], axis=0, keepdims=True), 0, 1)
    observations[pitch_bins:, :] = (1 - voiced_probability) / pitch_bins
    return observations, voiced_probability


@lru_cache(maxsize=4)
def _banded_transitions(pitch_bins: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For every state (voiced pitch bins, then unvoiced), its possible predecessors in ascending order and the log
    probability of each move, padded with state 0 at minus infinity: both (2 × pitch_bins, 2 × width).

    Moves between pitch bins follow a triangle ``width`` bins wide, cut at the range's ends and normalised per
    bin over the whole row (as librosa's ``transition_local``); staying voiced or unvoiced has 0.99, switching 0.01.
    """
    half = width // 2
    window = scipy.signal.windows.triang(width)
    local = np.zeros((pitch_bins, pitch_bins))
    for source in range(pitch_bins):
        low, high = max(0, source - half), min(pitch_bins, source + half + 1)
        local[source, low:high] = window[low - source + half : high - source + half]
    local /= local.sum(axis=1, keepdims=True)
    switch = np.array([[1 - SWITCH_PROBABILITY, SWITCH_PROBABILITY], [SWITCH_PROBABILITY, 1 - SWITCH_PROBABILITY]])
    tiny = np.finfo(np.float64).tiny
    states = 2 * pitch_bins
    predecessors = np.zeros((states, 2 * width), dtype=np.int64)
    log_moves = np.full((states, 2 * width), -np.inf)
    for target_voicing in range(2):
        for target in range(pitch_bins):
            row = target_voicing * pitch_bins + target
            low, high = max(0, target - half), min(pitch_bins, target + half + 1)
            sources = np.arange(low, high)
            for source_voicing in range(2):  # voiced sources, then unvoiced: ascending state order, padding last
                columns = slice(source_voicing * sources.size, (source_voicing + 1) * sources.size)
                predecessors[row, columns] = source_voicing * pitch_bins + sources
                moves = switch[source_voicing, target_voicing] * local[sources, target]
                log_moves[row, columns] = np.log(moves + tiny)
    return predecessors, log_moves


def _viterbi(observations: np.ndarray, predecessors: np.ndarray, log_moves: np.ndarray) -> np.ndarray:
    """The most likely state of every frame, from a uniform start: (frames,) state indices."""
    tiny = np.finfo(observations.dtype).tiny
    states, frames = observations.shape
    log_observations = np.log(observations + tiny).T
    rows = np.arange(states)
    value = log_observations[0] + np.log(np.full(states, 1.0 / states) + tiny)
    back = np.zeros((frames, states), dtype=np.int64)
    for frame in range(1, frames):
        scores = value[predecessors] + log_moves
        best = np.argmax(scores, axis=1)
        back[frame] = predecessors[rows, best]
        value = log_observations[frame] + scores[rows, best]
    path = np.zeros(frames, dtype=np.int64)
    path[-1] = int(np.argmax(value))
    for frame in range(frames - 1, 0, -1):
        path[frame - 1] = back[frame, path[frame]]
    return path


def pyin(
    mono: np.ndarray, rate_hz: float, fmin_hz: float, fmax_hz: float, frame_length: int, hop_length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track the pitch of ``mono`` (1-D), frames centred every ``hop_length`` samples (zero-padded at the ends).

    Returns the pitch in Hz (NaN where unvoiced), whether each frame is voiced, and the probability that it is.
    ``rate_hz / fmin_hz`` must be below ``frame_length - 1`` and ``fmax_hz`` at most half the rate.
    """
    import librosa

    if not 0 < fmin_hz < fmax_hz <= rate_hz / 2 or rate_hz / fmin_hz >= frame_length - 1:
        raise ValueError(f"pitch range {fmin_hz}..{fmax_hz} Hz does not fit frames of {frame_length} at {rate_hz} Hz")
    padded = np.pad(mono, (frame_length // 2, frame_length // 2))
    frames = librosa.util.frame(padded, frame_length=frame_length, hop_length=hop_length)
    min_period = int(np.floor(rate_hz / fmax_hz))
    max_period = min(int(np.ceil(rate_hz / fmin_hz)), frame_length - 1)
    difference = _difference(frames, min_period, max_period)
    shifts = _parabolic_shifts(difference)
    pitch_bins = int(np.floor(12 * BINS_PER_SEMITONE * np.log2(fmax_hz / fmin_hz))) + 1
    observations, voiced_probability = _observations(difference, shifts, rate_hz, min_period, fmin_hz, pitch_bins)
    semitones_per_frame = round(MAX_OCTAVES_PER_SECOND * 12 * hop_length / rate_hz)
    predecessors, log_moves = _banded_transitions(pitch_bins, semitones_per_frame * BINS_PER_SEMITONE + 1)
    path = _viterbi(observations, predecessors, log_moves)
    voiced = path < pitch_bins
    f0_hz = fmin_hz * 2 ** ((path % pitch_bins) / (12 * BINS_PER_SEMITONE))
    f0_hz[~voiced] = np.nan
    return f0_hz, voiced, voiced_probability[0]
