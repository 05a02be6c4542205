"""How closely a model follows the real effect it emulates across its knobs: the sidecar's ``knob_grid`` metrics.

On a 5 x 5 grid of the first two knobs, a fixed program is rendered through the model and through the real effect
(built from the sidecar's ``emulates`` record) and measured with one estimator for both (loudness: ITU-R BS.1770
integrated; reverb decay: :func:`models.evaluation.t60_estimate`). The goals: loudness within 1 LU of the real
effect at every point, and a reverb's T60 within 15 % at every point where the real effect's T60 is measurable.

``python -m models.real_agreement NAME...`` measures installed models and prints the blocks as JSON; with
``--write`` it also records each block as ``metrics.knob_grid`` in the model's sidecar.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from models.atomic_files import write_text
from models.errors import ReaTimbreError
from models.explore import agreement, explore
from models.library import find_model
from models.material import make_program
from models.rates import SAMPLE_RATE_HZ

GRID = 5
INPUT_SECONDS = 8.0
INPUT_SEED = 1_000_003  # the seed of the training recipes' held-out material: this is its first 8 s clip
GOALS = {"loudness_max_error_lu": 1.0, "t60_max_relative_error": 0.15}


def grid_input() -> np.ndarray:
    """The program every knob-grid measurement renders (mono, 44.1 kHz)."""
    return make_program(INPUT_SECONDS, SAMPLE_RATE_HZ, np.random.default_rng(INPUT_SEED))


def knob_grid_metrics(name: str, grid: int = GRID) -> dict:
    """The ``knob_grid`` block for model ``name``'s sidecar metrics: both grids, their worst disagreement, the
    goals and whether it meets them."""
    result = explore(name, grid_input(), grid, sample_rate=SAMPLE_RATE_HZ, compare_real=True)
    keys = ("loudness_lufs", "t60_seconds", "t60_reasons")
    block = {
        "grid": grid,
        "knobs": result["knobs"],
        "input": f"models.material.make_program({INPUT_SECONDS} s, {SAMPLE_RATE_HZ} Hz, seed {INPUT_SEED})",
        "loudness": "ITU-R BS.1770 integrated loudness of each render (pyloudnorm)",
        "t60": result["t60_estimator"],
        "real_effect": result["real"]["effect"],
        "model": {k: result[k] for k in keys},
        "real": {k: result["real"][k] for k in keys},
        **result["agreement"],
        "goals": dict(GOALS),
    }
    block["meets_goals"] = not goal_failures(block)
    return block


def goal_failures(block: dict) -> list[str]:
    """What a ``knob_grid`` block misses of the goals, one line each, judged from its grids (not its summary)."""
    try:
        found = agreement(block["model"], block["real"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReaTimbreError(f"the knob_grid block is malformed: {exc}") from None
    failures = []
    limit = GOALS["loudness_max_error_lu"]
    if found["loudness_max_error_lu"] > limit:
        failures.append(f"loudness differs from the real effect by {found['loudness_max_error_lu']:.2f} LU (> {limit})")
    if found["t60_points"]:
        limit = GOALS["t60_max_relative_error"]
        if found["t60_model_unmeasured"]:
            failures.append(
                f"T60 not measurable at {found['t60_model_unmeasured']} of the {found['t60_points']} grid points "
                "where the real effect's is"
            )
        worst = found["t60_max_relative_error"]
        if worst is not None and worst > limit:
            failures.append(f"T60 differs from the real effect's by {worst:.0%} (> {limit:.0%})")
    return failures


def record_block(name: str, block: dict) -> None:
    """Write ``block`` into model ``name``'s sidecar as ``metrics.knob_grid`` (atomically)."""
    path = find_model(name).weights_path.with_suffix(".json")
    sidecar = json.loads(path.read_text())
    sidecar.setdefault("metrics", {})["knob_grid"] = block
    write_text(path, json.dumps(sidecar, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure installed models against their real effects on a knob grid")
    parser.add_argument("names", nargs="+", metavar="NAME")
    parser.add_argument("--grid", type=int, default=GRID)
    parser.add_argument("--write", action="store_true", help="record each block in the model's sidecar metrics")
    args = parser.parse_args(argv)
    blocks = {}
    for name in args.names:
        try:
            blocks[name] = knob_grid_metrics(name, args.grid)
        except ReaTimbreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        failures = goal_failures(blocks[name])
        print(f"{name}: {'meets the goals' if not failures else '; '.join(failures)}", file=sys.stderr)
        if args.write:
            record_block(name, blocks[name])
    print(json.dumps(blocks, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
