"""The demo: the main job on embedded defaults, headless, with generated audio and the shipped models.

Each part returns rows for the summary table; ``reatimbre demo`` prints them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.audio_io import read_audio, write_audio
from models.effects import REFERENCE_EFFECTS
from models.evaluation import mrstft_distance
from models.library import list_models
from models.material import make_program
from models.rates import SAMPLE_RATE_HZ
from models.render import render_file


def demo_input(path: Path, seconds: float = 6.0, seed: int = 2026) -> Path:
    """Write a stereo program of generated material (notes, drums, plucks, speech-like bursts...) to ``path``."""
    rng = np.random.default_rng(seed)
    left = make_program(seconds, SAMPLE_RATE_HZ, rng)
    right = 0.8 * left + 0.2 * make_program(seconds, SAMPLE_RATE_HZ, rng)
    write_audio(path, np.stack([left, right]), SAMPLE_RATE_HZ, "WAV", "PCM_24")
    return path


def effects_demo(out_dir: Path, seconds: float = 6.0) -> list[dict]:
    """Render the demo input through every shipped model; compare each with the real effect it emulates."""
    source = demo_input(out_dir / "demo-input.wav", seconds)
    dry, rate = read_audio(source)
    rows = []
    for info in list_models():
        if info.kind != "shipped":
            continue
        result = render_file(source, out_dir / f"demo-{info.name}.wav", info.name, overwrite=True)
        row = {
            "step": f"render {info.name}",
            "settings": ", ".join(f"{k}={v:g}" for k, v in result.knobs.items()),
            "speed": f"{result.realtime_factor:.1f}x real time",
            "output": result.output_path,
        }
        reference = REFERENCE_EFFECTS.get(info.name)  # shipped models are named after the effect they emulate
        if reference is not None:
            wet, _ = read_audio(result.output_path)
            padded = np.pad(dry, ((0, 0), (0, wet.shape[1] - dry.shape[1])))
            # Renders line up with the input (a model's latency is removed): so must the real effect's output.
            latency = reference.latency_samples
            target = reference.process(np.pad(padded, ((0, 0), (0, latency))), rate, result.knobs)[:, latency:]
            row["quality"] = (
                f"MR-STFT to the real effect {mrstft_distance(wet, target):.3f} "
                f"(dry input {mrstft_distance(padded, target):.3f})"
            )
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    """Print rows as an aligned table."""
    columns = ["step", "settings", "speed", "quality", "output"]
    columns = [c for c in columns if any(c in r for r in rows)]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def coach_demo(out_dir: Path) -> list[dict]:
    """Coach Vital's dry ``power_fifths`` preset towards the shipped target; one row per step, audio and PNG in
    ``out_dir/coach``. No rows when the coach weights are not installed."""
    import json
    import re
    import time

    from models.coach.pipeline import coach_target_file
    from models.coach.report import write_report
    from models.coach.store import NEXT_EFFECT_NAME, SHIPPED_COACH_DIR, shipped_dir

    if not (shipped_dir() / f"{NEXT_EFFECT_NAME}.json").exists():
        return []
    target_path = SHIPPED_COACH_DIR / "targets" / "power-fifths-fx.flac"
    about = json.loads(target_path.with_suffix(".json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    result, _, _ = coach_target_file(target_path, preset=about["preset"], start_seconds=0.0, note=int(about["note"]))
    milliseconds = 1000 * (time.perf_counter() - started)
    report_dir = out_dir / "coach"
    if report_dir.is_dir():  # files an earlier demo run wrote there (anything else stays, and is refused)
        for old in report_dir.iterdir():
            if old.name in ("progression.png", "target.wav") or re.fullmatch(r"\d\d-[a-z]+\.wav", old.name):
                old.unlink()
    write_report(result, report_dir)
    rows = [
        {
            "step": "coach start",
            "settings": f"preset {about['preset']} (dry) -> {target_path.name}",
            "speed": f"{milliseconds:.0f} ms, {len(result.steps)} step(s), loading and renders included",
            "quality": f"MSE×100 {100 * result.initial.metrics['mse']:.2f}",
            "output": report_dir / "00-current.wav",
        }
    ]
    for step in result.steps:
        rows.append(
            {
                "step": f"coach step {step.number}",
                "settings": step.description,
                "speed": f"{1000 * step.seconds:.0f} ms",
                "quality": f"MSE×100 {100 * step.before['mse']:.2f} -> {100 * step.after.metrics['mse']:.2f}",
                "output": report_dir / f"{step.number:02d}-{step.effect}.wav",
            }
        )
    return rows
