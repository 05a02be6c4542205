"""``reatimbre coach-data``: render the synth coach's training set (Vital clips with random effect settings)."""

from __future__ import annotations

import argparse
from pathlib import Path

GROUP_CHOICES = ("basic_shapes", "advanced_shapes", "advanced_modulating_shapes", "all")


def add_max_draws(parser: argparse.ArgumentParser) -> None:
    """``--max-draws N`` for the commands that read coach-data folders."""
    parser.add_argument(
        "--max-draws",
        type=int,
        default=None,
        metavar="N",
        help="use only the first N complete draws: fixes the draw set (and the train/validation/test split) of a "
        "coach-data folder still rendering or rendered further later",
    )


def add_memory_map(parser: argparse.ArgumentParser) -> None:
    """``--memory-map`` for the commands that read coach-data folders."""
    parser.add_argument(
        "--memory-map",
        action="store_true",
        help="read the draws from a cache on disk (built, or grown, in DATA/families-cache on first use) instead "
        "of holding them in memory: for more draws than fit in RAM (~0.9 MB each); one --data folder",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coach-data",
        help="render synth-coach training clips (Vital, random effect subsets and settings) into feature shards",
        description="Render 1 s notes of a preset group's Vital presets in draws of 32 clips: one random setting "
        "of the coach's five effects (SerumRNN's sampling ranges) under every subset of the effects. Stores their "
        "features (dB-mel/80, 128 mels, hop 512; 30 MFCCs) in compact shards with full provenance. Runs in worker "
        "processes with a progress bar; re-running the same command resumes an interrupted run.",
    )
    parser.add_argument("--group", required=True, choices=GROUP_CHOICES, help="preset group ('all': all 12)")
    parser.add_argument(
        "--clips", required=True, type=int, help="number of clips (a multiple of 32 keeps every draw complete)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (new, empty, or an earlier run's)")
    parser.add_argument("--note", type=int, default=48, help="MIDI note to render (default 48, SerumRNN's C4)")
    parser.add_argument(
        "--note-high",
        type=int,
        default=None,
        metavar="N",
        help="draw each draw's note uniformly from --note..N (default: --note only)",
    )
    parser.add_argument(
        "--variation",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of draws whose preset is varied: unison, levels, amp envelope, filter 1 (default 0; see "
        "docs/coach.md)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--shard-clips", type=int, default=128, help="clips per shard (default 128)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU)")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=None,
        help="settling render before each note (default 0.3; see docs/synth.md)",
    )
    parser.add_argument(
        "--ray-address", help="render shards as Ray tasks ('auto', 'ray://host:10001', 'local'); workers must see --out"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.errors import ReaTimbreError
    from models.synth.dataset import DatasetConfig, generate
    from models.synth.vital import DEFAULT_SETTLE_SECONDS

    if args.workers is not None and args.workers < 1:
        raise ReaTimbreError(f"--workers must be at least 1, got {args.workers}")
    config = DatasetConfig(
        group=args.group,
        clips=args.clips,
        note=args.note,
        note_high=args.note_high,
        variation=args.variation,
        seed=args.seed,
        shard_clips=args.shard_clips,
        settle_seconds=DEFAULT_SETTLE_SECONDS if args.settle_seconds is None else args.settle_seconds,
    )
    run_elsewhere = None
    if args.ray_address:
        from functools import partial

        from models.scaleout import map_tasks

        run_elsewhere = partial(map_tasks, ray_address=args.ray_address)
    summary = generate(config, args.out, workers=args.workers, progress=not args.quiet, run_elsewhere=run_elsewhere)
    print(
        f"coach-data: {summary['clips_rendered']} clips rendered"
        + (f" ({summary['clips_present_before']} were already there)" if summary["clips_present_before"] else "")
        + f" into {summary['shards']} shards in {args.out}; "
        f"{summary['clips_per_second']:.1f} clips/s with {summary['workers']} worker(s)"
    )
    return 0
