"""The measured starting point of the octave's divider network (:class:`~models.pedals.divider.OctaveDivider`),
taken on the training pairs before gradient descent.

The divider's toggling is not differentiable, so gradient descent cannot find where it should listen. But with the
right divider the real output is, pair by pair, a linear mix of the delayed dry input and filtered copies of the
folded ``s d``; with a wrong one (toggling at other samples) it is not. So the detection cutoff and the hysteresis
are measured, and held during gradient descent:

1. **divider** (:func:`measure_divider`): for a candidate cutoff and hysteresis, each pair's wet is fitted by least
   squares with the dry input delayed by the latency and a fixed bank of one-pole low-passes
   (:data:`MEASURE_BANK_HZ`) of the folded ``s d``; the score is the mean over pairs of ``log10`` of the relative
   residual energy (a mean of logarithms: the pairs the right divider explains exactly decide, not the few whose
   quiet passages a wrong hysteresis toggles differently). In log frequency the score has a sharp V-shaped minimum
   at the right cutoff (on the real octave: -8.3 at 400 Hz, -7.5 at 397 Hz, -6.6 at 392 Hz). The cutoff is
   searched on a 1/12-octave grid over the whole range, 1/96-octave grids around its three best minima, a
   1/768-octave grid around the best, then by golden section; the hysteresis on a 5 dB grid, then in 1 dB steps
   (the middle of the run of equal best scores: the score changes only where a threshold passes a quiet sample);
   then both again, the cutoff now searched with the hysteresis found (a wrong hysteresis blurs its minimum);
2. **sub filter and dry gain** (:func:`measure_sub`): with that divider, each pair's wet is fitted by the dry input
   and one one-pole low-pass of ``s d`` at each cutoff of a 1/12-octave grid; each pair's best cutoff, sub gain and
   dry gain are its measured parts. The knob network (embedding and head) is then fitted to them by least squares
   on the parameters (:func:`fit_head`), so that gradient descent starts from a sub voice with the right level and
   roughly the right tone at every knob setting; the other sub sections start silent, as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from models.pedals.divider import Batch, DividerConfig, OctaveDivider, _fresh_state, divide

START_BATCHES = 8  # training batches the sub filter is measured on (the divider on the first DIVIDER_BATCHES)
DIVIDER_BATCHES = 4
MEASURE_BANK_HZ = tuple(float(f) for f in np.geomspace(40.0, 10_000.0, 8))  # sub filters of the divider's search
COARSE_STEPS_PER_OCTAVE = 12
FINE_STEPS_PER_OCTAVE = 96
HYSTERESIS_CANDIDATES_DB = tuple(float(h) for h in np.arange(-90.0, -19.0, 5.0))
RESIDUAL_FLOOR = 1e-10  # added to each crop's relative residual before its logarithm
SCORE_TOLERANCE = 0.001  # log10 units: hysteresis candidates this close to the best score count as equally good
FINEST_STEPS_PER_OCTAVE = 768
GOLDEN_STEPS = 12
MEASURE_ROUNDS = 2  # cutoff then hysteresis, twice: a wrong hysteresis blurs the cutoff's minimum (-60 dB for -50 dB
# moved it to 390 Hz on one seed's pairs), and the second round searches the cutoff with the hysteresis found
SUB_STEPS_PER_OCTAVE = 12
HEAD_FIT_STEPS = 400
HEAD_FIT_RATE = 1e-2
EXPLAINED_FULL_WEIGHT = 0.05  # a pair whose sub voice explains this share of its wet counts fully in the head fit


def start_divider(network: OctaveDivider, next_batch: Callable[[int], Batch]) -> None:
    """Measure the divider, then the sub filter and dry gain, on training batches ``0 ..`` (module docstring)."""
    batches = [next_batch(step) for step in range(START_BATCHES)]
    cutoff_hz, hysteresis_db = measure_divider(batches[:DIVIDER_BATCHES], network.config)
    network.config = replace(network.config, detect_cutoff_hz=cutoff_hz, hysteresis_db=hysteresis_db, measured=True)
    controls = torch.cat([control for _, control, _ in batches])
    fit_head(network, controls, *measure_sub(network, batches))


def measure_divider(batches: list[Batch], config: DividerConfig) -> tuple[float, float]:
    """The detection cutoff (Hz) and hysteresis (dBFS) whose divider best explains the pairs (module docstring)."""
    pairs = [_Pairs(batch, config) for batch in batches]
    cutoff_hz, hysteresis_db = config.detect_cutoff_hz, config.hysteresis_db
    for _ in range(MEASURE_ROUNDS):
        cutoff_hz = _search_cutoff(pairs, config, hysteresis_db)
        hysteresis_db = _search_hysteresis(pairs, cutoff_hz)
    return cutoff_hz, hysteresis_db


def _search_cutoff(pairs: list[_Pairs], config: DividerConfig, hysteresis_db: float) -> float:
    """The detection cutoff of the best score: a 1/12-octave grid over the range, 1/96-octave grids around its
    three best minima, a 1/768-octave grid around the best of those, then a golden-section search between that
    grid's neighbours of its best point (the score has a sharp minimum: a V in log frequency)."""

    def score(cutoff_hz: float) -> float:
        return _score(pairs, float(np.clip(cutoff_hz, config.min_cutoff_hz, config.max_cutoff_hz)), hysteresis_db)

    def best_on(grid: np.ndarray) -> tuple[float, float]:  # (score, cutoff)
        return min((score(f), float(f)) for f in grid)

    coarse = _log_grid(config, COARSE_STEPS_PER_OCTAVE)
    coarse_scores = np.array([score(f) for f in coarse])
    steps = np.arange(-8, 9)
    _, cutoff = min(best_on(coarse[i] * 2 ** (steps / FINE_STEPS_PER_OCTAVE)) for i in _best_minima(coarse_scores, 3))
    _, cutoff = best_on(cutoff * 2 ** (steps / FINEST_STEPS_PER_OCTAVE))
    step = math.log(2) / FINEST_STEPS_PER_OCTAVE
    low, high = math.log(cutoff) - step, math.log(cutoff) + step
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    score_a, score_b = score(math.exp(a)), score(math.exp(b))
    for _ in range(GOLDEN_STEPS):
        if score_a <= score_b:
            high, b, score_b = b, a, score_a
            a = high - ratio * (high - low)
            score_a = score(math.exp(a))
        else:
            low, a, score_a = a, b, score_b
            b = low + ratio * (high - low)
            score_b = score(math.exp(b))
    return round(math.exp((low + high) / 2), 2)


def _search_hysteresis(pairs: list[_Pairs], cutoff_hz: float) -> float:
    """The hysteresis of the best score: a 5 dB grid, then 1 dB steps around its best, the middle of the run of
    equal best scores (the score is a step function of the hysteresis: it changes only where a threshold passes a
    quiet sample's level)."""
    coarse = HYSTERESIS_CANDIDATES_DB
    best = coarse[int(np.argmin([_score(pairs, cutoff_hz, h) for h in coarse]))]
    fine = [best + step for step in range(-4, 5)]
    scores = [_score(pairs, cutoff_hz, h) for h in fine]
    return float(fine[_best_run_middle(scores)])


def _best_minima(residuals: np.ndarray, count: int) -> list[int]:
    """Indices of the ``count`` least residuals that are not next to one already chosen."""
    chosen: list[int] = []
    for index in np.argsort(residuals, kind="stable"):
        if all(abs(int(index) - other) > 1 for other in chosen):
            chosen.append(int(index))
        if len(chosen) == count:
            break
    return chosen


def _best_run_middle(scores: list[float]) -> int:
    """The index in the middle of the run of candidates, around the best (least) score, within
    :data:`SCORE_TOLERANCE` of it."""
    values = np.asarray(scores)
    best = int(np.argmin(values))
    good = values <= values[best] + SCORE_TOLERANCE
    low, high = best, best
    while low > 0 and good[low - 1]:
        low -= 1
    while high < len(values) - 1 and good[high + 1]:
        high += 1
    return (low + high) // 2


class _Pairs:
    """One training batch prepared for the measurements: the dry's spectrum, the delayed dry and the wet over the
    output samples (float64, (B, segment, 1)), and the spectra of one-pole impulse responses, cached by cutoff."""

    def __init__(self, batch: Batch, config: DividerConfig):
        x, _, wet = batch
        self.config, self.length, self.segment = config, x.shape[-1], wet.shape[-1]
        self.size = 1 << (2 * self.length - 1).bit_length()  # FFT size of a linear convolution
        self.spectrum = torch.fft.rfft(x.double(), self.size)
        self.dry = self._output(nn.functional.pad(x, (config.latency, 0))[..., : self.length].double())
        self.target = self._output(wet.double())
        self._responses: dict[float, torch.Tensor] = {}

    def _output(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, 1, T or segment) to its last ``segment`` samples as (B, segment, 1)."""
        return audio[..., audio.shape[-1] - self.segment :].transpose(1, 2)

    def response(self, cutoff_hz: float) -> torch.Tensor:
        """The spectrum of a one-pole low-pass's impulse response ``(1 - p) p^n`` over the batch's length."""
        if cutoff_hz not in self._responses:
            pole = math.exp(-2 * math.pi * cutoff_hz / self.config.sample_rate)
            n = torch.arange(self.length, dtype=torch.float64)
            self._responses[cutoff_hz] = torch.fft.rfft((1 - pole) * pole**n, self.size)
        return self._responses[cutoff_hz]

    def folded(self, cutoff_hz: float, hysteresis_db: float) -> torch.Tensor:
        """The spectrum of ``s d`` for a divider listening through a one-pole low-pass at ``cutoff_hz``."""
        detected = torch.fft.irfft(self.spectrum * self.response(cutoff_hz), self.size)[..., : self.length]
        square, _ = divide(detected, 10 ** (hysteresis_db / 20), _fresh_state(detected.shape[0], detected.device))
        return torch.fft.rfft(square * detected, self.size)

    def low_passed(self, folded: torch.Tensor, cutoffs_hz: tuple[float, ...]) -> torch.Tensor:
        """``s d`` (its spectrum, (B, 1, F)) through a one-pole low-pass at each cutoff: (B, segment, cutoffs)."""
        responses = torch.stack([self.response(f) for f in cutoffs_hz])  # (cutoffs, F)
        return self._output(torch.fft.irfft(folded * responses, self.size)[..., : self.length])


def _score(pairs: list[_Pairs], cutoff_hz: float, hysteresis_db: float) -> float:
    """How well a divider explains the pairs: the mean over crops of ``log10`` of the relative residual energy of
    the least-squares fit of the wet by the delayed dry and the bank of low-passed ``s d`` (plus
    :data:`RESIDUAL_FLOOR`). A mean of logarithms, so that the crops the right divider explains exactly decide,
    rather than the few whose quiet passages a wrong hysteresis toggles differently."""
    scores = []
    for batch in pairs:
        bank = batch.low_passed(batch.folded(cutoff_hz, hysteresis_db), MEASURE_BANK_HZ)
        regressors = torch.cat((batch.dry, bank), dim=-1)
        solution = torch.linalg.lstsq(regressors, batch.target).solution
        residual = torch.sum((batch.target - regressors @ solution) ** 2, dim=(1, 2))
        scores.append(residual / torch.sum(batch.target**2, dim=(1, 2)).clamp(min=1e-12))
    return float(torch.mean(torch.log10(torch.cat(scores) + RESIDUAL_FLOOR)))


def measure_sub(network: OctaveDivider, batches: list[Batch]) -> tuple[torch.Tensor, ...]:
    """Each pair's sub cutoff (Hz), sub gain and dry gain (N,), and how much its sub voice explains (N,, 0..1 of
    the wet's energy), with the network's divider: least squares with the delayed dry and one one-pole low-pass of
    ``s d`` per candidate cutoff, the best candidate per pair."""
    config = network.config
    candidates = tuple(float(f) for f in _log_grid(config, SUB_STEPS_PER_OCTAVE))
    rows = []
    for batch in (_Pairs(b, config) for b in batches):
        folded = batch.folded(config.detect_cutoff_hz, config.hysteresis_db)
        subs = batch.low_passed(folded, candidates)  # (B, segment, candidates)
        dry, target = batch.dry[..., 0], batch.target[..., 0]  # (B, segment)
        # two-column least squares in closed form, for every candidate at once
        dd, ty = torch.sum(dry * dry, -1, keepdim=True), torch.sum(dry * target, -1, keepdim=True)
        ss = torch.sum(subs * subs, 1)
        ds = torch.sum(dry[..., None] * subs, 1)
        ts = torch.sum(target[..., None] * subs, 1)
        det = (dd * ss - ds**2).clamp(min=1e-18)
        dry_gain, sub_gain = (ty * ss - ds * ts) / det, (dd * ts - ds * ty) / det  # (B, candidates)
        energy = torch.sum(target**2, -1, keepdim=True)
        residual = energy - dry_gain * ty - sub_gain * ts  # the least-squares residual energy
        best = torch.argmin(residual, dim=-1)
        rows_ = torch.arange(len(best))
        dry_only = energy[:, 0] - ty[:, 0] ** 2 / dd[:, 0].clamp(min=1e-18)
        explained = ((dry_only - residual[rows_, best]) / energy[:, 0].clamp(min=1e-12)).clamp(0.0, 1.0)
        rows.append((torch.tensor(candidates)[best], sub_gain[rows_, best], dry_gain[rows_, best], explained))
    return tuple(torch.cat(parts).float() for parts in zip(*rows, strict=True))


def _log_grid(config: DividerConfig, per_octave: int) -> np.ndarray:
    """Cutoffs from ``min_cutoff_hz`` up to ``max_cutoff_hz``, ``per_octave`` to an octave."""
    octaves = math.log2(config.max_cutoff_hz / config.min_cutoff_hz)
    return config.min_cutoff_hz * 2 ** (np.arange(int(octaves * per_octave) + 1) / per_octave)


def fit_head(
    network: OctaveDivider,
    controls: torch.Tensor,
    cutoff_hz: torch.Tensor,
    sub_gain: torch.Tensor,
    dry_gain: torch.Tensor,
    explained: torch.Tensor,
) -> None:
    """Fit the knob network so that its first sub section has the measured cutoff and gain and its dry path the
    measured gain at each pair's knobs (weighted by how much the sub voice explains the pair, the dry gain fully);
    the other outputs are held where they are."""
    config = network.config
    span = math.log(config.max_cutoff_hz / config.min_cutoff_hz)
    share = (torch.log(cutoff_hz / config.min_cutoff_hz) / span).clamp(0.01, 0.99)
    logit = torch.log(share / (1 - share))
    weight = (explained / EXPLAINED_FULL_WEIGHT).clamp(max=1.0)
    with torch.no_grad():
        held = network.head(network.cond_mlp(controls))
    parameters = [*network.cond_mlp.parameters(), *network.head.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=HEAD_FIT_RATE)
    with torch.enable_grad():  # start_from measures under no_grad
        _fit(network, controls, optimiser, logit, sub_gain, dry_gain, weight, held)


def _fit(
    network: OctaveDivider,
    controls: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    logit: torch.Tensor,
    sub_gain: torch.Tensor,
    dry_gain: torch.Tensor,
    weight: torch.Tensor,
    held: torch.Tensor,
) -> None:
    s = network.config.sub_poles
    for _ in range(HEAD_FIT_STEPS):
        out = network.head(network.cond_mlp(controls))
        sub = torch.mean(weight * ((out[:, 0] - logit) ** 2 + (out[:, s] - sub_gain) ** 2))
        measured = sub + torch.mean((out[:, -1] - dry_gain) ** 2)
        others = [i for i in range(out.shape[1]) if i not in (0, s, out.shape[1] - 1)]
        loss = measured + torch.mean((out[:, others] - held[:, others]) ** 2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
