"""Training material is reproducible: the same seed gives the same program, Vital's notes included."""

from __future__ import annotations

import numpy as np

from models.material import GENERATORS, make_program, vital_note
from models.rates import SAMPLE_RATE_HZ


def test_the_same_seed_gives_the_same_vital_note() -> None:
    for seed in range(3):
        first = vital_note(np.random.default_rng(seed), SAMPLE_RATE_HZ)
        again = vital_note(np.random.default_rng(seed), SAMPLE_RATE_HZ)
        assert np.array_equal(first, again) and np.abs(first).max() > 0.01


def test_the_same_seed_gives_the_same_program_of_every_kind() -> None:
    first = make_program(3.0, SAMPLE_RATE_HZ, np.random.default_rng(7), list(GENERATORS))
    again = make_program(3.0, SAMPLE_RATE_HZ, np.random.default_rng(7), list(GENERATORS))
    other = make_program(3.0, SAMPLE_RATE_HZ, np.random.default_rng(8), list(GENERATORS))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
