"""The comparison table of issue 28: the six architectures and our TCN, trained on the same afx tasks in the same
time box, scored on held-out material of another origin, with parameters and real-time factors.

:func:`bench` runs :func:`models.afx.experiment.run` for every (architecture, task), measures each trained model's
real-time factor through the library's stream (16,384-sample blocks, ``threads`` torch threads; one measurement
at 16 kHz, divided by 44,100 / 16,000 for 44.1 kHz, since every layer works in samples), and writes
``afx-bench.md`` (a Markdown table and how it was made) and ``afx-bench.csv`` (one row per model and task, every
metric of model and dry, their ratio, parameters, real-time factors, budget). Table C.1's parameter counts and CPU
times (for 2 s of audio at 16 kHz, so a real-time factor of 2 / time) stand beside ours.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from models.afx import ARCHITECTURES
from models.afx.experiment import (
    CLOCKED_ARCHS,
    RTF_SECONDS,
    SAMPLE_RATE_HZ,
    TCN,
    RunResult,
    RunSettings,
    realtime_factor,
    run,
)
from models.afx.tasks import task
from models.atomic_files import write_text
from models.errors import ReaTimbreError
from models.fit import raise_if_interrupted
from models.library import load_info

TABLE_C1_CPU_SECONDS = {"ceq": 0.4811, "cafx": 1.2939, "wavenet": 1.0233, "crafx": 2.8706, "cwafx": 2.9552,
                        "csafx": 4.5681}  # fmt: skip
"""Table C.1's CPU time for 2 s of audio at 16 kHz (non-optimised Python, the thesis's machine)."""
TABLE_METRICS = ("mae", "mfcc_cosine", "ms_mse", "logpower_mse", "mrstft", "t60_error")


Row = dict[str, str]
"""One line of ``afx-bench.csv``: model and task, parameters, speed, budget, every metric of model and dry."""


def bench(
    archs: list[str],
    tasks: list[str],
    settings: RunSettings,
    out_dir: Path,
    command: str,
    threads: int = 2,
    device: torch.device | str | None = None,
    rtf_seconds: float = RTF_SECONDS,
    log: Callable[[str], None] = print,
) -> list[Row]:
    """Train, score and time every architecture on every task (``rtf_seconds`` of audio through each); write the
    table after each; return its rows. With ``settings.clocks`` CRAFx, CWAFx and CSAFx are told the LFO phases of
    the tasks that declare clocks (the Leslie's), and their rows say so."""
    rows: list[Row] = []
    for task_name in tasks:
        for arch in archs:
            log(f"{arch} on {task_name}: training for {settings.minutes:g} min")
            told = settings.clocks and arch in CLOCKED_ARCHS and task(task_name).clocks is not None
            result = run(arch, task_name, replace(settings, clocks=told), out_dir / "models", f"{arch}-{task_name}",
                         command, device)  # fmt: skip
            effect = load_info(result.info, "cpu")  # timed as the library renders it
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                rtf = realtime_factor(effect.model, rtf_seconds)
            finally:
                torch.set_num_threads(previous)
            rows.append(csv_row(result, rtf, settings, command, threads))
            ratios = ", ".join(f"{k} {v:.3f}" for k, v in result.heldout["ratio"].items())
            log(f"  {result.steps} steps in {result.train_seconds:.0f} s; ratio to dry: {ratios}; RTF16 {rtf:.2f}")
            write_tables(rows, out_dir)
            raise_if_interrupted(result.info.sidecar["training"]["stopped_because"])  # the table keeps this row
    return rows


def csv_row(result: RunResult, rtf_16k: float, settings: RunSettings, command: str, threads: int) -> Row:
    spec = ARCHITECTURES.get(result.arch)
    row = {
        "arch": result.arch,
        "task": result.task,
        "told_phases": "yes" if result.told_phases else "no",
        "parameters": str(result.parameters),
        "table_c1_parameters": str(spec.table_c1_parameters) if spec else "",
        "steps": str(result.steps),
        "train_seconds": str(round(result.train_seconds)),
        "budget_minutes": f"{settings.minutes:g}",
        "training_seconds_per_knob_value": f"{settings.seconds:g}",
        "heldout_seconds_per_knob_value": f"{settings.heldout_seconds:g}",
        "rtf_threads": str(threads),
        "rtf_16k": f"{rtf_16k:.3f}",
        "rtf_44k": f"{rtf_16k * SAMPLE_RATE_HZ / 44_100:.3f}",
        "table_c1_rtf_16k": f"{2 / TABLE_C1_CPU_SECONDS[result.arch]:.2f}"
        if result.arch in TABLE_C1_CPU_SECONDS
        else "",
        "command": command,
    }
    for metric in TABLE_METRICS:
        for part in ("model", "dry", "ratio"):
            value = result.heldout.get(part, {}).get(metric)
            row[f"{metric}_{part}"] = "" if value is None else f"{value:.4g}"
    row.update(loss_columns(result.info.sidecar))
    return row


def loss_columns(sidecar: dict) -> Row:
    """The architecture's own training loss (Eq. 4.9, Eq. 8.6, MAE) on held-out material, model over dry:
    ``loss_ratio`` over every frame of it where the sidecar has that figure (else over the validation examples),
    ``loss_validation_ratio`` over the validation examples that chose the best weights."""
    loss = sidecar.get("metrics", {}).get("heldout", {}).get("training_loss", {})
    if "model" not in loss or not loss.get("dry"):
        return {"loss": str(loss.get("loss", "")), "loss_ratio": "", "loss_validation_ratio": ""}
    validation = f"{loss['model'] / loss['dry']:.4g}"
    every = loss.get("every_frame", {})
    overall = f"{every['ratio']:.4g}" if every.get("dry") else validation
    return {"loss": str(loss["loss"]), "loss_ratio": overall, "loss_validation_ratio": validation}


def write_tables(rows: list[Row], out_dir: Path) -> None:
    """``afx-bench.csv`` and ``afx-bench.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["arch", "task"]  # rows of older tables
    writer = csv.DictWriter(buffer, fieldnames=columns)  # may lack newer columns: those cells stay empty
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "afx-bench.csv", buffer.getvalue())
    write_text(out_dir / "afx-bench.md", markdown(rows))


def read_rows(directory: Path) -> list[Row]:
    """The rows of an ``afx-bench.csv`` in ``directory``."""
    path = directory / "afx-bench.csv"
    if not path.is_file():
        raise ReaTimbreError(f"no afx-bench.csv in {directory}")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:  # tables written before the loss columns existed: from the saved models' sidecars
        sidecar = directory / "models" / f"{row['arch']}-{row['task']}.json"
        if "loss_ratio" not in row and sidecar.is_file():
            row.update(loss_columns(json.loads(sidecar.read_text(encoding="utf-8"))))
    return rows


def merge(directories: list[Path], out_dir: Path) -> list[Row]:
    """One table from several bench runs (e.g. one per task, run side by side)."""
    rows = [row for directory in directories for row in read_rows(directory)]
    write_tables(rows, out_dir)
    return rows


def row_label(row: Row) -> str:
    """A table row's name: the architecture, and whether it was told the effect's LFO phases (`lfo-tcn` and
    `rotors` always are; CRAFx, CWAFx, CSAFx with ``--clocks``; rows of older tables have no such column)."""
    return f"{row['arch']}, told the phases" if row.get("told_phases") == "yes" else row["arch"]


def markdown(rows: list[Row]) -> str:
    """One table: a row per architecture (and whether it was told the LFO phases), per task each metric's ratio to
    dry, then parameters and speed."""
    archs = list(dict.fromkeys(row_label(row) for row in rows))
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    by_key = {(row_label(row), row["task"]): row for row in rows}
    columns = [
        (task_name, metric)
        for task_name in tasks
        for metric in ("loss", *TABLE_METRICS)
        if any(row.get(f"{metric}_ratio") for row in rows if row["task"] == task_name)
    ]
    header = ["arch", "budget (min)", *[f"{t} {m}" for t, m in columns], "params (ours / Table C.1)", "RTF 16 kHz",
              "RTF 44.1 kHz", "Table C.1 RTF 16 kHz"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for arch in archs:
        present = [row for row in rows if row_label(row) == arch]
        budget = "/".join(sorted({row["budget_minutes"] for row in present}))
        cells = [arch, budget] + [by_key.get((arch, t), {}).get(f"{m}_ratio", "") for t, m in columns]
        counts = sorted({int(row["parameters"]) for row in present})
        thesis = present[0]["table_c1_parameters"]
        params = "-".join(f"{c:,}" for c in (counts[0], counts[-1]) if c) if len(counts) > 1 else f"{counts[0]:,}"
        params += f" / {int(thesis):,}" if thesis else " / -"
        rtf16 = min(float(row["rtf_16k"]) for row in present)
        cells += [
            params,
            f"{rtf16:.2f}",
            f"{rtf16 * SAMPLE_RATE_HZ / 44_100:.2f}",
            present[0]["table_c1_rtf_16k"] or "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    budgets = sorted({(r["budget_minutes"], r["training_seconds_per_knob_value"], r["heldout_seconds_per_knob_value"],
                       r["rtf_threads"]) for r in rows})  # fmt: skip
    commands = sorted({row["command"] for row in rows})
    notes = [
        "# afx bench",
        "",
        *[f"Command: `{command}`" for command in commands],
        "",
        "Budget (minutes of end-to-end training per model and task; seconds of training and held-out material per "
        "knob value; torch threads when timing): "
        + "; ".join(f"{m} min, {s} s, {h} s, {t} threads" for m, s, h, t in budgets)
        + f". All at {SAMPLE_RATE_HZ} Hz, thesis-size models (plus the knob's FiLM on tasks with a knob: the "
        "parameter range). Cells are each metric's ratio to the dry input's on held-out material of another origin "
        "(below 1: closer to the effect than doing nothing); `loss` is the architecture's own training loss "
        "(Eq. 4.9 for CEQ, Eq. 8.6 for CSAFx, MAE for the others; none for the TCN) over every frame of the "
        "held-out material (the CSV's `loss_validation_ratio`: over the validation examples only). "
        "Real-time factor: the library's stream in 16,384-sample blocks, the slowest of the row's models; "
        "44.1 kHz = the 16 kHz figure x 16/44.1. Table C.1's figure is 2 s / its CPU time for 2 s of audio. "
        "Rows named \"told the phases\" were given the effect's LFO clock phases (a Leslie's rotors: `lfo-tcn`, "
        "`rotors`, and CRAFx, CWAFx, CSAFx trained with `--clocks`); the others see only the audio and the knobs.",
        "",
        *lines,
        "",
    ]
    return "\n".join(notes)


def default_archs() -> list[str]:
    return [*ARCHITECTURES, TCN]
