"""``reatimbre demo``: run the main job on embedded defaults (no REAPER, generated audio, shipped models)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="render generated audio through every shipped effect and print what happened"
    )
    parser.add_argument("--out", type=Path, default=Path("reatimbre-demo"), help="folder for the demo's files")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the generated input")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.errors import ReaTimbreError
    from server.demo import coach_demo, effects_demo, print_table

    if args.seconds <= 0 or args.seconds > 600:
        raise ReaTimbreError("--seconds must be between 0 and 600")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = effects_demo(args.out, args.seconds) + coach_demo(args.out)
    if not rows:
        raise ReaTimbreError("no shipped models found in models/weights; reinstall ReaTimbre")
    print_table(rows)
    return 0
