"""``reatimbre steer``: train a new neural effect from a dry recording and the same recording through an effect."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from server.commands.options import add_training_device, training_device


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "steer",
        help="steer a new neural effect from a dry/wet pair of recordings",
        description=(
            "Train a new neural effect from DRY and WET (the same recording through the effect you want) and save "
            "it to your model library as NAME; then use it with `reatimbre render --effect NAME`. Its two knobs, "
            "c1 and c2 (-5..5, 0 = the steered effect), vary it: see `reatimbre explore NAME`. Ctrl-C stops early "
            "and keeps the best model so far."
        ),
    )
    parser.add_argument("dry", type=Path, metavar="DRY", help="the dry recording")
    parser.add_argument("wet", type=Path, metavar="WET", help="the same recording through the effect")
    parser.add_argument("--name", required=True, help="name of the new effect (letters, digits, '-', '_')")
    parser.add_argument(
        "--memory",
        choices=["short", "long", "reverb", "auto"],
        default="auto",
        help="how far back the effect looks: short (~200 ms: dynamics, distortion), long (~2 s: delay), reverb (a "
        "4.5 s decaying tail); auto decides from the wet's tail and impulse response (default)",
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="training time budget (default 3)")
    parser.add_argument(
        "--keep-latency", action="store_true", help="keep the offset between dry and wet (it is part of the effect)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace your own effect of the same name")
    add_training_device(parser)
    parser.add_argument(
        "--keep-anyway",
        action="store_true",
        help="save the model even when its held-out error is not clearly below the dry input's (below 0.9 of it); "
        "without this such a model is not saved and the command exits with status 1",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the result")
    # afx helper (issue 28): steer one of the thesis's architectures instead of the TCN (models/afx/steer_afx.py)
    parser.add_argument(
        "--arch",
        choices=["tcn", "ceq", "cafx", "wavenet", "crafx", "cwafx", "csafx"],
        default="tcn",
        help="the network to steer: our TCN (default) or one of the thesis's architectures (docs/afx.md)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.fit import FitProgress
    from models.steer import steer_model

    device = training_device(args)  # a bad --device (or --bf16 off CUDA) fails before the pair is read

    def report(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    last_print = [-1.0]

    def progress(p: FitProgress) -> None:
        if args.quiet or p.elapsed_seconds - last_print[0] < 5.0:
            return
        last_print[0] = p.elapsed_seconds
        print(p.summary(), file=sys.stderr, flush=True)

    if args.arch != "tcn":  # afx helper (issue 28): the thesis's architectures are steered by models.afx
        from models.afx.steer_afx import steer_afx

        result = steer_afx(
            args.dry, args.wet, args.name, args.arch, args.minutes, progress=progress, report=report,
            keep_latency=args.keep_latency, overwrite=args.overwrite, device=device.device,
            keep_anyway=args.keep_anyway,
        )  # fmt: skip
    else:
        result = steer_model(
            args.dry,
            args.wet,
            args.name,
            memory=args.memory,
            minutes=args.minutes,
            progress=progress,
            report=report,
            keep_latency=args.keep_latency,
            overwrite=args.overwrite,
            device=device,
            bf16=args.bf16,
            keep_anyway=args.keep_anyway,
        )
    if not result["saved"]:
        print(
            f"{result['model']}: not saved. {result['message']} (--keep-anyway saves it all the same)",
            file=sys.stderr,
        )
        return 1
    print(
        f"{result['model']}: saved {result['path']}\n"
        f"  held-out MR-STFT {result['heldout_mrstft']:.4f} (dry input {result['heldout_dry_mrstft']:.4f}); "
        f"memory {result['memory']}, offset removed {result['latency_seconds'] * 1000:.1f} ms; "
        f"{result['steps']} steps in {result['seconds']:.0f} s, stopped on {result['stopped_because']}\n"
        f"  try: reatimbre render IN --effect {result['model']} --knob c1=2 --knob c2=-1"
    )
    if result["worse_than_dry"]:
        print(f"  warning, kept anyway: {result['message']}")
    return 0
