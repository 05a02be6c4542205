"""What a model that cannot know the Leslie's rotor phases can score (docs/afx.md, "Goal a").

    python benchmarks/afx_leslie_phase.py [--phases 48] [--seconds 20] [--seed 1000]

On the held-out material ``afx-train --task leslie`` scores on (``models.afx.tasks.segments(..., heldout=True)``,
seed 0 + 1000 by default), per speed: the real effect at other rotor phases (the dry input delayed by a random
number of samples before the numpy Leslie, whose rotors start at phase 0 at the first sample, and advanced again),
the mean over ``--phases`` such phases (what a waveform-loss model blind to the phase tends to) and their
per-sample median, each scored with :mod:`models.afx.metrics` as a ratio to the dry input's score.
"""

from __future__ import annotations

import argparse

import numpy as np

from models.afx import leslie
from models.afx.experiment import SAMPLE_RATE_HZ
from models.afx.metrics import METRICS
from models.afx.tasks import segments

NAMES = ("mae", "ms_mse", "mrstft", "logpower_mse", "mfcc_cosine")
MAX_SHIFT_SECONDS = 10.0


def at_phase(dry: np.ndarray, speed: float, shift_samples: int) -> np.ndarray:
    """The Leslie's output for ``dry`` with its rotors ``shift_samples`` further on (the input delayed, then the
    output advanced by as many samples)."""
    padded = np.concatenate((np.zeros(shift_samples), dry.astype(np.float64)))
    return leslie.leslie(padded, SAMPLE_RATE_HZ, speed)[shift_samples:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=20.0, help="held-out material per speed (afx-train's 20)")
    parser.add_argument("--seed", type=int, default=1000, help="held-out seed (afx-train: its --seed + 1000)")
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    for segment in segments("leslie", args.seconds, SAMPLE_RATE_HZ, args.seed, heldout=True):
        speed = float(segment.control[0])
        shifts = rng.integers(1, int(MAX_SHIFT_SECONDS * SAMPLE_RATE_HZ), args.phases)
        renders = np.stack([at_phase(segment.dry, speed, int(shift)) for shift in shifts])
        cases = {
            "other phase (mean of 3 draws)": list(renders[:3]),
            f"mean over {args.phases} phases": [renders.mean(0)],
            f"median over {args.phases} phases": [np.median(renders, 0)],
        }
        dry = {name: METRICS[name](segment.wet, segment.dry, SAMPLE_RATE_HZ) for name in NAMES}
        print(f"speed {speed:g}:")
        for label, estimates in cases.items():
            ratios = {
                name: np.mean([METRICS[name](segment.wet, e.astype(np.float32), SAMPLE_RATE_HZ) for e in estimates])
                / dry[name]
                for name in NAMES
            }
            print(f"  {label}: " + ", ".join(f"{name} {value:.3f}" for name, value in ratios.items()), flush=True)


if __name__ == "__main__":
    main()
