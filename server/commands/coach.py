"""``reatimbre coach``: suggest effect steps that move a synth patch towards a target sound (SerumRNN)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
    parser.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="where the target's note starts")
    parser.add_argument("--note", type=int, default=48, help="MIDI note the patch plays (default 48, the paper's C4)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the coach JSON (REAPER bridge format) here")
    parser.add_argument("--report", type=Path, metavar="DIR", help="new folder for the progression PNG and step audio")
    parser.add_argument("--save-patch", type=Path, metavar="FILE", help="save the suggested patch (.vital) here")
    parser.add_argument("--models", type=Path, metavar="DIR", help="coach weights folder (default: the shipped ones)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json or --save-patch file")
    add_threads(parser)
    parser.set_defaults(run=run)


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads``: torch's CPU threads while coaching (default 1)."""
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the coach's models are small, and torch's idle threads spin-wait on "
        "the cores Vital renders on; with 2 on a 2-core machine a 5-step suggestion took 622 ms, with 1 261 ms)",
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's thread count from ``--threads`` (None leaves torch's default)."""
    import torch

    from models.errors import ReaTimbreError

    if args.threads is None:
        return
    if args.threads < 1:
        raise ReaTimbreError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)


def coach_target_file(
    target: Path,
    preset: str | None = None,
    patch: Path | None = None,
    max_steps: int = 5,
    start_seconds: float = 0.0,
    note: int = 48,
    models_dir: Path | None = None,
    should_cancel: Callable[[], bool] | None = None,
):
    """Run the coach on a target file; returns (result, synth holding the suggested patch, coach JSON).

    ``should_cancel`` is polled between stages and before every synth render; once true the coach stops with a
    "cancelled" :class:`ReaTimbreError`.
    """
    from models.audio_io import read_audio
    from models.coach.start import start_synth
    from models.coach.store import load_coach
    from models.coach.suggest import coach_json, run_coach
    from models.coach.target import target_clip
    from models.errors import ReaTimbreError

    if not 0 <= note <= 127:
        raise ReaTimbreError(f"--note must be a MIDI note 0..127, got {note}")

    def check_cancel() -> None:
        if should_cancel is not None and should_cancel():
            raise ReaTimbreError("cancelled")

    audio, rate = read_audio(target)
    clip = target_clip(audio, rate, start_seconds)
    check_cancel()
    models = load_coach(models_dir)
    check_cancel()
    synth = start_synth(preset, patch)
    if should_cancel is not None:
        synth.render = _cancellable(synth.render, check_cancel)
    check_cancel()
    result = run_coach(models, synth, clip, note=note, max_steps=max_steps)
    context: dict[str, Any] = {"target": str(target), "start_seconds": start_seconds}
    context["preset" if preset else "patch"] = preset or str(patch)
    return result, synth, coach_json(result, **context)


def _cancellable(render: Callable[..., Any], check_cancel: Callable[[], None]) -> Callable[..., Any]:
    """``render`` that first raises if the job was cancelled (the coach renders several times per step)."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        check_cancel()
        return render(*args, **kwargs)

    return checked


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
    from models.errors import ReaTimbreError
    from models.synth import presets as preset_data
    from models.synth.base import write_atomic

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
    print_result(result)
    if args.json is not None:
        write_atomic(args.json, json.dumps(body, indent=1).encode("utf-8"))
        print(f"coach JSON: {args.json}")
    if args.save_patch is not None:
        synth.save_patch(args.save_patch, overwrite=args.overwrite)
        print(f"suggested patch: {args.save_patch}")
    if args.report is not None:
        from models.coach.report import write_report

        files = write_report(result, args.report)
        print(f"report: {len(files)} files in {args.report} (progression.png, step audio)")
    return 0
