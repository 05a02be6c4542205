"""``reatimbre match-train``: train the patch-matching VAE variants on match-data folders."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from server.commands.options import add_threads, add_training_device, apply_threads, check_out_folder, training_device

VARIANT_CHOICES = ("separate", "joint_encoder", "joint_decoder", "all")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "match-train",
        help="train the multi-task patch-matching VAE (three variants) on match-data folders",
        description="Train the multi-task VAE on the training clips of one match-data folder per synth: separate "
        "VAEs, a joint encoder with one parameter decoder per synth, or a joint encoder and decoder over padded "
        "parameter vectors. Spectrogram + masked parameter loss + KL with warm-up; the weights with the best "
        "validation loss are saved as safetensors with a JSON sidecar into --out. Ctrl-C stops training and saves the "
        "best weights validated so far (exit status 130; later variants are not trained).",
    )
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="match-data folders, one per synth")
    parser.add_argument("--out", required=True, type=Path, help="folder for the weights and sidecars")
    parser.add_argument("--variant", choices=VARIANT_CHOICES, default="all", help="variant(s) to train (default all)")
    parser.add_argument("--minutes", type=float, default=5.0, help="time budget per variant (default 5)")
    parser.add_argument("--max-steps", type=int, default=1_000_000, help="step budget per variant")
    parser.add_argument("--latent", type=int, default=64, help="latent size (default 64, the paper's saturation)")
    parser.add_argument("--channels", type=int, default=16, help="encoder/decoder convolution width (default 16)")
    parser.add_argument("--hidden", type=int, default=128, help="MLP width (default 128)")
    parser.add_argument(
        "--hypotheses",
        type=int,
        default=1,
        help="whole patches each parameter decoder proposes, trained winner-takes-all and scored (default 1)",
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--continuous-weight",
        type=float,
        default=20.0,
        help="weight of the continuous parameters' MSE against the categorical cross-entropy (default 20)",
    )
    parser.add_argument(
        "--constant-learning-rate",
        action="store_true",
        help="keep the learning rate (default: a half cosine to 0 over the budget)",
    )
    parser.add_argument(
        "--synth-share-power",
        type=float,
        default=1.0,
        help="a synth's share of each batch is proportional to its training clips to this power: 1 draws clips "
        "uniformly, 0.5 by the square root, 0 every synth equally (default 1)",
    )
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default 0)")
    parser.add_argument(
        "--average-decay",
        type=float,
        default=0.0,
        help="validate and keep a moving average of the weights with this decay per step, e.g. 0.999 (default 0: "
        "the weights themselves)",
    )
    parser.add_argument("--warmup-steps", type=int, default=500, help="KL weight rises from 0 over these steps")
    parser.add_argument("--beta", type=float, default=1e-3, help="KL weight after warm-up (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    add_threads(parser, default=1, help="torch CPU threads (default 1)")
    add_training_device(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.asp.data import load_match_data
    from models.asp.nets import VARIANTS
    from models.asp.store import save_model
    from models.asp.train import TrainSettings, train_asp
    from models.device import announce
    from models.errors import ReaTimbreError
    from models.fit import INTERRUPTED

    check_out_folder(args.out)
    apply_threads(args)
    device = training_device(args)
    if not args.quiet:
        announce(device)
    if not args.minutes > 0:
        raise ReaTimbreError(f"--minutes must be positive, got {args.minutes}")
    datasets = [load_match_data(folder) for folder in args.data]
    variants = VARIANTS if args.variant == "all" else (args.variant,)
    for variant in variants:
        settings = TrainSettings(
            variant=variant,
            latent=args.latent,
            channels=args.channels,
            hidden=args.hidden,
            hypotheses=args.hypotheses,
            weight_decay=args.weight_decay,
            average_decay=args.average_decay,
            continuous_weight=args.continuous_weight,
            synth_share_power=args.synth_share_power,
            cosine_decay=not args.constant_learning_rate,
            batch=args.batch,
            learning_rate=args.learning_rate,
            seconds=args.minutes * 60.0,
            max_steps=args.max_steps,
            warmup_steps=args.warmup_steps,
            beta=args.beta,
            seed=args.seed,
        )

        def progress(state: dict, variant: str = variant) -> None:
            if not args.quiet:
                v = state["validation"]
                each = " ".join(
                    f"{k.removeprefix('parameters_')} {x:.3f}" for k, x in v.items() if k.startswith("parameters_")
                )
                print(
                    f"match-train {variant}: step {state['step']} ({state['seconds']:.0f} s) train {state['train']:.4f}"
                    f" validation {v['total']:.4f} (mel {v['spectrogram']:.4f}, parameters {v['parameters']:.4f}:"
                    f" {each})",
                    file=sys.stderr,
                    flush=True,
                )

        model, report = train_asp(datasets, settings, device.device, on_progress=progress)
        sidecar = {
            "synths": {d.synth: d.space for d in datasets},
            "training": report,
            "command": "reatimbre " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "reatimbre match-train",
            "device": device.record(),
            "threads": args.threads,
        }
        path = save_model(model.cpu(), sidecar, args.out)
        best = report["best_validation"]
        print(f"match-train {variant}: {report['steps']} steps, best validation {best['total']:.4f} -> {path}")
        if report["stopped_because"] == INTERRUPTED:
            rest = variants[variants.index(variant) + 1 :]
            print(
                f"match-train: interrupted at step {report['steps']}; kept the best weights validated so far (step "
                f"{best['step']})" + (f"; not trained: {', '.join(rest)}" if rest else ""),
                file=sys.stderr,
            )
            return 130
    return 0
