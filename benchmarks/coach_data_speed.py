"""Speed of `reatimbre coach-data`: clips per second, and where each clip's time goes.

    python benchmarks/coach_data_speed.py [--clips 192] [--group all] [--workers N] [--settle-seconds S]

Runs the real generator (worker processes, shards on disk) into a temporary folder and prints clips/s, then
times one process clip by clip: the settling pass, the note render and the features, in CPU milliseconds (CPU
time is what other jobs on a shared machine cannot inflate), with the rate that implies for N dedicated cores.
The goal on our 2-core machine is 60 clips/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

# One process stands for one core here, as in coach-data's workers (set before numpy loads its BLAS).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from models.synth import presets as preset_data  # noqa: E402
from models.synth.dataset import CLIPS_PER_DRAW, DatasetConfig, generate, plan_clip  # noqa: E402
from models.synth.features import CLIP_SAMPLES, clip_features  # noqa: E402
from models.synth.profiles import load_profile  # noqa: E402
from models.synth.vital import DEFAULT_SETTLE_SECONDS, VitalSynth  # noqa: E402

GOAL_CLIPS_PER_SECOND = 60.0


def cpu_breakdown(config: DatasetConfig, clips: int) -> dict[str, float]:
    """Mean CPU milliseconds per clip of settling, note render and features, in this process, over clips drawn
    at random from every preset of the group (grouped by preset, as a worker renders them)."""
    profile = load_profile(config.profile)
    span = CLIPS_PER_DRAW * len(config.presets()) * 8
    picked = sorted(np.random.default_rng(0).choice(span, size=clips, replace=False), key=lambda i: (i // 32) % 12)
    synth = VitalSynth(settle_seconds=config.settle_seconds)
    init_patch = synth.patch_json()
    totals = {"settle_ms": 0.0, "note_ms": 0.0, "features_ms": 0.0}
    render_seconds = CLIP_SAMPLES / config.sample_rate_hz
    loaded = None
    for i in picked:
        plan = plan_clip(config, int(i), profile)
        if plan.preset != loaded:
            synth.load_patch_json(preset_data.build_preset_patch(plan.preset, init_patch))
            loaded = plan.preset
        synth.set_controls(profile.controls(plan.settings))
        t0 = time.process_time()
        synth._settle(config.note)
        t1 = time.process_time()
        audio = synth._render_note(config.note, config.velocity, config.note_seconds, render_seconds)
        t2 = time.process_time()
        clip_features(audio)
        t3 = time.process_time()
        totals["settle_ms"] += (t1 - t0) * 1000
        totals["note_ms"] += (t2 - t1) * 1000
        totals["features_ms"] += (t3 - t2) * 1000
    return {key: value / clips for key, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=192)
    parser.add_argument("--group", default="all")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--settle-seconds", type=float, default=DEFAULT_SETTLE_SECONDS)
    args = parser.parse_args()
    config = DatasetConfig(group=args.group, clips=args.clips, shard_clips=16, settle_seconds=args.settle_seconds)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory(prefix="reatimbre-coach-bench-") as folder:
        summary = generate(config, f"{folder}/data", workers=args.workers, progress=False)
    print(
        f"coach-data, group {args.group}, {args.clips} clips, {summary['workers']} worker processes, "
        f"settle {args.settle_seconds:g} s (1-min load average before: {load_before:.2f}):"
    )
    print(f"  wall clock, process start-up included: {summary['clips_per_second']:.1f} clips/s")
    breakdown = cpu_breakdown(config, 96)
    per_clip_ms = sum(breakdown.values())
    print(
        "  CPU per clip: "
        + ", ".join(f"{key[:-3]} {value:.1f} ms" for key, value in breakdown.items())
        + f" = {per_clip_ms:.1f} ms"
    )
    cores = args.workers
    ideal = cores * 1000.0 / per_clip_ms
    verdict = "meets" if ideal >= GOAL_CLIPS_PER_SECOND else "misses"
    print(
        f"  on {cores} dedicated cores that is {ideal:.1f} clips/s; {verdict} the goal of "
        f"{GOAL_CLIPS_PER_SECOND:.0f} clips/s"
    )
    note_only = np.round(1000.0 / breakdown["note_ms"] * cores, 1)
    print(f"  (Vital's note render alone would allow {note_only} clips/s on {cores} cores)")


if __name__ == "__main__":
    main()
