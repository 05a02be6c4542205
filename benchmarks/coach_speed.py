"""Latency of one whole coach suggestion, renders included, with the shipped Vital weights.

    python benchmarks/coach_speed.py [--runs 12] [--steps 5] [--threads N] [--models DIR]

Each run starts from a dry preset and takes exactly ``--steps`` steps (the stopping rule is off so every run
does the same work): the first render, then per step the RNN, one CNN, applying the settings, a re-render and
the four distances. Prints mean / median / p95 milliseconds per run and per step, and the share spent rendering.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from models.coach.evaluate import vital_targets
from models.coach.families import FamilyRenderer
from models.coach.store import load_coach
from models.coach.suggest import run_coach
from models.rates import SAMPLE_RATE_HZ
from models.synth.features import CLIP_SAMPLES
from models.synth.profiles import load_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as `reatimbre coach`)")
    parser.add_argument("--models", default=None, help="coach weights folder (default: the shipped Vital set)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = load_coach(args.models)
    renderer = FamilyRenderer(load_profile("vital"))
    targets = list(vital_targets("all", args.runs + 1, 48, seed=4242))
    run_ms, render_ms = [], []
    for i, target in enumerate(targets):
        renderer.load_preset(target.preset)
        renderer.synth.set_controls(renderer.profile.controls({}))
        started = time.perf_counter()
        run_coach(models, renderer.synth, target.audio, max_steps=args.steps, stop_when_worse=False)
        elapsed = 1000 * (time.perf_counter() - started)
        started = time.perf_counter()
        renderer.synth.render(48, 1.0, 1.0, CLIP_SAMPLES / SAMPLE_RATE_HZ)
        one_render = 1000 * (time.perf_counter() - started)
        if i:  # the first run warms up torch and Vital
            run_ms.append(elapsed)
            render_ms.append(one_render * (args.steps + 1))
    runs = np.array(run_ms)
    print(
        f"{args.steps}-step suggestion, renders included ({len(runs)} runs, torch threads {torch.get_num_threads()}): "
        f"mean {runs.mean():.0f} ms, median {np.median(runs):.0f} ms, p95 {np.percentile(runs, 95):.0f} ms; "
        f"{runs.mean() / args.steps:.0f} ms per step; renders ~{100 * np.mean(render_ms) / runs.mean():.0f} %"
    )


if __name__ == "__main__":
    main()
