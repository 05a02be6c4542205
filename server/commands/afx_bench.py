"""``reatimbre afx-bench``: the six thesis architectures and our TCN on the same afx tasks, one table."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from server.commands.afx_train import architecture_names, task_names
from server.commands.options import (
    LazyChoices,
    add_threads,
    add_training_device,
    apply_threads,
    check_out_folder,
    training_device,
)

EXAMPLES = """examples:
  reatimbre afx-bench --out runs/afx-bench                          # 10 min per model and task (hours)
  reatimbre afx-bench --minutes 2 --tasks eq-peak leslie plate --out runs/afx-bench-short
  reatimbre afx-bench --merge runs/b-eq runs/b-leslie runs/b-plate --out runs/afx-bench   # one table
  reatimbre afx-bench --archs ceq tcn --tasks eq-peak --minutes 1 --seconds 20 --out /tmp/bench
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "afx-bench",
        help="train and compare the thesis architectures and our TCN on afx tasks (Markdown + CSV table)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--archs",
        nargs="+",
        choices=LazyChoices(architecture_names),
        metavar="ARCH",
        help="%(choices)s; the six thesis architectures and our TCN by default; lfo-tcn and rotors (Leslie tasks) on "
        "request",
    )
    parser.add_argument(
        "--tasks", nargs="+", choices=LazyChoices(task_names), metavar="TASK", default=["eq-peak", "leslie", "plate"]
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="training time box per model and task (10)")
    parser.add_argument(
        "--steps", type=int, default=1_000_000, help="step budget of the end-to-end training (ends at it or --minutes)"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="training material per knob value (60)")
    parser.add_argument("--heldout-seconds", type=float, default=20.0, help="held-out material per knob value")
    parser.add_argument("--pretrain-steps", type=int, default=200, help="front-end pretraining steps (frame models)")
    parser.add_argument("--out", type=Path, required=True, help="folder for afx-bench.md, afx-bench.csv, models/")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="only merge the tables of earlier runs (e.g. one per task run side by side) into --out",
    )
    parser.add_argument("--rtf-threads", type=int, default=2, help="torch threads when timing the renders (2)")
    parser.add_argument("--rtf-seconds", type=float, help="seconds of audio timed per model (default 4)")
    parser.add_argument(
        "--clocks",
        action="store_true",
        help="tell crafx, cwafx and csafx the task's LFO clock phases (tasks that declare them: the leslie ones)",
    )
    add_threads(parser, default=1, help="torch CPU threads for training (default 1)")
    add_training_device(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.afx import ARCHITECTURES
    from models.afx.bench import bench, merge
    from models.afx.experiment import RTF_SECONDS, TCN, RunSettings
    from models.device import announce

    check_out_folder(args.out)
    if args.merge:
        rows = merge(args.merge, args.out)
        print(f"wrote {args.out / 'afx-bench.md'} and {args.out / 'afx-bench.csv'} ({len(rows)} rows)")
        return 0

    device = training_device(args)
    announce(device)
    apply_threads(args)
    settings = RunSettings(
        minutes=args.minutes, steps=args.steps, seconds=args.seconds, heldout_seconds=args.heldout_seconds,
        pretrain_steps=args.pretrain_steps, clocks=args.clocks,
    )  # fmt: skip
    command = "reatimbre " + shlex.join(sys.argv[1:])
    archs = args.archs or [*ARCHITECTURES, TCN]
    rtf_seconds = RTF_SECONDS if args.rtf_seconds is None else args.rtf_seconds
    bench(archs, args.tasks, settings, args.out, command, args.rtf_threads, device.device, rtf_seconds,
          log=lambda line: print(line, flush=True))  # fmt: skip
    print(f"wrote {args.out / 'afx-bench.md'} and {args.out / 'afx-bench.csv'}")
    return 0
