"""``reatimbre match``: the closest patch on each synth for a target sound, ranked, written as patch files."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

from models.asp.time_budget import DEFAULT_SECONDS_PER_SYNTH
from server.commands.match_data import SYNTH_CHOICES


def _note(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--note takes auto or a MIDI note number, got {text!r}") from None


def seconds_per_synth(text: str) -> float | None:
    """``--seconds-per-synth``: a time budget above 0 and at most 60 s, or ``none`` (None: no limit)."""
    if text == "none":
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seconds-per-synth takes seconds or none, got {text!r}") from None
    if not 0.0 < seconds <= 60.0:
        raise argparse.ArgumentTypeError(f"--seconds-per-synth takes more than 0 and at most 60 s, or none; got {text}")
    return seconds


def refine_renders(text: str) -> int | None:
    """``--refine``: ``auto`` (None: each synth's own default) or a number of renders, 0 to 2000."""
    if text == "auto":
        return None
    try:
        renders = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--refine takes auto or a number of renders, got {text!r}") from None
    if not 0 <= renders <= 2000:  # models.asp.refine.MAX_REFINE_RENDERS
        raise argparse.ArgumentTypeError(f"--refine takes 0 to 2000 renders, got {renders}")
    return renders


REFINE_HELP = (
    "renders spent refining each synth's patch by ear after the guesses: small changes kept when they render "
    "closer, most where the guesses disagree (default auto: each synth's own, Dexed 300, amsynth 60, Vital 6, "
    "Kars 0, as many as --seconds-per-synth leaves time for; 0: off)"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "match",
        help="infer the closest patch on each synth for a target sound; rank the synths; write the patches",
        description="Detect the target's note, infer a patch per synth with the multi-task VAE, render each at "
        "that note, rank the synths by log-spectral distance to the target, and write each patch in the synth's "
        "own format (.vital, an amsynth bank, a plug-in patch JSON).",
    )
    parser.add_argument("target", type=Path, help="target audio file")
    parser.add_argument("--synth", nargs="+", choices=(*SYNTH_CHOICES, "all"), default=["all"], help="default all")
    parser.add_argument("--note", type=_note, default=None, metavar="auto|N", help="MIDI note (default auto: detect)")
    parser.add_argument("--out", type=Path, default=Path("matched"), help="folder for the patches (default matched)")
    parser.add_argument("--models", type=Path, default=None, metavar="DIR", help="weights (default: the shipped)")
    parser.add_argument("--variant", default="joint_encoder", choices=("separate", "joint_encoder", "joint_decoder"))
    parser.add_argument(
        "--candidates",
        type=int,
        default=12,  # models.asp.infer.DEFAULT_CANDIDATES (not imported here: torch would load with the parser)
        metavar="N",
        help="guesses rendered per synth, the closest kept: the model's best guess and N-1 drawn from its "
        "uncertainty (default 12; 1: the best guess only)",
    )
    parser.add_argument("--refine", type=refine_renders, default=None, metavar="auto|N", help=REFINE_HELP)
    parser.add_argument(
        "--seconds-per-synth",
        type=seconds_per_synth,
        default=DEFAULT_SECONDS_PER_SYNTH,
        metavar="S|none",
        help="answer each synth within S seconds: its further guesses and refinement stop when one more render "
        "would not end in time (default 1; none: every guess and refinement render, the same answer on every "
        "machine, up to about 1.5 s per synth on a 2-core EPYC)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the ranking as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace existing patch files")
    parser.add_argument(
        "--then-coach",
        action="store_true",
        help="hand the Vital patch to `reatimbre coach` with the target, at the note it was matched at",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from models.asp.infer import MAX_CANDIDATES, match_target, prepare_target, summary
    from models.asp.store import load_model
    from models.atomic_files import write_bytes
    from models.audio_io import read_audio
    from models.errors import ReaTimbreError

    torch.set_num_threads(1)
    if not 1 <= args.candidates <= MAX_CANDIDATES:
        raise ReaTimbreError(f"--candidates must be 1..{MAX_CANDIDATES}, got {args.candidates}")
    audio, rate = read_audio(args.target)
    model, _sidecar = load_model(args.models, args.variant)
    synths = None if "all" in args.synth else list(dict.fromkeys(args.synth))
    if args.then_coach and synths is not None and "vital" not in synths:
        raise ReaTimbreError("--then-coach needs Vital among --synth")
    destinations = patch_destinations(args.out, args.target.stem, synths or list(model.architecture.synths))
    check_destinations(args.out, destinations.values(), args.overwrite, args.json)
    target = prepare_target(audio, rate, args.note)
    results = match_target(
        model,
        target,
        synths,
        name=args.target.stem,
        candidates=args.candidates,
        refine=args.refine,
        seconds_per_synth=args.seconds_per_synth,
    )
    heard = f"detected {target.estimate.kind}" if target.estimate is not None else "given"
    print(f"match {args.target.name}: note {target.note} ({heard})")
    write_patches({destinations[result.synth]: result.patch_bytes for result in results}, args.overwrite)
    for rank, result in enumerate(results, start=1):
        path = destinations[result.synth]
        timing = f"{result.seconds - result.load_seconds:.2f} s"
        if result.load_seconds >= 0.005:
            timing += f" + {result.load_seconds:.2f} s loading {result.synth}"
        timing += f", {result.cpu_seconds:.2f} s CPU"
        if result.cut_short:
            timing += f", cut short at {result.renders} renders"
        octave = "" if result.note == target.note else f" at note {result.note}"
        far = "  far: a rough start, expect a different sound" if result.far else ""
        print(f"  {rank}. {result.synth:8s} LSD {result.lsd_db:6.2f} dB{octave}  ({timing})  {path}{far}")
    if args.json:
        body = summary(results, target)
        for entry in body["ranking"]:
            entry["patch"] = str(destinations[entry["synth"]])
        write_bytes(args.json, json.dumps(body, indent=1).encode("utf-8"), make_parents=True)
    if args.then_coach:
        from server.cli import main as cli_main

        # The coach plays the patch at the note it was matched at (its own pitch check of the patch would move a
        # fifths stack, heard an octave low, an octave away from what match measured closest).
        vital = next(result for result in results if result.synth == "vital")
        patch = str(destinations["vital"])
        coach = ["coach", "--target", str(args.target), "--patch", patch, "--note", str(vital.note)]
        return cli_main(coach)
    return 0


def patch_destinations(out_dir: Path, stem: str, synths: list[str]) -> dict[str, Path]:
    """Where each synth's patch goes: ``<out_dir>/<stem>-<synth><its suffix>``."""
    from models.synth.match_synths import PATCH_SUFFIXES

    return {synth: out_dir / f"{stem}-{synth}{PATCH_SUFFIXES[synth]}" for synth in synths}


def check_destinations(out_dir: Path, patches: Iterable[Path], overwrite: bool, json_path: Path | None) -> None:
    """Refuse, before any matching, an output folder that is a file and patches that exist (unless
    ``overwrite``) or are not files; and a ``--json`` path that is a folder."""
    from models.errors import ReaTimbreError
    from models.oserrors import shown

    if out_dir.exists() and not out_dir.is_dir():
        raise ReaTimbreError(f"--out {shown(out_dir)}: is a file, not a folder")
    for path in patches:
        if path.exists() and not path.is_file():
            raise ReaTimbreError(f"{shown(path)}: is in the way (not a regular file); nothing was written")
        if path.exists() and not overwrite:
            raise ReaTimbreError(f"{shown(path)} already exists; pass --overwrite to replace it")
    if json_path is not None and json_path.is_dir():
        raise ReaTimbreError(f"--json {shown(json_path)}: is a folder, not a file")


def write_patches(patches: dict[Path, bytes], overwrite: bool) -> None:
    """Write every patch atomically, or none: a failure removes the ones this call created, then says why in one
    line."""
    from models.atomic_files import write_bytes
    from models.errors import ReaTimbreError
    from models.oserrors import describe_os_error, shown

    created: list[Path] = []
    for path, data in patches.items():
        existed = path.exists()
        if existed and not overwrite:  # appeared while matching
            _remove(created)
            raise ReaTimbreError(f"{shown(path)} already exists; pass --overwrite to replace it; nothing was written")
        try:
            write_bytes(path, data, make_parents=True)
        except OSError as exc:
            _remove(created)
            raise ReaTimbreError(
                f"cannot write {shown(path)}: {describe_os_error(exc)}; the new patch files of this match were removed"
            ) from None
        if not existed:
            created.append(path)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
