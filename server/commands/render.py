"""``reatimbre render``: render an audio file through a neural effect."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.device import add_device_argument
from models.knobs import parse_knob_assignments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render an audio file through a neural effect",
        description="Render IN through a neural effect into a new file. The input is never modified.",
    )
    parser.add_argument("input", type=Path, metavar="IN", help="audio file (any sample rate and channel count)")
    parser.add_argument("-o", "--output", type=Path, metavar="OUT", help="output file (default: IN-EFFECT.ext)")
    parser.add_argument("--effect", required=True, metavar="NAME", help="model name (see `reatimbre models`)")
    parser.add_argument(
        "--knob", action="append", metavar="NAME=VALUE", help="set a knob, in its own unit (repeatable)"
    )
    parser.add_argument("--mix", type=float, default=1.0, help="dry/wet mix, 0 (dry) .. 1 (wet); default 1")
    parser.add_argument(
        "--tail", type=float, metavar="SECONDS", help="render this much past the end (default: model's)"
    )
    parser.add_argument("--subtype", help="output sample format, e.g. PCM_16, PCM_24, FLOAT (default: the input's)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (never the input)")
    add_device_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from models.device import announce, resolve_device
    from models.library import find_model
    from models.render import render_file

    knobs = parse_knob_assignments(args.knob)
    device = resolve_device(args.device)
    bar = None

    def progress(fraction: float) -> None:
        # Created on the first report, i.e. only once the inputs were checked and rendering started.
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            announce(device)  # once the inputs are checked: an error stays one line
            bar = tqdm(
                total=100,
                desc=f"render {args.effect}",
                file=sys.stderr,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
            )
        bar.update(round(fraction * 100) - bar.n)

    try:
        result = render_file(
            args.input,
            args.output,
            args.effect,
            knobs,
            args.mix,
            args.tail,
            subtype=args.subtype,
            overwrite=args.overwrite,
            progress=progress,
            device=device.device,
        )
    finally:
        if bar is not None:
            bar.close()
    for warning in find_model(args.effect).quality_warnings:  # after the render (an input error stays one line),
        print(f"warning: {warning}", file=sys.stderr)  # and even with --quiet: a model below its goals says so
    if not args.quiet:
        knob_text = ", ".join(f"{k}={v:g}" for k, v in result.knobs.items())
        print(
            f"{result.output_path}: {args.effect} ({knob_text}), mix {result.mix:g}, "
            f"{result.duration_seconds:.2f} s at {result.sample_rate} Hz x {result.channels} ch "
            f"({result.format}/{result.subtype}), {result.realtime_factor:.1f}x real time"
        )
        if result.clipped_samples:
            print(
                f"warning: {result.clipped_samples} samples clipped (peak {result.peak:.2f}); "
                "use --subtype FLOAT to keep them",
                file=sys.stderr,
            )
    return 0
