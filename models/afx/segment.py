"""One piece of training material: a (dry, wet) pair and the knob settings it was made with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    """One (dry, wet) pair, (samples,) each, made with the knob settings ``control`` (knobs,) (empty: no knobs)."""

    dry: np.ndarray
    wet: np.ndarray
    control: np.ndarray
