"""``reatimbre match-eval``: the paper's tables for our synths, with baselines and LSD by timbre group."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from server.commands.match import refine_renders


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "match-eval",
        help="evaluate patch matching on the test patches: LSD, parameter MSE, accuracy, baselines",
        description="Render every model variant's inferred patch for each test clip (patches never trained or "
        "validated on) and compare: LSD of the renders, continuous-parameter MSE and categorical accuracy, mean "
        "and standard deviation per synth and variant, beside a random training patch, the nearest training patch "
        "by mel distance and the most common class; LSD by HPSS timbre group; the issue's relative goals.",
    )
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="match-data folders, one per synth")
    parser.add_argument("--models", type=Path, default=None, metavar="DIR", help="weights (default: the shipped)")
    parser.add_argument("--max-clips", type=int, default=0, help="at most this many test clips per synth (0: all)")
    parser.add_argument(
        "--candidates",
        type=int,
        default=1,
        metavar="N",
        help="also score each model rendering N guesses per clip and keeping the closest, beside the N nearest "
        "training patches given the same (default 1: off)",
    )
    parser.add_argument(
        "--refine",
        type=refine_renders,
        default=0,
        metavar="auto|N",
        help="with --candidates, also score each best-of row's patches refined by ear with N renders, as `match` "
        "does (auto: each synth's own default; default 0: off)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the tables as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the tables as Markdown")
    parser.add_argument("--record", action="store_true", help="add the held-out metrics to the models' sidecars")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from models.asp.data import load_match_data
    from models.asp.evaluate import evaluate_synth, goals, markdown, tables
    from models.asp.infer import MAX_CANDIDATES
    from models.asp.store import SHIPPED_MATCH_DIR, load_model, read_sidecar, stored_variants
    from models.atomic_files import write_bytes
    from models.errors import ReaTimbreError

    torch.set_num_threads(1)
    if not 1 <= args.candidates <= MAX_CANDIDATES:
        raise ReaTimbreError(f"--candidates must be 1..{MAX_CANDIDATES}, got {args.candidates}")
    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None and path.is_dir():  # refused now, not after the evaluation
            raise ReaTimbreError(f"{option} {path}: is a folder, not a file")
    directory = args.models or SHIPPED_MATCH_DIR
    variants = stored_variants(directory)
    if not variants:
        raise ReaTimbreError(f"no match models in {directory}")
    loaded = {variant: load_model(directory, variant) for variant in variants}
    models = {variant: model for variant, (model, _) in loaded.items()}
    tuned = [variant for variant, (_, sidecar) in loaded.items() if "tuning" in sidecar]
    datasets = [load_match_data(folder) for folder in args.data]
    per_synth = []
    for data in datasets:
        test = len(data.rows("test"))
        clips = min(test, args.max_clips) if args.max_clips else test
        best_of_rows = (len(models) + 1) * (2 if args.refine != 0 else 1) if args.candidates > 1 else 0
        total = clips * (len(models) + 3 + best_of_rows)
        with tqdm(total=total, unit="render", disable=args.quiet, desc=f"match-eval {data.synth}") as bar:

            def rendered(bar: tqdm = bar) -> None:
                bar.update(1)

            per_synth.append(
                evaluate_synth(
                    data,
                    models,
                    args.max_clips,
                    args.seed,
                    on_clip=rendered,
                    candidates=args.candidates,
                    refine=args.refine,
                )
            )
    table = tables(per_synth)
    checks = goals(table, variants, tuned)
    if checks.get("joint_encoder_vs_separate_comparable") is False:
        print(
            f"match-eval: tuned by ear: {', '.join(tuned)}; the joint encoder against the separate VAEs is not the "
            "paper's comparison when only one of them was tuned",
            file=sys.stderr,
        )
    body = {"tables": table, "goals": checks, "data": [str(f) for f in args.data]}
    text = markdown(table)
    print(text)
    print(json.dumps(checks, indent=1))
    if args.json:
        write_bytes(args.json, json.dumps(body, indent=1).encode("utf-8"), make_parents=True)
    if args.markdown:
        write_bytes(args.markdown, text.encode("utf-8"), make_parents=True)
    if args.record:
        for variant in variants:
            sidecar = read_sidecar(directory, variant)
            sidecar["held_out"] = {
                "all": table["all"][variant],
                "synths": {s: rows[variant] for s, rows in table["synths"].items()},
                "baselines": {b: table["all"][b] for b in ("random_preset", "nearest_preset", "most_common")},
                "goals": checks.get(variant),
                "best_of": {
                    row: {"all": table["all"][row], "goals": checks.get(row)}
                    for row in table["all"]
                    if row.startswith(f"{variant}, best of ") or row.startswith("nearest_preset, best of ")
                },
                "command": "reatimbre match-eval --data "
                + " ".join(str(f) for f in args.data)
                + (f" --max-clips {args.max_clips}" if args.max_clips else "")
                + (f" --candidates {args.candidates}" if args.candidates > 1 else "")
                + (f" --refine {'auto' if args.refine is None else args.refine}" if args.refine != 0 else ""),
            }
            write_bytes(directory / f"{variant}.json", json.dumps(sidecar, indent=1).encode("utf-8"))
    return 0
