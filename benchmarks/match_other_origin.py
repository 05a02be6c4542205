"""How close ``reatimbre match`` gets on sounds that no synth made: single notes of sampled General MIDI instruments.

    python benchmarks/match_other_origin.py [--notes 50 57] [--synth vital amsynth kars dexed]
                                            [--data runs/match/vital runs/match/amsynth ...] [--json FILE]
                                            [--given-note] [--seconds-per-synth S|none]

Targets: one held note (0.75 s, released inside the clip, velocity 100) of each instrument of
``models.other_origin.GM_INSTRUMENTS`` at each ``--notes`` (default MIDI 50 and 57, inside the synths' training
range 48-59), played by fluidsynth through Debian's FluidR3 GM soundfont. Each target is matched as the server's
job does (note detected, octave chosen by ear; ``--given-note`` gives each target's note instead, as ``--note``
does) three ways per synth — the model's one guess (``--candidates 1
--refine 0``), the best of 12 guesses (``--refine 0``) and ``match``'s default answer (12 guesses, refined by
ear, every render spent: ``--seconds-per-synth none``), beside ``match``'s answer within its time budget
(``--seconds-per-synth``, default 1 s as ``match``'s; on a loaded machine it gets fewer renders) — and, given
``--data`` (the match-data folders), beside two lookups that need the training set: the training
patch whose clip is nearest the target by mel distance, and the best of the 12 nearest, rendered at the note the
full search's answer plays. LSD in dB (``models.metrics.lsd_db`` on dB-mel/80), mean per synth; the best synth
per target is the one ``match`` ranks first, and its mean is given for both answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from models.asp.data import MatchData, load_match_data
from models.asp.evaluate import nearest_rows
from models.asp.infer import heard_distance, match_target, prepare_target, render_distance
from models.asp.store import load_model
from models.other_origin import GM_INSTRUMENTS, soundfont_notes
from models.rates import SAMPLE_RATE_HZ
from models.scaleout import limit_blas_threads
from models.synth.match_synths import MatchSynth, match_synth
from server.commands.match import seconds_per_synth

METHODS = ("one guess", "best of 12", "match (refined)", "nearest patch", "nearest 12, best of 12")
FULL = "match (refined)"


def _lookups(data: MatchData, adapter: MatchSynth, mel_db80: np.ndarray, note: int) -> tuple[float, float]:
    """The nearest training patch's LSD and the best of the 12 nearest, rendered at ``note`` (the kept one's
    distance told as ``match`` tells its own: :func:`~models.asp.infer.heard_distance`)."""
    train = data.rows("train")
    rows = train[nearest_rows(mel_db80[None], data.mel_db80[train], 12)[0]]
    measure = render_distance(adapter, note, mel_db80)
    natives = [data.patch_values[int(data.patch_index[row])] for row in rows]
    distances = [measure(native) for native in natives]
    best = int(np.argmin(distances))
    return distances[0], heard_distance(adapter, natives[best], note, mel_db80, distances[best])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, nargs="+", default=[50, 57])
    parser.add_argument("--synth", nargs="+", default=["vital", "amsynth", "kars", "dexed"])
    parser.add_argument("--data", type=Path, nargs="*", default=[], help="match-data folders for the lookups")
    parser.add_argument("--variant", default="joint_encoder")
    parser.add_argument("--json", type=Path, help="write every target's distances as JSON")
    parser.add_argument("--given-note", action="store_true", help="give each target's note instead of detecting it")
    parser.add_argument(
        "--seconds-per-synth", type=seconds_per_synth, default=1.0, metavar="S|none", help="match's budget (default 1)"
    )
    args = parser.parse_args()
    budgeted = None if args.seconds_per_synth is None else f"match within {args.seconds_per_synth:g} s"
    methods = [*METHODS[:3], *([budgeted] if budgeted else []), *METHODS[3:]]
    torch.set_num_threads(1)
    limit_blas_threads()
    started = time.perf_counter()
    targets = soundfont_notes(GM_INSTRUMENTS, args.notes)
    model, _ = load_model(None, args.variant)
    adapters = {name: match_synth(name) for name in args.synth}
    datasets = {data.synth: data for data in (load_match_data(folder) for folder in args.data)}
    rows: list[dict] = []
    for (instrument, note), audio in targets.items():
        target = prepare_target(audio[None], SAMPLE_RATE_HZ, note if args.given_note else None)
        row: dict = {"instrument": instrument, "note": note, "detected": target.note, "synths": {}}
        answers, quick_answers = {}, {}
        for name in args.synth:
            one = match_target(model, target, [name], adapters, candidates=1, refine=0)[0]
            best = match_target(model, target, [name], adapters, candidates=12, refine=0)[0]
            answer = match_target(model, target, [name], adapters, candidates=12, refine=None)[0]
            cells = {"one guess": one.lsd_db, "best of 12": best.lsd_db, FULL: answer.lsd_db}
            if budgeted:
                quick = match_target(
                    model,
                    target,
                    [name],
                    adapters,
                    candidates=12,
                    refine=None,
                    seconds_per_synth=args.seconds_per_synth,
                )[0]
                cells[budgeted] = quick.lsd_db
                row.setdefault("budgeted_renders", {})[name] = quick.renders
                quick_answers[name] = quick.lsd_db
            if name in datasets:
                near, near12 = _lookups(datasets[name], adapters[name], target.mel_db80, answer.note)
                cells |= {"nearest patch": near, "nearest 12, best of 12": near12}
            row["synths"][name] = cells
            answers[name] = answer.lsd_db
        row["best_synth"] = min(answers, key=answers.__getitem__)
        row["best_lsd_db"] = answers[row["best_synth"]]
        if quick_answers:
            row["budgeted_best_lsd_db"] = min(quick_answers.values())
        rows.append(row)
        print(
            f"{instrument:22s} MIDI {note} (heard {target.note}): "
            + "  ".join(f"{n} {c[FULL]:.2f}" for n, c in row["synths"].items())
            + f"  -> {row['best_synth']}",
            flush=True,
        )
    print(f"\n{len(rows)} targets, {time.perf_counter() - started:.0f} s; mean LSD (dB) per synth:")
    print(f"  {'method':24s}" + "".join(f"{name:>10s}" for name in args.synth))
    for method in methods:
        means = []
        for name in args.synth:
            values = [r["synths"][name][method] for r in rows if method in r["synths"][name]]
            means.append(f"{statistics.mean(values):10.2f}" if values else f"{'-':>10s}")
        print(f"  {method:24s}" + "".join(means))
    wins = {name: sum(r["best_synth"] == name for r in rows) for name in args.synth}
    print("  ranked first by match: " + ", ".join(f"{name} {count}" for name, count in wins.items()))
    print(f"  the ranked-first synth: {statistics.mean(r['best_lsd_db'] for r in rows):.2f} dB (every render)")
    if budgeted:
        quick_mean = statistics.mean(r["budgeted_best_lsd_db"] for r in rows)
        print(f"  the ranked-first synth, {budgeted}: {quick_mean:.2f} dB")
        for name in args.synth:
            spent = [r["budgeted_renders"][name] for r in rows]
            print(f"  {name} renders within the budget: median {statistics.median(spent):g}, min {min(spent)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
