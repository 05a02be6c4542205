"""``reatimbre match-data``: render one synth's patches into clips for the patch-matching VAE."""

from __future__ import annotations

import argparse
from pathlib import Path

SYNTH_CHOICES = ("vital", "amsynth", "kars", "dexed")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "match-data",
        help="render a synth's presets (or random patches) into clips for patch matching (match-train)",
        description="Render notes (C4-B4, held 0.75 s then released, 1.01 s clips) of a synth's human presets "
        "(amsynth's Debian banks) or of random patches around its defaults (Vital, Kars), keeping mel spectrograms "
        "and encoded parameters (continuous 0..1, categoricals one-hot). Quiet clips are dropped; patches are split "
        "80/10/10 into train/validation/test by patch, so no preset leaks. Worker processes or Ray, a progress "
        "bar, provenance per shard; re-running the same command resumes.",
    )
    parser.add_argument("--synth", required=True, choices=SYNTH_CHOICES)
    parser.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or an earlier run's)")
    parser.add_argument(
        "--patches",
        type=int,
        default=0,
        help="random patches to draw; for a synth with presets, at most this many presets (default 0: all presets)",
    )
    parser.add_argument("--notes-per-patch", type=int, default=1, help="notes rendered per patch (default 1)")
    parser.add_argument(
        "--variations",
        type=int,
        default=0,
        help="random variations of each training preset, added to the training split (preset synths; default 0)",
    )
    parser.add_argument(
        "--variation-spread",
        type=float,
        default=0.08,
        help="a variation's step per continuous parameter, as a share of its range (default 0.08)",
    )
    parser.add_argument("--min-rms-dbfs", type=float, default=-40.0, help="drop quieter clips (default -40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-patches", type=int, default=64, help="patches per shard (default 64)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU)")
    parser.add_argument("--ray-address", help="render shards as Ray tasks ('auto', 'ray://host:10001', 'local')")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.asp.data import MatchDataConfig, generate
    from models.errors import ReaTimbreError

    if args.workers is not None and args.workers < 1:
        raise ReaTimbreError(f"--workers must be at least 1, got {args.workers}")
    config = MatchDataConfig(
        synth=args.synth,
        patches=args.patches,
        notes_per_patch=args.notes_per_patch,
        min_rms_dbfs=args.min_rms_dbfs,
        seed=args.seed,
        variations=args.variations,
        variation_spread=args.variation_spread,
        shard_patches=args.shard_patches,
    )
    run_elsewhere = None
    if args.ray_address:
        from functools import partial

        from models.scaleout import map_tasks

        run_elsewhere = partial(map_tasks, ray_address=args.ray_address)
    summary = generate(config, args.out, workers=args.workers, progress=not args.quiet, run_elsewhere=run_elsewhere)
    print(
        f"match-data {args.synth}: {summary['patches_rendered']} patches rendered"
        + (f" ({summary['patches_present_before']} were already there)" if summary["patches_present_before"] else "")
        + f" into {summary['shards']} shards in {args.out} in {summary['seconds']:.1f} s"
    )
    return 0
