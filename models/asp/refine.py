"""Refining a matched patch by ear: a (1+1) evolution strategy over the encoded parameters, judged by renders.

The model's guess, or the closest of its rendered guesses, is where the search starts. Each step changes the best
patch so far a little — with probability :data:`CATEGORICAL_SHARE` one categorical parameter (a one-hot group)
moves to another class, drawn uniformly; otherwise one to three continuous parameters move by a normal step of
``sigma`` (a share of their 0..1 range) — decodes it to the synth's native patch, skips a patch already tried (a
small step can round to the same DX7 integer), has it measured (rendered and compared with the target: the log-
spectral distance, dB) and keeps it if it is closer. ``sigma`` starts at :data:`START_SIGMA`, grows after a
success and shrinks after a failure (within :data:`SIGMA_RANGE`), in the spirit of Rechenberg's one-fifth rule.
Deterministic for a seed. The measure is the caller's, so this module knows nothing of synths or audio.

Guided by the guesses (:class:`RefineGuide`, from :func:`guide_from_guesses`). The model's several guesses for a
target say where it is unsure: a continuous parameter on which they disagree is moved more often and by larger
steps (each slot's chance and step scale in proportion to its spread over the guesses, plus
:data:`SPREAD_FLOOR`), a categorical parameter whose class they disagree on is redrawn more often, and its new
class is drawn from what they said (half the first guess's class probabilities, half the other guesses' classes,
plus :data:`CLASS_SMOOTHING`) instead of uniformly. Without a guide every slot and class is equally likely. On test
clips of docs/match.md's data (joint encoder, best of 12 guesses, the same renders), guiding took Dexed from 6.84
to 6.36 dB with 88 renders (60 clips), amsynth from 8.26 to 7.69 with 60 (40 clips, each patch heard from a fresh
render), and left Vital with 6-10 renders where it was (40 clips: 6.46 / 6.45). With Dexed's 200 renders the gain
is within the spread of the clips drawn (5.39 to 4.99, 4.78 to 4.62, but 4.73 to 4.88 on a third draw).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.errors import ReaTimbreError
from models.synth.spaces import Layout, ParameterSpace

CATEGORICAL_SHARE = 0.3
START_SIGMA = 0.15
SIGMA_RANGE = (0.02, 0.5)
SIGMA_GROWTH = 1.3  # after a step that came closer
SIGMA_DECAY = 0.95  # after one that did not
MAX_CONTINUOUS_MOVES = 3
TRIES_PER_RENDER = 20
"""Steps that may decode to an already tried patch, per render allowed, before the search gives up."""
MAX_REFINE_RENDERS = 2000
SPREAD_FLOOR = 0.02
"""Added to each continuous slot's spread over the guesses (0..1 units), so a slot they agree on still moves."""
CLASS_SMOOTHING = 0.05
"""Probability spread evenly over a group's classes before normalising, so no class is ruled out."""


@dataclass(frozen=True)
class RefineGuide:
    """Where to search, from the guesses: per continuous slot (in ``layout.continuous`` order) the chance of moving
    it and its step scale (mean 1); per one-hot group the chance of redrawing it and its classes' probabilities."""

    slot_chances: np.ndarray
    slot_scales: np.ndarray
    group_chances: np.ndarray
    class_probabilities: tuple[np.ndarray, ...]


def guide_from_guesses(guesses: np.ndarray, layout: Layout) -> RefineGuide:
    """A guide from encoded guesses (count, k) for one target, the first being the model's own (class
    probabilities in its one-hot groups, as :func:`models.asp.infer.candidate_vectors` gives); one guess is enough."""
    guesses = np.asarray(guesses, dtype=np.float64)
    if guesses.ndim != 2 or not len(guesses) or guesses.shape[1] != layout.size:
        raise ReaTimbreError(f"guesses must be (count, {layout.size}), got {guesses.shape}")
    continuous = np.asarray(layout.continuous, dtype=np.int64)
    spread = guesses[:, continuous].std(axis=0) + SPREAD_FLOOR
    probabilities, unsure = [], []
    for start, classes in layout.groups:
        first = np.clip(guesses[0, start : start + classes], 0.0, None)
        first = first / first.sum() if first.sum() > 0 else np.full(classes, 1.0 / classes)
        if len(guesses) > 1:
            votes = np.bincount(guesses[1:, start : start + classes].argmax(axis=1), minlength=classes)
            first = 0.5 * first + 0.5 * votes / votes.sum()
        smoothed = first + CLASS_SMOOTHING / classes
        probabilities.append(smoothed / smoothed.sum())
        unsure.append(1.0 - float(first.max()) + CLASS_SMOOTHING)
    group_chances = np.asarray(unsure, dtype=np.float64)
    return RefineGuide(
        slot_chances=spread / spread.sum() if len(spread) else spread,
        slot_scales=spread / spread.mean() if len(spread) else spread,
        group_chances=group_chances / group_chances.sum() if len(group_chances) else group_chances,
        class_probabilities=tuple(probabilities),
    )


@dataclass(frozen=True)
class Refined:
    """Where the search ended."""

    vector: np.ndarray  # the encoded patch
    native: dict[str, float]
    lsd_db: float
    renders: int  # patches measured
    improvements: int  # of which came closer


def refine_patch(
    space: ParameterSpace,
    vector: np.ndarray,
    lsd_db: float,
    measure: Callable[[dict[str, float]], float],
    renders: int,
    seed: int = 0,
    guide: RefineGuide | None = None,
    in_time: Callable[[], bool] | None = None,
) -> Refined:
    """Search from the encoded patch ``vector`` (whose distance is ``lsd_db``) with at most ``renders`` calls of
    ``measure`` (native patch → distance, dB); the closest patch found, ``vector`` itself if none came closer.
    ``guide`` (:func:`guide_from_guesses`) says which parameters to move most; None moves any alike. ``in_time``
    (:meth:`models.asp.time_budget.Deadline.has_time`) is asked before each render; False ends the search."""
    if not 0 <= renders <= MAX_REFINE_RENDERS:
        raise ReaTimbreError(f"refinement renders must be 0..{MAX_REFINE_RENDERS}, got {renders}")
    layout = space.layout()
    continuous = np.asarray(layout.continuous, dtype=np.int64)
    rng = np.random.default_rng(seed)
    best = np.asarray(vector, dtype=np.float32).copy()
    best_native, best_lsd = space.decode(best), float(lsd_db)
    tried = {_key(best_native)}
    sigma, used, improvements = START_SIGMA, 0, 0
    for _ in range(renders * TRIES_PER_RENDER):
        if used >= renders or (in_time is not None and not in_time()):
            break
        step = _step(best, continuous, layout.groups, sigma, rng, guide)
        native = space.decode(step)
        key = _key(native)
        if key in tried:
            continue
        tried.add(key)
        used += 1
        distance = float(measure(native))
        if distance < best_lsd:
            best, best_native, best_lsd = step, native, distance
            improvements += 1
            sigma = min(SIGMA_RANGE[1], sigma * SIGMA_GROWTH)
        else:
            sigma = max(SIGMA_RANGE[0], sigma * SIGMA_DECAY)
    return Refined(best, best_native, best_lsd, used, improvements)


def _step(
    vector: np.ndarray,
    continuous: np.ndarray,
    groups: tuple[tuple[int, int], ...],
    sigma: float,
    rng: np.random.Generator,
    guide: RefineGuide | None,
) -> np.ndarray:
    out = vector.copy()
    if groups and (not len(continuous) or rng.random() < CATEGORICAL_SHARE):
        group = int(rng.integers(len(groups)) if guide is None else rng.choice(len(groups), p=guide.group_chances))
        start, classes = groups[group]
        current = int(np.argmax(out[start : start + classes]))
        if classes > 1:  # another class than the current one
            if guide is None:
                other = (current + 1 + int(rng.integers(classes - 1))) % classes
            else:
                chances = guide.class_probabilities[group].copy()
                chances[current] = 0.0
                other = int(rng.choice(classes, p=chances / chances.sum()))
            out[start : start + classes] = 0.0
            out[start + other] = 1.0
        return out
    count = min(len(continuous), 1 + int(rng.integers(MAX_CONTINUOUS_MOVES)))
    if guide is None:
        moved, scales = rng.choice(continuous, size=count, replace=False), np.ones(count)
    else:
        slots = rng.choice(len(continuous), size=count, replace=False, p=guide.slot_chances)
        moved, scales = continuous[slots], guide.slot_scales[slots]
    out[moved] = np.clip(out[moved] + rng.normal(0.0, sigma, len(moved)) * scales, 0.0, 1.0)
    return out


def _key(native: dict[str, float]) -> tuple[float, ...]:
    return tuple(round(float(value), 6) for value in native.values())
