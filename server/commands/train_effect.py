"""``reatimbre train-effect``: train a shipped effect model (compressor, overdrive, reverb, and the pedal board:
fuzz, amp, octave, chorus, delay, filter) on real DSP."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from server.commands.options import (
    LazyChoices,
    add_threads,
    add_training_device,
    apply_threads,
    check_out_folder,
    training_device,
)

EXAMPLES = """examples:
  reatimbre train-effect --effect compressor           # writes models/weights/compressor.{safetensors,json}
  reatimbre train-effect --effect all --out DIR        # every shipped effect into DIR
  reatimbre train-effect --effect reverb --device cuda --bf16   # on a GPU: larger batches, bf16 forward passes
  reatimbre train-effect --effect fuzz --arch mccool-cnn --minutes 3   # the McCool paper's CNN as a baseline
"""


def effect_names() -> list[str]:
    """Every shipped effect, then ``all``."""
    from models.effects import REFERENCE_EFFECTS

    return [*REFERENCE_EFFECTS, "all"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from models.userdirs import SHIPPED_DIR

    parser = subparsers.add_parser(
        "train-effect",
        help="train a shipped effect model on generated material through its real DSP effect",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--effect", required=True, choices=LazyChoices(effect_names), metavar="EFFECT", help="%(choices)s"
    )
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR, help="output directory (default: models/weights)")
    parser.add_argument("--minutes", type=float, help="time budget per effect (default: the recipe's)")
    parser.add_argument("--steps", type=int, help="step budget per effect (default: the recipe's)")
    parser.add_argument("--clip-seconds", type=float, help="seconds of each training clip (default: the recipe's)")
    parser.add_argument(
        "--heldout-seconds",
        type=float,
        help="seconds of each held-out clip, before the effect's tail (default: the recipe's; pedals' judged clips 4)",
    )
    parser.add_argument("--seed", type=int, default=0)
    add_threads(parser)
    parser.add_argument("--resume", action="store_true", help="continue training the model already in --out")
    parser.add_argument(
        "--arch",
        choices=["ours", "tcn", "mccool-cnn", "mccool-lstm"],
        default="ours",
        help="pedal-board effects only: the recipe's network (ours, the default, the one that ships), our "
        "conditioned TCN or a McCool-paper baseline; all but ours are saved as EFFECT-ARCH",
    )
    add_training_device(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.device import announce
    from models.effect_training import RECIPES, train_effect
    from models.effects import PEDALS, REFERENCE_EFFECTS
    from models.errors import ReaTimbreError
    from models.fit import FitProgress, raise_if_interrupted
    from models.library import read_info
    from models.pedals.training import model_name_for, pedal_recipe, train_pedal

    check_out_folder(args.out)
    device = training_device(args)
    announce(device)
    apply_threads(args)
    names = list(REFERENCE_EFFECTS) if args.effect == "all" else [args.effect]
    command = _command(args)
    for name in names:
        recipe = pedal_recipe(name, args.arch) if name in PEDALS else RECIPES[name]
        if args.minutes is not None:
            recipe = replace(recipe, minutes=args.minutes)
        if args.steps is not None:
            recipe = replace(recipe, steps=args.steps)
        if args.clip_seconds is not None:
            recipe = replace(recipe, clip_seconds=args.clip_seconds)
        if args.heldout_seconds is not None:
            recipe = replace(recipe, heldout_seconds=args.heldout_seconds)
        resume = None
        if args.resume:
            saved_name = model_name_for(name, args.arch) if name in PEDALS else name
            sidecar = args.out / f"{saved_name}.json"
            if not sidecar.is_file():
                raise ReaTimbreError(f"--resume: no {saved_name} model in {args.out}")
            resume = read_info(sidecar, "shipped")

        def report(p: FitProgress, name: str = name) -> None:
            if p.step % 25 == 0:
                print(f"{name}: {p.summary()}", file=sys.stderr, flush=True)

        if name in PEDALS:
            if args.bf16:
                raise ReaTimbreError(f"{name}: --bf16 is not available for the pedal-board effects")
            info = train_pedal(
                name,
                args.out,
                arch=args.arch,
                recipe=recipe,
                seed=args.seed,
                command=command,
                progress=report,
                device=device,
                resume=resume,
                **({} if args.heldout_seconds is None else {"heldout_seconds": args.heldout_seconds}),
            )
            verdict = info.sidecar["metrics"]["heldout_other_origin"]["summary"]
            print(f"{name}: saved {info.weights_path}")
            print("  held-out (other origin): " + "  ".join(f"{k} {v}" for k, v in verdict.items()))
            raise_if_interrupted(info.sidecar["training"]["stopped_because"])  # saved; start no further effect
            continue
        if args.arch != "ours":
            raise ReaTimbreError(
                f"--arch {args.arch}: only the pedal-board effects ({', '.join(PEDALS)}) have baselines"
            )
        info = train_effect(
            name,
            args.out,
            recipe=recipe,
            seed=args.seed,
            command=command,
            progress=report,
            resume=resume,
            device=device,
            bf16=args.bf16,
        )
        held = info.sidecar["metrics"]["heldout"]
        print(f"{name}: saved {info.weights_path}")
        for who in ("model", "dry"):
            figures = "  ".join(f"{k} {v:.4f}" for k, v in held[who].items())
            print(f"  held-out {who:5s}: {figures}")
        raise_if_interrupted(info.sidecar["training"]["stopped_because"])  # saved; start no further effect
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run, for the sidecar."""
    from models.userdirs import SHIPPED_DIR

    parts = ["reatimbre", "train-effect", "--effect", args.effect]
    parts += [] if Path(args.out).resolve() == SHIPPED_DIR.resolve() else ["--out", str(args.out)]
    parts += [] if args.seed == 0 else ["--seed", str(args.seed)]
    for flag, value in (
        ("--minutes", args.minutes),
        ("--steps", args.steps),
        ("--clip-seconds", args.clip_seconds),
        ("--heldout-seconds", args.heldout_seconds),
        ("--threads", args.threads),
    ):
        if value is not None:
            parts += [flag, str(value)]
    parts += ["--resume"] if args.resume else []
    parts += ["--arch", args.arch] if args.arch != "ours" else []
    parts += ["--device", args.device] if args.device else []
    parts += ["--bf16"] if args.bf16 else []
    return shlex.join(parts)
