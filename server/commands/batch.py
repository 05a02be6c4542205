"""``reatimbre batch``: render a folder or glob of audio files, resuming where an earlier run stopped."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.errors import ReaTimbreError
from server.batch import RenderSettings, TaskOutcome, collect_inputs, plan_tasks, run_batch


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="render many audio files (a folder, files or glob patterns) through one effect",
        description="Render every audio file through one effect into --out. Files already rendered are "
        "skipped, so re-running an interrupted batch resumes it; nothing is overwritten. A summary at the "
        "end lists the failures (exit status 1 if there were any).",
    )
    parser.add_argument("inputs", nargs="+", help="audio files, folders or glob patterns (quote the patterns)")
    parser.add_argument("--effect", required=True, help="effect (model) name; see `reatimbre models`")
    parser.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a knob (repeatable)",
    )
    parser.add_argument("--mix", type=float, default=1.0, help="wet/dry mix 0..1 (default 1)")
    parser.add_argument("--tail-seconds", type=float, default=None, help="extra seconds rendered after the end")
    parser.add_argument("--out", type=Path, required=True, help="folder for the rendered files")
    parser.add_argument("--recursive", action="store_true", help="also take audio files in subfolders")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument(
        "--ray-address",
        default=None,
        help="run on a Ray cluster instead of local processes ('auto', 'ray://host:10001', 'local')",
    )
    parser.set_defaults(run=run)


def parse_knobs(pairs: list[str]) -> dict[str, float]:
    """``["drive=0.5", "tone=0.2"]`` → ``{"drive": 0.5, "tone": 0.2}``; malformed pairs raise one clear line."""
    knobs: dict[str, float] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        try:
            if not equals or not name.strip():
                raise ValueError
            knobs[name.strip()] = float(value)
        except ValueError:
            raise ReaTimbreError(f"--knob expects NAME=VALUE with a number, got {pair!r}") from None
    return knobs


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.mix <= 1.0:
        raise ReaTimbreError(f"--mix must be within 0..1, got {args.mix}")
    if args.workers < 1:
        raise ReaTimbreError(f"--workers must be at least 1, got {args.workers}")
    settings = RenderSettings(args.effect, parse_knobs(args.knob), args.mix, args.tail_seconds)
    tasks = plan_tasks(collect_inputs(args.inputs, recursive=args.recursive), args.out, settings)
    done = 0

    def show(outcome: TaskOutcome) -> None:
        nonlocal done
        done += 1
        detail = {
            "rendered": f"-> {outcome.output_path} ({outcome.audio_seconds:.1f} s audio "
            f"in {outcome.elapsed_seconds:.1f} s)",
            "skipped": f"already rendered: {outcome.output_path}",
            "failed": f"FAILED: {outcome.error}",
        }[outcome.status]
        print(f"[{done}/{len(tasks)}] {Path(outcome.input_path).name} {detail}", flush=True)

    summary = run_batch(tasks, workers=args.workers, ray_address=args.ray_address, on_outcome=show)
    print(summary.report(), file=sys.stderr if summary.failures else sys.stdout, flush=True)
    return 1 if summary.failures else 0
