"""``reatimbre coach-train``: train the coach's models from ``reatimbre coach-data`` folders."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from server.commands.coach_data import add_max_draws, add_memory_map
from server.commands.options import add_threads, add_training_device, apply_threads, check_out_folder, training_device


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coach-train",
        help="train the synth coach's effect CNNs and next-effect RNN from coach-data folders",
        description="Train one CNN per effect and the next-effect RNN on the complete draws (one setting of all "
        "five effects under all 32 subsets) of one or more `reatimbre coach-data` folders, with progress, early "
        "stopping and step/time budgets, and save them with sidecars (training settings, data, held-out metrics) "
        "into --out. Families are split 85/10/5 %% into train, validation and test.",
    )
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="coach-data folder(s)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the weights and sidecars")
    add_max_draws(parser)
    add_memory_map(parser)
    parser.add_argument(
        "--keep-split",
        type=int,
        nargs="+",
        default=(),
        metavar="N",
        help="the first N draws keep the train/validation/test split a run on --max-draws N had and the rest "
        "split on their own: fine-tune models trained on N draws on more without leaking their training draws; "
        "give every earlier run's N (e.g. 4300 6000) to keep each stretch's split",
    )
    parser.add_argument("--only", nargs="+", metavar="MODEL", help="train only these (effect names, next_effect)")
    parser.add_argument("--cnn-steps", type=int, default=3000)
    parser.add_argument("--rnn-steps", type=int, default=2000)
    parser.add_argument("--cnn-seconds", type=float, default=300.0, help="time budget per effect CNN")
    parser.add_argument("--rnn-seconds", type=float, default=300.0, help="time budget for the RNN")
    parser.add_argument("--patience", type=int, default=6, help="validation checks without gain before stopping")
    parser.add_argument(
        "--rnn-off-path",
        type=float,
        default=0.25,
        metavar="FRACTION",
        help="share of RNN training sequences whose effects are added in a random order (default 0.25)",
    )
    parser.add_argument(
        "--average-decay",
        type=float,
        default=0.0,
        metavar="DECAY",
        help="validate and keep a moving average of the weights with this decay per step, e.g. 0.999 (default off)",
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak Adam learning rate (default 1e-3)")
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        metavar="DIR",
        help="start each model from the weights of the same name in this coach models folder (fine-tuning)",
    )
    parser.add_argument("--validate-every", type=int, default=100, metavar="STEPS", help="default 100")
    parser.add_argument(
        "--validation-examples",
        type=int,
        default=512,
        metavar="N",
        help="validation pairs (CNNs) or sequences (RNN) drawn once from the validation draws (default 512)",
    )
    parser.add_argument(
        "--rnn-chains",
        nargs="+",
        type=Path,
        default=[],
        metavar="DIR",
        help="coach-chains folder(s) over the same coach-data: in-loop sequences for the RNN",
    )
    parser.add_argument(
        "--rnn-chain-fraction",
        type=float,
        default=0.5,
        metavar="FRACTION",
        help="share of RNN batches drawn from --rnn-chains (default 0.5)",
    )
    parser.add_argument(
        "--rnn-presence-weight",
        type=float,
        default=0.0,
        metavar="WEIGHT",
        help="> 0: the RNN also learns which effects the target has and the current lacks (auxiliary loss of "
        "this weight, on a second output used in training only); default 0 (off)",
    )
    add_threads(parser)
    add_training_device(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.coach.train import TrainSettings, train_coach
    from models.device import announce
    from models.errors import ReaTimbreError
    from models.fit import raise_if_interrupted

    check_out_folder(args.out)
    apply_threads(args)
    if not 0.0 <= args.rnn_off_path <= 1.0:
        raise ReaTimbreError(f"--rnn-off-path must be in 0..1, got {args.rnn_off_path}")
    if not 0.0 <= args.average_decay < 1.0:
        raise ReaTimbreError(f"--average-decay must be in 0..1 (0 = off), got {args.average_decay}")
    if not 0.0 <= args.rnn_chain_fraction <= 1.0:
        raise ReaTimbreError(f"--rnn-chain-fraction must be in 0..1, got {args.rnn_chain_fraction}")
    if not args.rnn_presence_weight >= 0:
        raise ReaTimbreError(f"--rnn-presence-weight must be 0 or more, got {args.rnn_presence_weight}")
    if not args.learning_rate > 0:
        raise ReaTimbreError(f"--learning-rate must be positive, got {args.learning_rate}")
    if args.validate_every < 1:
        raise ReaTimbreError(f"--validate-every must be at least 1, got {args.validate_every}")
    if args.validation_examples < 1:
        raise ReaTimbreError(f"--validation-examples must be at least 1, got {args.validation_examples}")
    device = training_device(args)
    if not args.quiet:
        announce(device)
    settings = TrainSettings(
        cnn_steps=args.cnn_steps,
        rnn_steps=args.rnn_steps,
        cnn_seconds=args.cnn_seconds,
        rnn_seconds=args.rnn_seconds,
        patience=args.patience,
        rnn_off_path_fraction=args.rnn_off_path,
        average_decay=args.average_decay,
        validation_examples=args.validation_examples,
        validate_every=args.validate_every,
        learning_rate=args.learning_rate,
        init_from=str(args.init or ""),
        rnn_chain_fraction=args.rnn_chain_fraction,
        rnn_presence_weight=args.rnn_presence_weight,
        max_draws=args.max_draws,
        memory_map=args.memory_map,
        keep_split=tuple(args.keep_split),
        device=str(device.device),
        bf16=args.bf16,
    )
    command = "reatimbre " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    summaries = train_coach(
        args.data,
        args.out,
        settings,
        only=tuple(args.only or ()),
        command=command,
        progress=not args.quiet,
        chain_dirs=tuple(args.rnn_chains),
    )
    for name, fields in summaries.items():
        training = fields["training"]
        scores = fields.get("test") or fields.get("test_next_effect_accuracy")
        print(
            f"{name}: {training['steps']} steps, {training['seconds']:.0f} s ({training['stopped_because']}); "
            f"held-out {scores}"
        )
        raise_if_interrupted(training["stopped_because"])
    return 0
