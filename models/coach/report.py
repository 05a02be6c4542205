"""``--report DIR``: the spectrogram progression of SerumRNN's Figure 1 and the audio of every step.

Writes ``progression.png`` (current sound, each kept step, the target; dB mel spectrograms with each panel's
MSE to the target) and ``00-current.wav``, ``01-<effect>.wav`` …, ``target.wav`` (float WAV, 44.1 kHz). The
folder must be new or empty, so no existing file is replaced; every file is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from models.atomic_files import write_bytes
from models.coach.suggest import CoachResult
from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.synth.features import HOP_SAMPLES, TOP_DB


def prepare_report_dir(directory: Path) -> Path:
    """Create ``directory`` or accept an empty one; refuse anything holding files."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ReaTimbreError(f"--report {directory} exists and is not an empty folder; choose a new one")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _panels(result: CoachResult) -> list[tuple[str, np.ndarray, np.ndarray, float | None]]:
    """(title, dB-mel/80, audio, MSE against the target or None) for the current sound, each step and the target."""
    panels: list[tuple[str, np.ndarray, np.ndarray, float | None]] = [
        ("current sound", result.initial.features.mel_db80, result.initial.audio, result.initial.metrics["mse"])
    ]
    for step in result.steps:
        panels.append(
            (f"{step.number}: {step.effect}", step.after.features.mel_db80, step.after.audio, step.after.metrics["mse"])
        )
    panels.append(("target", result.target.features.mel_db80, result.target.audio, None))
    return panels


def progression_png(result: CoachResult) -> bytes:
    """The Figure 1 progression as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = _panels(result)
    figure, axes = plt.subplots(
        1, len(panels), figsize=(2.6 * len(panels), 3.2), sharey=True, squeeze=False, layout="constrained"
    )
    frames = panels[0][1].shape[-1]
    extent = (0.0, frames * HOP_SAMPLES / SAMPLE_RATE_HZ, 0, panels[0][1].shape[0])
    peak_db = max(float(mel.max()) for _, mel, _, _ in panels) * TOP_DB
    image = None
    for axis, (title, mel, _, mse) in zip(axes[0], panels, strict=True):
        image = axis.imshow(
            mel * TOP_DB,
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=peak_db - TOP_DB,
            vmax=peak_db,
            cmap="magma",
        )
        axis.set_title(title if mse is None else f"{title}\nMSE×100 {100 * mse:.2f}", fontsize=9)
        axis.set_xlabel("seconds")
    axes[0][0].set_ylabel("mel bin")
    assert image is not None  # there are always panels: the current sound and the target
    figure.colorbar(image, ax=axes[0].tolist(), label="dB", shrink=0.8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _wav_bytes(audio: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(audio, dtype=np.float32).T, SAMPLE_RATE_HZ, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def write_report(result: CoachResult, directory: Path) -> list[Path]:
    """Write the PNG and the per-step audio into a new or empty ``directory``; returns the files written."""
    directory = prepare_report_dir(directory)
    written = [write_bytes(directory / "progression.png", progression_png(result), make_parents=True)]
    written.append(write_bytes(directory / "00-current.wav", _wav_bytes(result.initial.audio), make_parents=True))
    for step in result.steps:
        written.append(
            write_bytes(
                directory / f"{step.number:02d}-{step.effect}.wav", _wav_bytes(step.after.audio), make_parents=True
            )
        )
    written.append(write_bytes(directory / "target.wav", _wav_bytes(result.target.audio), make_parents=True))
    return written
