"""``reatimbre coach-chains``: replay the coach's loop on coach-data draws, as next-effect RNN training material."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from server.commands.coach_data import add_max_draws, add_memory_map


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coach-chains",
        help="render the coach's own step sequences (effects set by its CNNs) on coach-data draws",
        description="For random draws and target subsets of `reatimbre coach-data` folders, start from the dry "
        "preset and turn effects on one at a time, each set by the coach's effect CNN, rendering after each step "
        "- the sounds the next-effect RNN meets inside the loop. Most chains follow the target's effects in step "
        "order; --off-path of them add effects in a random order. `coach-train --rnn-chains` trains on the "
        "chains of its training draws. Re-running the same command resumes.",
    )
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="coach-data folder(s)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or an earlier run's)")
    parser.add_argument("--chains", required=True, type=int, help="number of chains to render")
    parser.add_argument("--models", type=Path, default=None, help="coach models folder (default: the shipped ones)")
    parser.add_argument("--off-path", type=float, default=0.25, metavar="FRACTION", help="default 0.25")
    add_max_draws(parser)
    add_memory_map(parser)
    parser.add_argument(
        "--skip-draws",
        type=int,
        default=0,
        metavar="N",
        help="render chains only for the draws after the first N (e.g. those rendered since an earlier chains run)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from models.coach.chains import generate_chains
    from models.coach.families import draws_manifest, load_families
    from models.coach.store import shipped_dir
    from models.errors import ReaTimbreError

    if args.chains < 1:
        raise ReaTimbreError(f"--chains must be at least 1, got {args.chains}")
    if args.workers < 1:
        raise ReaTimbreError(f"--workers must be at least 1, got {args.workers}")
    if not 0.0 <= args.off_path <= 1.0:
        raise ReaTimbreError(f"--off-path must be in 0..1, got {args.off_path}")
    for folder in args.data:
        if float(draws_manifest(folder)["config"].get("variation", 0.0)) > 0.0:
            raise ReaTimbreError(f"{folder} holds varied presets (coach-data --variation); chains replay plain presets")
    families = load_families(args.data, args.max_draws, memory_map=args.memory_map, progress=not args.quiet)
    if not 0 <= args.skip_draws < len(families):
        raise ReaTimbreError(f"--skip-draws must be in 0..{len(families) - 1} (draws loaded), got {args.skip_draws}")
    if args.skip_draws:
        families = families.subset(np.arange(args.skip_draws, len(families)))
    models_dir = args.models or shipped_dir()
    summary = generate_chains(
        families,
        models_dir,
        args.out,
        args.chains,
        seed=args.seed,
        off_path_fraction=args.off_path,
        workers=args.workers,
        manifest_extra={
            "data": [str(d) for d in args.data],
            "command": "reatimbre " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        },
        progress=not args.quiet,
    )
    print(
        f"coach-chains: {summary['chains_rendered']} chains in {summary['seconds']:.0f} s "
        f"({summary['chains_per_second']:.1f}/s) into {args.out}"
    )
    return 0
