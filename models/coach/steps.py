"""The order the coach programs effects in, and the training examples drawn from families.

The coach turns effects on in a fixed *step order*, and the next-effect RNN learns to name, from what it
hears, the first effect of that order the target has and the current sound has not — so its softmax answers
"which effect comes next". The order was chosen by measurement. Applying a target's own settings one effect at
a time (``benchmarks/coach_order.py``), distortion, compressor, reverb, then phaser and EQ in either order
leave the fewest steps that do not lower the spectral MSE (0.22 per target over 36 targets, against 0.33 for
Vital's signal-flow order). Of those two, EQ goes last because it is the effect that most often changes nothing
a mel spectrogram shows (a high shelf above a sine's partials: for 10 % of 600 draws the EQ alone moved the dry
sound by a spectral MSE under 5e-5, where the other effects' 10 % quantiles were 6e-4 (reverb) to 1e-2). Named last, an
EQ the RNN cannot hear is still the one effect left when nothing else is missing; named before the phaser, it
was the RNN's most frequent miss. SerumRNN's learned order ends with EQ too (distortion, phaser, compressor,
reverb, EQ).

Training examples are index triples into a :class:`~models.coach.families.Families` set:

* effect CNN for effect ``e``: (family, target mask S ∋ e, current mask C ⊆ S∖{e}); half of them use the
  canonical C (the effects of S before ``e`` in step order), half any subset (SerumRNN's Cartesian product),
  which keeps the CNN usable after an unexpected earlier step;
* next-effect RNN: (family, S, currents) after t steps; the sequence is the (target, current) pairs after 0..t
  steps with the one-hots of the effects used so far, and the label is the first effect of S, in step order,
  that the last current lacks. Most sequences are canonical (S's own effects in step order); a share is *off
  the path* — effects added in a random order, including ones S lacks — as the coach's own sequences are after
  a wrong pick, so that the RNN has seen a current with an effect the target does not have.
"""

from __future__ import annotations

import numpy as np

from models.coach.families import N_SUBSETS, subset_effects, subset_mask
from models.synth.profiles import EFFECT_NAMES

DEFAULT_STEP_ORDER = ("distortion", "compressor", "reverb", "phaser", "eq")


def ordered_effects(mask: int, step_order: tuple[str, ...] = DEFAULT_STEP_ORDER) -> list[str]:
    """The effects of ``mask`` in step order."""
    present = set(subset_effects(mask))
    return [name for name in step_order if name in present]


def canonical_prefix(mask: int, steps: int, step_order: tuple[str, ...] = DEFAULT_STEP_ORDER) -> int:
    """Mask of the first ``steps`` effects of ``mask`` in step order."""
    return subset_mask(ordered_effects(mask, step_order)[:steps])


def next_effect(target_mask: int, used_mask: int, step_order: tuple[str, ...] = DEFAULT_STEP_ORDER) -> str | None:
    """The effect the RNN should name: the first in step order the target has and the current lacks."""
    for name in ordered_effects(target_mask & ~used_mask, step_order):
        return name
    return None


def _submasks(mask: int) -> list[int]:
    return [sub for sub in range(N_SUBSETS) if sub & ~mask == 0]


def sample_effect_pairs(
    effect: str,
    n_families: int,
    count: int,
    rng: np.random.Generator,
    step_order: tuple[str, ...] = DEFAULT_STEP_ORDER,
) -> np.ndarray:
    """``count`` rows of (family, target mask, current mask) for ``effect``'s CNN (see the module docstring)."""
    bit = 1 << EFFECT_NAMES.index(effect)
    targets = [m for m in range(N_SUBSETS) if m & bit]
    before = subset_mask(step_order[: step_order.index(effect)])
    rows = np.empty((count, 3), dtype=np.int64)
    rows[:, 0] = rng.integers(n_families, size=count)
    rows[:, 1] = rng.choice(targets, size=count)
    canonical = rng.random(count) < 0.5
    for i in range(count):
        target = int(rows[i, 1])
        if canonical[i]:
            rows[i, 2] = target & before
        else:
            options = _submasks(target & ~bit)
            rows[i, 2] = options[rng.integers(len(options))]
    return rows


#: One next-effect RNN example: (family, target mask, current masks after 0..t steps).
RNNExample = tuple[int, int, tuple[int, ...]]


def canonical_currents(
    target: int, steps_taken: int, step_order: tuple[str, ...] = DEFAULT_STEP_ORDER
) -> tuple[int, ...]:
    """Current masks after 0..``steps_taken`` of the target's own effects, applied in step order."""
    return tuple(canonical_prefix(target, t, step_order) for t in range(steps_taken + 1))


def off_path_currents(target: int, steps_taken: int, rng: np.random.Generator) -> tuple[int, ...]:
    """Current masks after ``steps_taken`` effects added in a random order (any of the five, the target's or
    not), redrawn until the target still has an effect the last current lacks."""
    while True:
        order = rng.permutation(len(EFFECT_NAMES))[:steps_taken]
        currents = [0]
        for index in order:
            currents.append(currents[-1] | 1 << int(index))
        if target & ~currents[-1]:
            return tuple(currents)


def sample_rnn_batch(
    n_families: int,
    count: int,
    rng: np.random.Generator,
    step_order: tuple[str, ...] = DEFAULT_STEP_ORDER,
    off_path_fraction: float = 0.0,
) -> tuple[int, list[RNNExample]]:
    """One RNN batch: a number of steps taken ``t`` and ``count`` examples with ``t + 1`` currents each.

    ``t`` is drawn in proportion to how many targets allow it, so every canonical (target, t) is equally likely;
    a share ``off_path_fraction`` of the examples follow :func:`off_path_currents` instead.
    """
    sizes = [len(ordered_effects(m, step_order)) for m in range(N_SUBSETS)]
    by_steps = [[m for m in range(1, N_SUBSETS) if sizes[m] > t] for t in range(len(step_order))]
    weights = np.array([len(masks) for masks in by_steps], dtype=np.float64)
    steps_taken = int(rng.choice(len(by_steps), p=weights / weights.sum()))
    masks = by_steps[steps_taken]
    examples: list[RNNExample] = []
    for _ in range(count):
        family, target = int(rng.integers(n_families)), int(masks[rng.integers(len(masks))])
        if rng.random() < off_path_fraction:
            currents = off_path_currents(target, steps_taken, rng)
        else:
            currents = canonical_currents(target, steps_taken, step_order)
        examples.append((family, target, currents))
    return steps_taken, examples


def rnn_label(target: int, current: int, step_order: tuple[str, ...] = DEFAULT_STEP_ORDER) -> int:
    """Index in :data:`EFFECT_NAMES` of the effect the RNN should name after ``current`` (see :func:`next_effect`)."""
    label = next_effect(target, current, step_order)
    if label is None:
        raise ValueError(f"target mask {target} has nothing that current mask {current} lacks")
    return EFFECT_NAMES.index(label)
