"""``reatimbre explore``: show what an effect's two knobs do, as loudness (and reverb decay) heatmaps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explore",
        help="map what an effect's knobs do: loudness (and T60 for reverbs) over a knob grid",
        description=(
            "Render IN (its first 10 s, mixed to mono) through effect NAME on a grid of its two knobs (c1, c2 over "
            "-5..5 for a steered effect) and write a heatmap PNG of the loudness in LUFS and, for a reverb-like "
            "effect, of the decay time T60 of an impulse, plus a JSON with the numbers. With --compare-real, the "
            "same grid rendered through the real effect the model's sidecar says it emulates is drawn beside the "
            "model's map, with a third panel of their difference."
        ),
    )
    parser.add_argument("name", metavar="NAME", help="effect name (see `reatimbre models`)")
    parser.add_argument("--input", required=True, type=Path, metavar="IN", help="audio file to render")
    parser.add_argument("--grid", type=int, default=9, help="points per knob (2..21, default 9)")
    parser.add_argument(
        "--out", type=Path, metavar="PREFIX", help="write PREFIX.png and PREFIX.json (default: NAME-explore)"
    )
    parser.add_argument(
        "--compare-real",
        action="store_true",
        help="also render the grid through the real effect the model emulates (from its sidecar) and compare",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.audio_io import check_output_path
    from models.explore import explore, plot, write_json

    prefix = args.out or Path(f"{args.name}-explore")
    png, json_path = prefix.with_name(prefix.name + ".png"), prefix.with_name(prefix.name + ".json")
    for path in (png, json_path):
        check_output_path(path, [args.input], overwrite=args.overwrite)

    def progress(fraction: float) -> None:
        print(f"\rexplore {args.name}: {fraction:4.0%}", end="", file=sys.stderr, flush=True)

    result = explore(args.name, args.input, args.grid, compare_real=args.compare_real, progress=progress)
    print(file=sys.stderr)
    plot(result, png)
    write_json(result, json_path)
    loudness = [v for line in result["loudness_lufs"] for v in line]
    line = f"{png}, {json_path}: loudness {min(loudness):.1f} .. {max(loudness):.1f} LUFS"
    if result["t60_seconds"] is not None:
        decays = [v for row in result["t60_seconds"] for v in row if v is not None]
        line += f", T60 {min(decays):.2f} .. {max(decays):.2f} s" if decays else ", T60 not measurable"
    if "agreement" in result:
        found = result["agreement"]
        line += f"; against the real effect: loudness within {found['loudness_max_error_lu']:.2f} LU"
        if found["t60_points"]:
            worst = found["t60_max_relative_error"]
            line += ", T60 within " + (f"{worst:.0%}" if worst is not None else "(none measured)")
            if found["t60_model_unmeasured"]:
                line += f" ({found['t60_model_unmeasured']} model points not measurable)"
    print(line)
    return 0
