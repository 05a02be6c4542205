"""How fast ``reatimbre match`` answers per synth, and where the time goes (the goal: within 1 s per synth).

    python benchmarks/match_speed.py [--targets 9] [--synth vital amsynth kars dexed] [--threads 1] [--variant V]
                                     [--candidates 8] [--refine auto|N] [--seconds-per-synth S]

Targets are notes of the synths' own patches (random Vital and Kars patches, amsynth's human presets, MIDI 48-59;
seeded), written nowhere. First the cold costs (loading the weights, each synth's first match with the synth
loaded), then for every target the per-synth answer as the server's job gives it with its synths loaded
(``match_target``: infer, decode, render at the candidate notes, render the model's other guesses at the chosen note
(``--candidates``, as ``reatimbre match``), score, refine by ear (``--refine``, default each synth's own), write the
patch, host values; ``--seconds-per-synth`` as ``match``'s, cutting the guesses and refinement short), wall and CPU,
the renders it spent, and its parts timed the same way on the same targets. Finding the target's note and mel (once
per target, shared by all synths) is reported on its own line. numpy's BLAS runs one thread, as in every
``reatimbre`` command (``models.scaleout.limit_blas_threads``; set ``OPENBLAS_NUM_THREADS`` to measure another
count).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from models.asp.infer import (
    DEFAULT_CANDIDATES,
    Target,
    candidate_notes,
    candidate_vectors,
    match_target,
    prepare_target,
    render_distance,
    render_mel,
)
from models.asp.refine import guide_from_guesses, refine_patch
from models.asp.store import load_model
from models.metrics import lsd_db
from models.scaleout import limit_blas_threads
from models.synth.match_synths import MatchSynth, match_synth
from server.commands.match import refine_renders

RATE_HZ = 44_100


def _timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _targets(adapters: dict[str, MatchSynth], count: int, seed: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    names = list(adapters)
    out = []
    for i in range(count):
        name = names[i % len(names)]
        adapter = adapters[name]
        presets = adapter.presets()
        native = presets[int(rng.integers(len(presets)))].values if presets else adapter.space.random_patch(rng)
        note = int(rng.integers(48, 60))
        out.append((f"{name} patch at MIDI {note}", adapter.render(native, note, 1.0, 0.75, 1.5)))
    return out


def _measure(
    model: Any,
    adapters: dict[str, MatchSynth],
    target: Target,
    name: str,
    candidates: int,
    refine: int | None,
    seconds: float | None,
) -> tuple[float, float, int, dict[str, float]]:
    """One synth's whole answer (wall, CPU, renders) and its parts' wall times (at full counts), for one target."""
    results, wall, cpu = _timed(
        lambda: match_target(
            model, target, [name], adapters, candidates=candidates, refine=refine, seconds_per_synth=seconds
        )
    )
    adapter = adapters[name]
    vectors, t_infer, _ = _timed(lambda: candidate_vectors(model, target.mel_db80[None], name, candidates)[0])
    native, t_decode, _ = _timed(lambda: adapter.space.decode(vectors[0]))
    notes = candidate_notes(target)
    mels, t_render, _ = _timed(lambda: [render_mel(adapter, native, note) for note in notes])
    others = [adapter.space.decode(vector) for vector in vectors[1:]]
    more, t_more, _ = _timed(lambda: [render_mel(adapter, other, target.note) for other in others])
    _, t_score, _ = _timed(lambda: [lsd_db(mel, target.mel_db80) for mel in mels + more])
    renders = adapter.renders_refining(refine)
    refined, t_refine, _ = _timed(
        lambda: refine_patch(
            adapter.space,
            vectors[0],
            float(lsd_db(mels[0], target.mel_db80)),
            render_distance(adapter, target.note, target.mel_db80),
            renders,
            guide=guide_from_guesses(vectors, adapter.space.layout()),
        )
    )
    _, t_patch, _ = _timed(lambda: adapter.patch_file_bytes(native, "benchmark"))
    return (
        wall,
        cpu,
        results[0].renders,
        {
            f"infer ({candidates} guesses)": t_infer,
            "decode the patch": t_decode,
            f"render at {len(notes)} candidate notes": t_render,
            f"render {len(others)} more guesses": t_more,
            "score (LSD)": t_score,
            f"refine ({refined.renders} renders)": t_refine,
            "patch file": t_patch,
        },
    )


def _row(label: str, values: list[float]) -> str:
    ms = [1000 * v for v in values]
    return f"  {label:34s} median {statistics.median(ms):7.0f} ms   max {max(ms):7.0f} ms   (n={len(ms)})"


def _blas_threads() -> str:
    from threadpoolctl import threadpool_info

    return "/".join(str(pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "blas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=9)
    parser.add_argument("--synth", nargs="+", default=["vital", "amsynth", "kars", "dexed"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as `reatimbre match`)")
    parser.add_argument("--variant", default="joint_encoder")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--candidates", type=int, default=DEFAULT_CANDIDATES, help="guesses rendered per synth (as `match`)"
    )
    parser.add_argument("--refine", type=refine_renders, default=None, help="renders refining (as `match`)")
    parser.add_argument("--seconds-per-synth", type=float, default=None, help="time budget per synth (as `match`)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    limit_blas_threads()  # as every reatimbre command does (models.scaleout)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f}; torch {torch.__version__}, {torch.get_num_threads()} thread(s); numpy BLAS "
        f"{_blas_threads()} thread(s); variant {args.variant}; "
        f"{args.candidates} guesses per synth, refine {'auto' if args.refine is None else args.refine}, "
        f"time budget {'none' if args.seconds_per_synth is None else f'{args.seconds_per_synth:g} s'} per synth"
    )
    (model, _sidecar), load_wall, load_cpu = _timed(lambda: load_model(None, args.variant))
    print(f"cold: loading the weights {1000 * load_wall:.0f} ms wall, {1000 * load_cpu:.0f} ms CPU")
    adapters: dict[str, MatchSynth] = {name: match_synth(name) for name in args.synth}
    for name, adapter in adapters.items():
        _, wall, cpu = _timed(lambda adapter=adapter: adapter.synth)
        print(f"cold: loading {name} {1000 * wall:.0f} ms wall, {1000 * cpu:.0f} ms CPU")
    targets = _targets(adapters, args.targets, args.seed)
    first = prepare_target(targets[0][1], RATE_HZ)
    for name in args.synth:
        _, wall, cpu = _timed(
            lambda name=name: match_target(
                model,
                first,
                [name],
                adapters,
                candidates=args.candidates,
                refine=args.refine,
                seconds_per_synth=args.seconds_per_synth,
            )
        )
        print(f"cold: {name}'s first match {1000 * wall:.0f} ms wall, {1000 * cpu:.0f} ms CPU")

    prepare_wall: list[float] = []
    prepare_cpu: list[float] = []
    answer: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in args.synth}
    renders: dict[str, list[int]] = {name: [] for name in args.synth}
    parts: dict[str, dict[str, list[float]]] = {name: {} for name in args.synth}
    for _label, audio in targets:
        target, wall, cpu = _timed(lambda audio=audio: prepare_target(audio, RATE_HZ))
        prepare_wall.append(wall)
        prepare_cpu.append(cpu)
        for name in args.synth:
            wall, cpu, spent, timed_parts = _measure(
                model, adapters, target, name, args.candidates, args.refine, args.seconds_per_synth
            )
            renders[name].append(spent)
            answer[name][0].append(wall)
            answer[name][1].append(cpu)
            for key, value in timed_parts.items():
                parts[name].setdefault(key, []).append(value)

    print(f"\nper target, shared by all synths (find the note with pyin, the mel): {len(targets)} targets")
    print(_row("note + mel, wall", prepare_wall))
    print(_row("note + mel, CPU", prepare_cpu))
    for name in args.synth:
        walls, cpus = answer[name]
        verdict = "within" if statistics.median(walls) <= 1.0 else "OVER"
        print(f"\n{name}: the answer with the synth loaded ({verdict} 1 s at the median)")
        print(_row("wall", walls))
        print(_row("CPU", cpus))
        counts = renders[name]
        median = statistics.median(counts)
        print(f"  {'renders in the answer':32s}   median {median:7.0f}   min {min(counts)}, max {max(counts)}")
        for key, values in parts[name].items():
            print(_row(key, values))


if __name__ == "__main__":
    main()
