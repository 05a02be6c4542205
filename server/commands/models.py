"""``reatimbre models``: list installed effect models and their knobs."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list installed effect models with their knobs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.library import SHIPPED_DIR, scan_models
    from models.userdirs import user_models_dir

    models, problems = scan_models()
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps({"models": [m.to_dict() for m in models]}, indent=2))
        return 0
    if not models:
        print(f"no models installed (shipped: {SHIPPED_DIR}, user: {user_models_dir()})")
        return 0
    for m in models:
        held = m.to_dict().get("heldout") or {}
        quality = ""
        if held.get("model") and held.get("dry"):
            quality = f"  held-out MR-STFT {held['model']['mrstft']:.3f} (dry {held['dry']['mrstft']:.3f})"
        print(
            f"{m.name} [{m.kind}] {m.description}; {m.sample_rate} Hz, receptive field "
            f"{m.receptive_field} samples ({m.receptive_field / m.sample_rate * 1000:.0f} ms), "
            f"latency {m.latency_samples}{quality}"
        )
        for warning in m.quality_warnings:
            print(f"    ! {warning}")
        for k in m.knobs:
            unit = f" {k.unit}" if k.unit else ""
            print(
                f"    --knob {k.name}=VALUE  {k.minimum:g}..{k.maximum:g}{unit}, default {k.default:g}"
                + (f"  ({k.description})" if k.description else "")
            )
    return 0
