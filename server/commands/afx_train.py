"""``reatimbre afx-train``: train one of the thesis's architectures (or one of ours) on one afx task."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
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
  reatimbre afx-train --arch crafx --task leslie --minutes 20        # a user model "crafx-leslie", speed knob
  reatimbre afx-train --arch csafx --task plate --minutes 30 --name plate-csafx
  reatimbre afx-train --arch ceq --task eq-peak --minutes 2 --seconds 30 --out /tmp/afx
  reatimbre afx-train --arch rotors --task leslie --minutes 12 --name leslie --out models/weights   # as shipped
  reatimbre afx-train --arch crafx --task leslie --minutes 15 --clocks --loss mae+mrstft   # told the rotors' phases
  (tcn: our conditioned TCN; lfo-tcn and rotors, Leslie tasks only: our TCN and a gray-box told the rotors' phases)
tasks: see docs/afx.md (eq-shelf, eq-peak, eq-lowpass, eq-highpass, sox-*, chorus ... ringmod[+od], leslie*,
plate, plate-1s, spring)
"""


def architecture_names() -> list[str]:
    """The thesis's architectures, then ours."""
    from models.afx import ARCHITECTURES
    from models.afx.experiment import OURS

    return [*ARCHITECTURES, *OURS]


def task_names() -> list[str]:
    from models.afx.tasks import TASKS

    return list(TASKS)


def loss_names() -> list[str]:
    from models.afx.losses import LOSSES

    return list(LOSSES)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "afx-train",
        help="train a thesis architecture (CEQ ... CSAFx) or one of ours on an afx task, into the model library",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--arch", required=True, choices=LazyChoices(architecture_names), metavar="ARCH", help="%(choices)s"
    )
    parser.add_argument("--task", required=True, choices=LazyChoices(task_names), metavar="TASK")
    parser.add_argument("--minutes", type=float, default=10.0, help="time box of the end-to-end training (10)")
    parser.add_argument(
        "--steps", type=int, default=1_000_000, help="step budget of the end-to-end training (ends at it or --minutes)"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="training material per knob value (60)")
    parser.add_argument("--heldout-seconds", type=float, default=20.0, help="held-out material per knob value")
    parser.add_argument("--name", help="model name (default ARCH-TASK)")
    parser.add_argument("--out", type=Path, help="model folder (default: the user model library)")
    parser.add_argument("--settings", default="{}", help="JSON object of architecture settings over the thesis's")
    parser.add_argument("--pretrain-steps", type=int, default=200, help="front-end pretraining steps (frame models)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clocks",
        action="store_true",
        help="tell crafx, cwafx and csafx the task's LFO clock phases (tasks that declare them: the leslie ones)",
    )
    parser.add_argument(
        "--loss",
        choices=LazyChoices(loss_names),
        metavar="LOSS",
        help="%(choices)s: the training loss of a thesis architecture (default: its own, Eq. 4.9 for ceq, Eq. 8.6 "
        "for csafx, else mae)",
    )
    add_threads(parser, default=1, help="torch CPU threads (default 1)")
    add_training_device(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.afx.experiment import RunSettings
    from models.afx.experiment import run as run_task
    from models.device import announce
    from models.errors import ReaTimbreError
    from models.fit import FitProgress, raise_if_interrupted
    from models.userdirs import user_models_dir

    try:
        settings_override = json.loads(args.settings)
    except json.JSONDecodeError as exc:
        raise ReaTimbreError(f"--settings is not JSON: {exc}") from None
    if not isinstance(settings_override, dict):
        raise ReaTimbreError("--settings must be a JSON object")
    if args.out is not None:
        check_out_folder(args.out)
    device = training_device(args)
    announce(device)
    apply_threads(args)
    settings = RunSettings(
        minutes=args.minutes, steps=args.steps, seconds=args.seconds, heldout_seconds=args.heldout_seconds,
        batch_size=args.batch_size, pretrain_steps=args.pretrain_steps, seed=args.seed, settings=settings_override,
        clocks=args.clocks, loss=args.loss,
    )  # fmt: skip

    def report(p: FitProgress) -> None:
        if p.step % 50 == 0:
            print(f"{args.arch} on {args.task}: {p.summary()}", file=sys.stderr, flush=True)

    command = "reatimbre " + shlex.join(sys.argv[1:])
    try:
        result = run_task(
            args.arch, args.task, settings, args.out or user_models_dir(), args.name or f"{args.arch}-{args.task}",
            command, device.device, report,
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise ReaTimbreError(f"afx-train: {exc}") from None
    print(f"saved {result.info.weights_path.with_suffix('.json')} ({result.steps} steps, {result.train_seconds:.0f} s)")
    for who in ("model", "dry", "ratio"):
        figures = "  ".join(f"{k} {v:.4g}" for k, v in result.heldout[who].items())
        print(f"  held-out {who:5s}: {figures}")
    raise_if_interrupted(result.info.sidecar["training"]["stopped_because"])
    return 0
