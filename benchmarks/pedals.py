"""The pedal board beside the McCool paper's networks: for each effect, the paper's CNN and LSTM and our TCN, each
trained for the same CPU budget, judged on held-out material of another origin on the 3-per-knob grid.

    python benchmarks/pedals.py --effects fuzz chorus --minutes 4 [--models DIR] [--table benchmarks/pedals.md]

For each effect and network: the geometric mean over the grid of the model's MR-STFT distance to the real effect
divided by the dry input's (lower is better; 1 = no better than doing nothing), the worst grid point's ratio, the
largest loudness error, and the real-time factor of one mono stream on one CPU thread (audio seconds per wall
second, ``--rtf-seconds`` (10) of audio through the library's block renderer). For an effect with an LFO also the
modulation-spectrum distance to the real effect on a steady chord (model / dry). A model already in ``--models`` or
shipped (as ``reatimbre train-effect`` names it: ``EFFECT`` for ours, ``EFFECT-mccool-cnn`` /
``EFFECT-mccool-lstm``) is judged from its sidecar; a missing one is trained into ``--models`` with ``--minutes``
(and ``--steps``, ``--clip-seconds``, ``--heldout-seconds`` where given, as ``train-effect`` takes them). The table
is written as Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from models.effects import PEDALS, reference_effect
from models.library import SHIPPED_DIR, read_info
from models.library import load_info as load_library_info
from models.material import make_program
from models.pedals.training import ARCH_LABELS, ARCHS, model_name_for, pedal_recipe, render, train_pedal
from models.rates import SAMPLE_RATE_HZ

RTF_SECONDS = 10.0


def real_time_factor(info_path: Path, seconds: float = RTF_SECONDS) -> float:
    """Audio seconds rendered per wall second, one mono stream, default knobs, one thread."""
    effect = load_library_info(read_info(info_path, "user"))
    audio = make_program(seconds, SAMPLE_RATE_HZ, np.random.default_rng(5))
    start = time.perf_counter()
    render(effect.stream(), audio, effect.latency_samples)
    return seconds / (time.perf_counter() - start)


def row(effect: str, arch: str, models: Path, minutes: float, args: argparse.Namespace) -> dict:
    """One table row: the model's held-out figures (training it first when it is missing, within ``minutes`` and
    the budget options of ``args``) and its speed."""
    name = model_name_for(effect, arch)
    sidecar = next(
        (path for path in (models / f"{name}.json", SHIPPED_DIR / f"{name}.json") if path.is_file()),
        models / f"{name}.json",
    )
    if not sidecar.is_file():
        from dataclasses import replace

        command = f"reatimbre train-effect --effect {effect} --arch {arch} --minutes {minutes:g} --threads 1"
        recipe = replace(pedal_recipe(effect, arch), minutes=minutes)
        for field in ("steps", "clip_seconds", "heldout_seconds"):
            value = getattr(args, field)
            if value is not None:
                recipe = replace(recipe, **{field: value})
                command += f" --{field.replace('_', '-')} {value:g}"
        judged = {} if args.heldout_seconds is None else {"heldout_seconds": args.heldout_seconds}
        train_pedal(effect, models, arch=arch, recipe=recipe, command=command, **judged)
    info = read_info(sidecar, "user")
    summary = info.sidecar["metrics"]["heldout_other_origin"]["summary"]
    modulation = summary.get("modulation")
    return {
        "effect": effect,
        "network": ARCH_LABELS[arch] + (f" ({info.sidecar['architecture']['type']})" if arch == "ours" else ""),
        "parameters": info.sidecar["parameters"],
        "steps": info.sidecar["training"]["steps"],
        "seconds": info.sidecar["training"]["seconds"],
        "ratio": summary["geometric_mean_ratio"],
        "worst": summary["worst_ratio"],
        "loudness": summary["max_loudness_error_db"],
        "modulation": None
        if modulation is None
        else float(
            np.mean([p["model"] for p in modulation["points"]]) / np.mean([p["dry"] for p in modulation["points"]])
        ),
        "rtf": real_time_factor(sidecar, args.rtf_seconds),
        "meets": summary["meets_goals"],
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| effect | network | params | steps (s) | MR-STFT / dry, geo. mean | worst point | loudness err. dB "
        "| modulation / dry | real-time factor | goals |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        modulation = "-" if r["modulation"] is None else f"{r['modulation']:.2f}"
        lines.append(
            f"| {r['effect']} | {r['network']} | {r['parameters']} | {r['steps']} ({r['seconds']:.0f}) "
            f"| {r['ratio']:.3f} | {r['worst']:.2f} | {r['loudness']:.1f} | {modulation} | {r['rtf']:.1f} "
            f"| {'met' if r['meets'] else 'not met'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--effects", nargs="+", choices=PEDALS, default=list(PEDALS))
    parser.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget of a missing model")
    parser.add_argument("--steps", type=int, help="step budget of a missing model (default: the recipe's)")
    parser.add_argument("--clip-seconds", type=float, help="a missing model's training clips (default: the recipe's)")
    parser.add_argument("--heldout-seconds", type=float, help="a missing model's held-out clips (default: 4)")
    parser.add_argument("--rtf-seconds", type=float, default=RTF_SECONDS, help="audio timed per model (10)")
    parser.add_argument("--models", type=Path, default=SHIPPED_DIR, help="where the models are (or go)")
    parser.add_argument("--table", type=Path, help="write the Markdown table here too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; torch {torch.__version__}, {torch.get_num_threads()} thread",
        flush=True,
    )
    rows = []
    for effect in args.effects:
        reference_effect(effect)
        for arch in args.archs:
            rows.append(row(effect, arch, args.models, args.minutes, args))
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    table = markdown(rows)
    print(table)
    if args.table:
        args.table.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
