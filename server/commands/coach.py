"""``reatimbre coach``: suggest effect steps that move a synth patch towards a target sound (SerumRNN)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from server.commands.options import COACH_THREADS_HELP, add_threads, apply_threads


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coach",
        help="suggest effect steps, one at a time, that bring a synth patch closer to a target sound",
        description="Render the current patch (a shipped preset or your .vital file), then step by step pick the "
        "next effect with the next-effect RNN, predict its settings with that effect's CNN, apply them, re-render "
        "and measure, up to --max-steps steps; suggest the steps up to the closest sound reached (later ones stopped "
        "helping and are undone). Prints each step in Vital's own words with the distance to the target before and "
        "after.",
    )
    parser.add_argument("--target", type=Path, help="target audio file (any rate, channels, length); required to coach")
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--preset", help="shipped preset to start from (see `reatimbre coach --list-presets`)")
    start.add_argument("--patch", type=Path, help="patch file as the synth saves it (Vital: .vital JSON)")
    start.add_argument("--list-presets", action="store_true", help="list the shipped presets and exit")
    parser.add_argument("--max-steps", type=int, default=5, help="at most this many steps (1..5, default 5)")
    parser.add_argument(
        "--start",
        type=float,
        metavar="SECONDS",
        help="where the target's note starts (default: the onset of its main note, found in the audio)",
    )
    parser.add_argument(
        "--note",
        type=int,
        help="MIDI note the patch plays (default: the note heard in the target; 48 = C3 when it has no clear pitch)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the coach JSON (REAPER bridge format) here")
    parser.add_argument("--report", type=Path, metavar="DIR", help="new folder for the progression PNG and step audio")
    parser.add_argument("--save-patch", type=Path, metavar="FILE", help="save the suggested patch (.vital) here")
    parser.add_argument("--models", type=Path, metavar="DIR", help="coach weights folder (default: the shipped ones)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json or --save-patch file")
    add_threads(parser, default=1, help=COACH_THREADS_HELP)
    parser.set_defaults(run=run)


def _metric_text(metrics: dict[str, float]) -> str:
    return (
        f"MSE×100 {100 * metrics['mse']:.2f}  MAE×100 {100 * metrics['mae']:.2f}  "
        f"LSD {metrics['lsd_db']:.2f} dB  MFCCD {metrics['mfcc_distance']:.1f}"
    )


def print_result(result) -> None:
    """Each step in the synth's words with the distance before and after."""
    print(f"start: {_metric_text(result.initial.metrics)}")
    if result.already_on:
        print(f"  (already on in the patch, left as they are: {', '.join(result.already_on)})")
    for step in result.steps:
        before, after = step.before["mse"], step.after.metrics["mse"]
        print(f"step {step.number}: {step.description}")
        note = "" if step.kept else "  (not closer on its own; a later step more than makes up for it)"
        print(f"        MSE×100 {100 * before:.2f} -> {100 * after:.2f}{note}")
    if result.rejected is not None:
        r = result.rejected
        print(f"not suggested: {r.description} (MSE×100 would be {100 * r.after.metrics['mse']:.2f})")
    print(f"stopped: {result.stopped_because}")
    print(f"{result.message} ({1000 * result.seconds:.0f} ms)")


def run(args: argparse.Namespace) -> int:
    from models.atomic_files import write_bytes
    from models.coach.pipeline import coach_target_file
    from models.errors import ReaTimbreError
    from models.synth import presets as preset_data

    if args.list_presets:
        for group, names in preset_data.preset_groups().items():
            print(f"{group}: {', '.join(names)}")
        return 0
    if args.target is None:
        raise ReaTimbreError("--target is required (the sound to move the patch towards)")
    apply_threads(args)
    for path in (args.json, args.save_patch):
        if path is not None and path.exists() and not args.overwrite:
            raise ReaTimbreError(f"{path} already exists (use --overwrite to replace it)")
        if path is not None and not path.parent.is_dir():
            raise ReaTimbreError(f"{path.parent}: output folder does not exist")
    if args.report is not None:
        from models.coach.report import prepare_report_dir

        prepare_report_dir(args.report)
    result, synth, body = coach_target_file(
        args.target, args.preset, args.patch, args.max_steps, args.start, args.note, args.models
    )
    print(body["target_note"]["message"])
    print_result(result)
    if args.json is not None:
        write_bytes(args.json, json.dumps(body, indent=1).encode("utf-8"), make_parents=True)
        print(f"coach JSON: {args.json}")
    if args.save_patch is not None:
        synth.save_patch(args.save_patch, overwrite=args.overwrite)
        print(f"suggested patch: {args.save_patch}")
    if args.report is not None:
        from models.coach.report import write_report

        files = write_report(result, args.report)
        print(f"report: {len(files)} files in {args.report} (progression.png, step audio)")
    return 0
