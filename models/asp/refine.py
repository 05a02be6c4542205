"""Refining a matched patch by ear: a (1+1) evolution strategy over the encoded parameters, judged by renders.

The model's guess, or the closest of its rendered guesses, is where the search starts. Each step changes the best
patch so far a little — with probability :data:`CATEGORICAL_SHARE` one categorical parameter (a one-hot group)
moves to another class, drawn uniformly; otherwise one to three continuous parameters move by a normal step of
``sigma`` (a share of their 0..1 range) — decodes it to the synth's native patch, skips a patch already tried (a
small step can round to the same DX7 integer), has it measured (rendered and compared with the target: the log-
spectral distance, dB) and keeps it if it is closer. ``sigma`` starts at :data:`START_SIGMA`, grows after a
success and shrinks after a failure (within :data:`SIGMA_RANGE`), in the spirit of Rechenberg's one-fifth rule.
Deterministic for a seed. The measure is the caller's, so this module knows nothing of synths or audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.errors import ReaTimbreError
from models.synth.spaces import ParameterSpace

CATEGORICAL_SHARE = 0.3
START_SIGMA = 0.15
SIGMA_RANGE = (0.02, 0.5)
SIGMA_GROWTH = 1.3  # after a step that came closer
SIGMA_DECAY = 0.95  # after one that did not
MAX_CONTINUOUS_MOVES = 3
TRIES_PER_RENDER = 20
"""Steps that may decode to an already tried patch, per render allowed, before the search gives up."""
MAX_REFINE_RENDERS = 2000


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
) -> Refined:
    """Search from the encoded patch ``vector`` (whose distance is ``lsd_db``) with at most ``renders`` calls of
    ``measure`` (native patch → distance, dB); the closest patch found, ``vector`` itself if none came closer."""
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
        if used >= renders:
            break
        step = _step(best, continuous, layout.groups, sigma, rng)
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
) -> np.ndarray:
    out = vector.copy()
    if groups and (not len(continuous) or rng.random() < CATEGORICAL_SHARE):
        start, classes = groups[int(rng.integers(len(groups)))]
        if classes > 1:  # another class than the current one
            other = (int(np.argmax(out[start : start + classes])) + 1 + int(rng.integers(classes - 1))) % classes
            out[start : start + classes] = 0.0
            out[start + other] = 1.0
        return out
    count = min(len(continuous), 1 + int(rng.integers(MAX_CONTINUOUS_MOVES)))
    moved = rng.choice(continuous, size=count, replace=False)
    out[moved] = np.clip(out[moved] + rng.normal(0.0, sigma, len(moved)), 0.0, 1.0)
    return out


def _key(native: dict[str, float]) -> tuple[float, ...]:
    return tuple(round(float(value), 6) for value in native.values())
