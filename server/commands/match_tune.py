"""``reatimbre match-tune``: fine-tune trained patch-matching weights on how their guesses render."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from server.commands.match_train import VARIANT_CHOICES
from server.commands.options import add_threads, apply_threads, check_out_folder


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "match-tune",
        help="tune trained patch-matching weights by ear: parameter decoders fine-tuned on their guesses' renders",
        description="Fine-tune the parameter decoders of trained match weights (match-train) on the log-spectral "
        "distance between the render of each training clip's guess and the clip, estimated from antithetic pairs "
        "of renders (the synths are not differentiable). The encoder stays as trained unless --encoder. Each "
        "decoder keeps the weights that validated best, the trained ones included; the tuned weights and sidecars "
        "go to --out. "
        "Ctrl-C stops and saves what was validated so far (exit status 130).",
    )
    parser.add_argument("--models", required=True, type=Path, help="folder of trained match weights")
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="match-data folders, one per synth")
    parser.add_argument("--out", required=True, type=Path, help="folder for the tuned weights (not --models)")
    parser.add_argument("--variant", choices=VARIANT_CHOICES, default="all", help="variant(s) to tune (default all)")
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget per variant (default 10)")
    parser.add_argument("--max-steps", type=int, default=1_000_000, help="step budget per variant")
    parser.add_argument("--sigma", type=float, default=0.05, help="render pairs' step, share of a range (0.05)")
    parser.add_argument("--pairs", type=int, default=6, help="antithetic render pairs per clip (default 6)")
    parser.add_argument("--batch", type=int, default=24, help="clips per step (default 24)")
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="Adam's (default 2e-4)")
    parser.add_argument("--validate-seconds", type=float, default=60.0, help="validate this often (default 60)")
    parser.add_argument("--validation-clips", type=int, default=100, help="per synth (default 100)")
    parser.add_argument("--training-clips", type=int, default=20_000, help="per synth, at most (default 20000)")
    parser.add_argument("--workers", type=int, default=None, help="render processes (default: one per CPU)")
    parser.add_argument(
        "--encoder",
        action="store_true",
        help="tune the encoders too (a shared one needs every synth's data)",
    )
    parser.add_argument(
        "--class-anchor",
        type=float,
        default=0.0,
        help="weight of the true classes' cross-entropy beside the heard distance (default 0: off)",
    )
    parser.add_argument("--seed", type=int, default=0)
    add_threads(parser, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.asp.data import load_match_data
    from models.asp.nets import VARIANTS
    from models.asp.store import load_model, save_model, stored_variants
    from models.asp.tune import TuneSettings, tune_by_ear
    from models.errors import ReaTimbreError
    from models.fit import INTERRUPTED
    from models.scaleout import worker_pool

    check_out_folder(args.out)
    if args.out.resolve() == args.models.resolve():
        raise ReaTimbreError("--out must be another folder than --models: tuning keeps the trained weights")
    workers = args.workers if args.workers is not None else os.cpu_count() or 1
    if workers < 1:
        raise ReaTimbreError(f"--workers must be at least 1, got {workers}")
    apply_threads(args)
    available = stored_variants(args.models)
    variants = [v for v in VARIANTS if v in available] if args.variant == "all" else [args.variant]
    if not variants:
        raise ReaTimbreError(f"{args.models} holds no match weights")
    settings = TuneSettings(
        seconds=args.minutes * 60.0,
        sigma=args.sigma,
        pairs=args.pairs,
        batch=args.batch,
        learning_rate=args.learning_rate,
        validate_seconds=args.validate_seconds,
        validation_clips=args.validation_clips,
        training_clips=args.training_clips,
        max_steps=args.max_steps,
        seed=args.seed,
        encoder=args.encoder,
        class_anchor=args.class_anchor,
    )
    settings.validate()
    models = {variant: load_model(args.models, variant) for variant in variants}
    datasets = [load_match_data(folder) for folder in args.data]
    with worker_pool(workers) as mapper:
        for variant in variants:
            model, sidecar = models[variant]

            def progress(state: dict, variant: str = variant) -> None:
                if not args.quiet:
                    each = ", ".join(f"{k} {v:.2f}" for k, v in state["validation_lsd_db"].items())
                    print(
                        f"match-tune {variant}: step {state['step']} ({state['seconds']:.0f} s) batch "
                        f"{state['batch_lsd_db']:.2f} dB, validation one guess (dB): {each}",
                        file=sys.stderr,
                        flush=True,
                    )

            report = tune_by_ear(model, datasets, settings, mapper, on_progress=progress)
            command = "reatimbre " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "reatimbre match-tune"
            report = {**report, "command": command, "workers": workers, "models": str(args.models)}
            path = save_model(model, {**_trained(sidecar), "tuning": report}, args.out)
            each = ", ".join(
                f"{name} {s['validation_lsd_db_trained']:.2f} -> {s['validation_lsd_db_tuned']:.2f}"
                for name, s in report["synths"].items()
            )
            print(f"match-tune {variant}: {report['steps']} steps, validation one guess (dB): {each} -> {path}")
            if report["stopped_because"] == INTERRUPTED:
                rest = variants[variants.index(variant) + 1 :]
                print(
                    "match-tune: interrupted; kept the weights validated best so far"
                    + (f"; not tuned: {', '.join(rest)}" if rest else ""),
                    file=sys.stderr,
                )
                return 130
    return 0


def _trained(sidecar: dict) -> dict:
    """The trained model's sidecar, less what save_model writes itself and the held-out tables of the weights before
    tuning (``match-eval --record`` measures the tuned ones); a tuned model's earlier tuning is kept as
    ``tuned_before``."""
    dropped = ("format", "architecture", "weights", "tuning", "held_out")
    kept = {k: v for k, v in sidecar.items() if k not in dropped}
    if "tuning" in sidecar:
        kept["tuned_before"] = [*sidecar.get("tuned_before", []), sidecar["tuning"]]
    return kept
