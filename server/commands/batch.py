"""``reatimbre batch``: render many files through one effect, resuming where an earlier run stopped.

Three modes: audio files/folders/globs → rendered files in ``--out``; one ``.rpp`` project → a new project
with rendered takes; ``--reapy`` → the selected items of a running REAPER get rendered takes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from models.device import add_device_argument
from models.errors import ReaTimbreError
from models.knobs import parse_knob_assignments
from server.batch import FILES_PER_CUDA_PASS, RenderSettings, TaskOutcome, collect_inputs, plan_tasks, run_batch

REAPER_EXECUTABLE_ENV = "REATIMBRE_REAPER"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="render many audio files, an .RPP project's items, or REAPER's selected items through one effect",
        description="Render audio files (folders, files, glob patterns) into --out; or one .rpp project into a "
        "new project with rendered takes; or, with --reapy, the selected items of a running REAPER. Renders "
        "that exist are skipped, so re-running an interrupted batch resumes it; nothing is overwritten. A "
        "summary at the end lists the failures (exit status 1 if there were any).",
    )
    parser.add_argument("inputs", nargs="*", help="audio files, folders or glob patterns (quoted), or one .rpp")
    parser.add_argument("--effect", required=True, help="effect (model) name; see `reatimbre models`")
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE", help="set a knob (repeatable)")
    parser.add_argument("--mix", type=float, default=1.0, help="wet/dry mix 0..1 (default 1)")
    parser.add_argument("--tail-seconds", type=float, default=None, help="extra seconds rendered after the end")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the renders (projects: default <project folder>/ReaTimbre)"
    )
    parser.add_argument("--recursive", action="store_true", help="also take audio files in subfolders")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    add_device_argument(parser)
    parser.add_argument(
        "--ray-address",
        default=None,
        help="run on a Ray cluster instead of local processes ('auto', 'ray://host:10001', 'local')",
    )
    project = parser.add_argument_group(".rpp projects")
    project.add_argument("--tracks", default=None, help="only items on these tracks (1-based, e.g. 1,3)")
    project.add_argument("--items", default=None, help="only these items, TRACK:ITEM (1-based, e.g. 1:2,3:1)")
    project.add_argument("--selected", action="store_true", help="only the items saved as selected")
    project.add_argument("--out-project", type=Path, default=None, help="new project file (default NAME-reatimbre.rpp)")
    project.add_argument(
        "--reaper-render",
        action="store_true",
        help=f"then render the new project with REAPER's command line (--reaper or ${REAPER_EXECUTABLE_ENV})",
    )
    project.add_argument("--reaper", type=Path, default=None, help="the REAPER executable for --reaper-render")
    parser.add_argument(
        "--reapy", action="store_true", help="render the selected items of the running REAPER (through reapy)"
    )
    parser.set_defaults(run=run)


def parse_tracks(text: str | None) -> list[int] | None:
    """``"1,3"`` (1-based, as REAPER numbers tracks) → ``[0, 2]``."""
    if text is None:
        return None
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ReaTimbreError(f"--tracks expects numbers like 1,3, got {text!r}") from None
    if not numbers or min(numbers) < 1:
        raise ReaTimbreError(f"--tracks expects track numbers from 1, got {text!r}")
    return [number - 1 for number in numbers]


def parse_items(text: str | None) -> list[tuple[int, int]] | None:
    """``"1:2,3:1"`` (track:item, 1-based as REAPER shows them) → ``[(0, 1), (2, 0)]``."""
    if text is None:
        return None
    pairs = []
    for part in (piece.strip() for piece in text.split(",")):
        track, colon, item = part.partition(":")
        if (
            not colon
            or not track.strip().isdigit()
            or not item.strip().isdigit()
            or "0" in (track.strip(), item.strip())
        ):
            raise ReaTimbreError(f"--items expects TRACK:ITEM numbers from 1, like 1:2,3:1; got {text!r}")
        pairs.append((int(track) - 1, int(item) - 1))
    return pairs


class _Progress:
    """Prints one line per finished file."""

    def __init__(self, total: int | None = None) -> None:
        self.done = 0
        self.total = total

    def __call__(self, outcome: TaskOutcome) -> None:
        self.done += 1
        detail = {
            "rendered": f"-> {outcome.output_path} ({outcome.audio_seconds:.1f} s audio "
            f"in {outcome.elapsed_seconds:.1f} s)",
            "skipped": f"already rendered: {outcome.output_path}",
            "failed": f"FAILED: {outcome.error}",
        }[outcome.status]
        count = f"{self.done}/{self.total}" if self.total else str(self.done)
        print(f"[{count}] {Path(outcome.input_path).name} {detail}", flush=True)


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.mix <= 1.0:
        raise ReaTimbreError(f"--mix must be within 0..1, got {args.mix}")
    if args.workers < 1:
        raise ReaTimbreError(f"--workers must be at least 1, got {args.workers}")
    from models.device import resolve_device

    device = resolve_device(args.device)
    settings = RenderSettings(
        args.effect, parse_knob_assignments(args.knob), args.mix, args.tail_seconds, str(device.device)
    )
    projects = [text for text in args.inputs if text.lower().endswith(".rpp")]
    if args.reapy:
        if args.inputs:
            raise ReaTimbreError("--reapy renders REAPER's selected items; give no input files with it")
        return _run_reapy(args, settings)
    if projects:
        if len(args.inputs) != 1:
            raise ReaTimbreError("give one .rpp project at a time (and no other inputs with it)")
        return _run_project(args, settings, Path(projects[0]))
    if not args.inputs:
        raise ReaTimbreError("give audio files, folders or glob patterns, one .rpp project, or --reapy")
    if args.out is None:
        raise ReaTimbreError("--out is required: the folder for the rendered files")
    tasks = plan_tasks(collect_inputs(args.inputs, recursive=args.recursive), args.out, settings)
    _say_device(args, settings)
    print(f"{len(tasks)} files to render through {settings.effect}", flush=True)
    summary = run_batch(tasks, workers=args.workers, ray_address=args.ray_address, on_outcome=_Progress(len(tasks)))
    print(summary.report(), file=sys.stderr if summary.failures else sys.stdout, flush=True)
    return 1 if summary.failures else 0


def _say_device(args: argparse.Namespace, settings: RenderSettings) -> None:
    """One line on stderr: the device the renders run on (and files per pass on CUDA), once the inputs are checked."""
    from models.device import resolve_device

    line = resolve_device(args.device).describe()
    if settings.device.startswith("cuda") and args.workers == 1 and args.ray_address is None:
        line += f", {FILES_PER_CUDA_PASS} files per model pass"
    print(line, file=sys.stderr, flush=True)


def _run_project(args: argparse.Namespace, settings: RenderSettings, project: Path) -> int:
    from server.batch_reaper import render_project

    reaper = args.reaper or (Path(os.environ[REAPER_EXECUTABLE_ENV]) if os.environ.get(REAPER_EXECUTABLE_ENV) else None)
    if args.reaper_render and reaper is None:
        raise ReaTimbreError(f"--reaper-render needs the REAPER executable: --reaper PATH or ${REAPER_EXECUTABLE_ENV}")
    _say_device(args, settings)
    result = render_project(
        project,
        settings,
        tracks=parse_tracks(args.tracks),
        items=parse_items(args.items),
        selected_only=args.selected,
        out_project=args.out_project,
        media_dir=args.out,
        workers=args.workers,
        ray_address=args.ray_address,
        reaper_executable=reaper if args.reaper_render else None,
        on_outcome=_Progress(),
    )
    failed = bool(result.summary.failures)
    print(result.report(), file=sys.stderr if failed else sys.stdout, flush=True)
    return 1 if failed else 0


def _run_reapy(args: argparse.Namespace, settings: RenderSettings) -> int:
    from extension.reapy_client import reapy_connection
    from server.auth import load_or_create_token
    from server.batch_reaper import reaper_media_dir, render_reaper_selection

    with contextlib.ExitStack() as stack:
        try:  # the hardened reapy server that <config dir>/reapy.json names, with the server's token
            api = stack.enter_context(reapy_connection(load_or_create_token()))
        except ReaTimbreError as exc:
            raise ReaTimbreError(f"REAPER is not reachable through reapy: {exc}") from None
        media_dir = args.out if args.out is not None else reaper_media_dir(api)
        _say_device(args, settings)
        result = render_reaper_selection(
            api, settings, media_dir, workers=args.workers, ray_address=args.ray_address, on_outcome=_Progress()
        )
    failed = bool(result.summary.failures)
    print(result.report(), file=sys.stderr if failed else sys.stdout, flush=True)
    return 1 if failed else 0
