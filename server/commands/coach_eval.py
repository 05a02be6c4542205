"""``reatimbre coach-eval``: the synth coach on held-out targets, in the SerumRNN paper's table layout."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from server.commands.options import COACH_THREADS_HELP, add_threads, apply_threads

PAPER_GROUPS = ("basic_shapes", "advanced_shapes", "advanced_modulating_shapes")
#: Other notes, named as the paper names MIDI 48 "C4".
OTHER_NOTES = {"C3": 36, "G4": 55}
IN_DISTRIBUTION = "in distribution: 12 presets, MIDI 48, training's samplers"
OUT_OF_DISTRIBUTION = "out of distribution: init and random patches, other effect laws, C2..C6"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coach-eval",
        help="evaluate the synth coach on held-out targets (paper Tables 1, 4, 5, 6) against a random order",
        description="For each preset group, render held-out Vital targets (random effect subsets and settings, "
        "a seed never used in training), run the coach from the dry preset and a random-order baseline, and print "
        "initial/final error, per-step change and final/initial ratio for MSE, MAE, MFCC distance and LSD, and "
        "the next-effect accuracy per step. --beyond adds targets at C3 and G4 and targets made by amsynth. --ood "
        "compares an in-distribution set (the 12 presets at MIDI 48, training's samplers) with an out-of-distribution "
        "one (Vital's init patch and random oscillator/filter patches, effect values from other laws, notes C2..C6; "
        "see docs/coach.md).",
    )
    parser.add_argument("--targets", type=int, default=24, help="held-out targets per group (default 24)")
    parser.add_argument(
        "--groups",
        nargs="+",
        default=None,
        choices=PAPER_GROUPS,
        metavar="GROUP",
        help="preset groups (default: all three, or none with --ood)",
    )
    parser.add_argument("--beyond", action="store_true", help="also other notes (C3, G4) and amsynth targets")
    parser.add_argument(
        "--ood",
        action="store_true",
        help="the in-distribution set (12 presets, MIDI 48) beside an out-of-distribution set of another origin, "
        "with the goals MSE <= 0.19, LSD <= 0.47, MFCCD <= 0.43 (final/initial means)",
    )
    parser.add_argument("--max-steps", type=int, default=5, help="steps per run (default 5)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the held-out targets and the random order (default: the one docs/coach.md's tables use); "
        "another seed draws another set, to see how much a number moves between sets",
    )
    parser.add_argument("--models", type=Path, metavar="DIR", help="coach weights folder (default: shipped)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the numbers as JSON (new file)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_threads(parser, default=1, help=COACH_THREADS_HELP)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.atomic_files import write_bytes
    from models.coach.evaluate import (
        EVAL_SEED,
        EvalTarget,
        amsynth_targets,
        evaluate_targets,
        format_accuracy_table,
        format_group_table,
        format_ood_table,
        ood_targets,
        summarize,
        timing,
        vital_targets,
    )
    from models.coach.store import NEXT_EFFECT_NAME, load_coach
    from models.errors import ReaTimbreError

    if args.targets < 1:
        raise ReaTimbreError(f"--targets must be at least 1, got {args.targets}")
    if args.json is not None and args.json.exists():
        raise ReaTimbreError(f"{args.json} already exists; choose a new file")
    apply_threads(args)
    seed = EVAL_SEED if args.seed is None else args.seed
    models = load_coach(args.models)
    groups = args.groups if args.groups is not None else ([] if args.ood else list(PAPER_GROUPS))
    suites: list[tuple[str, Callable[[], Iterator[EvalTarget]]]] = [
        (group.replace("_", " "), partial(vital_targets, group, args.targets, 48, seed)) for group in groups
    ]
    if args.ood:
        suites.append((IN_DISTRIBUTION, partial(vital_targets, "all", args.targets, 48, seed)))
        suites.append((OUT_OF_DISTRIBUTION, partial(ood_targets, args.targets, seed)))
    if args.beyond:
        for name, note in OTHER_NOTES.items():
            title = f"{name} (MIDI {note}), all presets"
            suites.append((title, partial(vital_targets, "all", args.targets, note, seed)))
        suites.append(("amsynth targets, from the closest preset", lambda: amsynth_targets(args.targets, seed=seed)))
    results = {}
    kinds: dict[str, list[str]] = {}
    for title, make in suites:
        if not args.quiet:
            print(f"coach-eval: {title} ...", file=sys.stderr, flush=True)

        def show(n: int, title: str = title) -> None:
            if not args.quiet:
                print(f"\r  {title}: {n}/{args.targets}", end="", file=sys.stderr, flush=True)

        targets = list(make())
        kinds[title] = [t.preset for t in targets]
        coach, baseline = evaluate_targets(models, iter(targets), args.max_steps, seed=seed, progress=show)
        if not args.quiet:
            print(file=sys.stderr)
        results[title] = (coach, baseline)
        print(format_group_table(title, coach, baseline, args.max_steps))
        print()
    paper = {t: results[t][0] for t in results if "amsynth" not in t}
    print(
        format_accuracy_table(paper, models.sidecars[NEXT_EFFECT_NAME].get("test_next_effect_accuracy"), args.max_steps)
    )
    if args.ood:
        print()
        print(
            format_ood_table(
                results[IN_DISTRIBUTION][0], results[OUT_OF_DISTRIBUTION][0], kinds[OUT_OF_DISTRIBUTION], args.max_steps
            )
        )
    if args.json is not None:
        from models.coach.evaluate import accuracy_by_step, by_start

        body = {
            title: {
                "coach": summarize(coach, args.max_steps),
                "random_order": summarize(baseline, args.max_steps),
                "accuracy": accuracy_by_step(coach, args.max_steps),
                "timing": timing(coach),
                "targets": len(coach),
                "seed": seed,
                "by_start": by_start(coach, kinds[title], args.max_steps),
            }
            for title, (coach, baseline) in results.items()
        }
        write_bytes(args.json, json.dumps(body, indent=1).encode("utf-8"), make_parents=True)
    return 0
