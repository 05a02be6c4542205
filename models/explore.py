"""What an effect's knobs do: a grid over its two knobs, measured as loudness and, for reverbs, decay time.

As in the steerable-effects paper's Figure 2: the input is rendered at every point of a grid over the first two
knobs (for a steered model, the controls c1, c2 over [-5, 5]^2) and its integrated loudness (LUFS, ITU-R BS.1770)
is measured; for a reverb-like model an impulse is rendered too and its T60 is estimated from the Schroeder energy
decay curve. The result is a heatmap PNG and a JSON with every number.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soxr

from models.atomic_files import atomic_path, write_text
from models.errors import ReaTimbreError
from models.evaluation import loudness_lufs
from models.library import NeuralEffect, load_model

MIN_GRID = 2
MAX_GRID = 21
MAX_INPUT_SECONDS = 10.0  # longer inputs are cut: the grid renders the input grid**2 times
IMPULSE_LEVEL = 0.5  # peak of the impulse used for T60
TRUNCATION_SHARE = 0.8  # a decay must reach its lower level within this share of the window
IMPULSE_MIN_SECONDS = 3.0  # window in which the impulse response is measured (at least the model's tail)


def is_reverb_like(effect: NeuralEffect) -> bool:
    """A model with a tail (a shipped reverb) or steered with the long memory."""
    steered = effect.info.sidecar.get("steered", {})
    return effect.info.tail_seconds > 0 or steered.get("memory") == "long"


def t60_seconds(response: np.ndarray, sample_rate: int) -> float | None:
    """T60 of an impulse response from its Schroeder decay curve: the -5..-25 dB slope (T20) extrapolated to 60 dB,
    or the -5..-15 dB slope if the response does not decay 25 dB within the first 80 % of the window; None if it
    does not decay even 15 dB."""
    energy = np.asarray(response, dtype=np.float64) ** 2
    total = energy.sum()
    if not total > 0:
        return None
    decay_db = 10 * np.log10(np.maximum(np.cumsum(energy[::-1])[::-1] / total, 1e-30))
    times = np.arange(energy.size) / sample_rate
    for low_db in (-25.0, -15.0):
        span = (decay_db <= -5.0) & (decay_db >= low_db)
        reached = np.flatnonzero(decay_db <= low_db)
        # Reaching it only at the very end is the window's truncation, not a decay.
        if reached.size and reached[0] < TRUNCATION_SHARE * energy.size and span.sum() >= 2:
            slope, _ = np.polyfit(times[span], decay_db[span], 1)
            return float(-60.0 / slope) if slope < 0 else None
    return None


def _knob_axes(effect: NeuralEffect, grid: int) -> tuple[list[str], list[np.ndarray]]:
    knobs = effect.info.knobs
    if len(knobs) < 2:
        raise ReaTimbreError(f"effect {effect.name!r} has {len(knobs)} knob(s); explore needs two")
    first, second = knobs[:2]
    return [first.name, second.name], [
        np.array([k.value_at(p) for p in np.linspace(0.0, 1.0, grid)]) for k in (first, second)
    ]


def _load_input(source: str | os.PathLike | np.ndarray, sample_rate: int | None, model_rate: int) -> np.ndarray:
    """The input as mono at the model's rate, at most :data:`MAX_INPUT_SECONDS` long."""
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise ReaTimbreError("an input array needs its sample rate")
        audio = np.atleast_2d(np.asarray(source, dtype=np.float32))
    else:
        from server.audio_io import read_audio

        audio, sample_rate = read_audio(source)
    mono = audio.mean(axis=0)
    if sample_rate != model_rate:
        mono = soxr.resample(mono, sample_rate, model_rate, quality="HQ").astype(np.float32)
    mono = mono[: int(MAX_INPUT_SECONDS * model_rate)]
    if not np.any(mono):
        raise ReaTimbreError("the explore input is silent; give a recording with sound")
    return mono


def explore(
    name: str,
    source: str | os.PathLike | np.ndarray,
    grid: int = 9,
    *,
    sample_rate: int | None = None,
    progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> dict:
    """Render ``source`` through effect ``name`` on a ``grid`` x ``grid`` grid of its first two knobs; return the
    loudness (LUFS) of each render and, for a reverb-like model, the T60 of an impulse, as nested lists indexed
    [second knob][first knob]."""
    if not isinstance(grid, int) or not MIN_GRID <= grid <= MAX_GRID:
        raise ReaTimbreError(f"grid must be a whole number from {MIN_GRID} to {MAX_GRID}, got {grid!r}")
    effect = load_model(name)
    rate = effect.sample_rate
    audio = _load_input(source, sample_rate, rate)[None, :]
    names, axes = _knob_axes(effect, grid)
    reverb = is_reverb_like(effect)
    impulse = np.zeros((1, int(max(IMPULSE_MIN_SECONDS, effect.info.tail_seconds) * rate)), np.float32)
    impulse[0, 0] = IMPULSE_LEVEL
    loudness = np.zeros((grid, grid))
    t60 = np.full((grid, grid), np.nan)
    for row, second in enumerate(axes[1]):
        for column, first in enumerate(axes[0]):
            if should_cancel is not None and should_cancel():
                raise ReaTimbreError("explore cancelled")
            knobs = {names[0]: float(first), names[1]: float(second)}
            loudness[row, column] = loudness_lufs(effect.process(audio, knobs), rate)
            if reverb:
                value = t60_seconds(effect.process(impulse, knobs)[0], rate)
                t60[row, column] = np.nan if value is None else value
            if progress is not None:
                progress((row * grid + column + 1) / grid**2)

    def as_lists(values: np.ndarray) -> list[list[float | None]]:
        return [[None if math.isnan(v) else round(float(v), 3) for v in line] for line in values]

    return {
        "model": name,
        "knobs": {names[0]: [round(float(v), 4) for v in axes[0]], names[1]: [round(float(v), 4) for v in axes[1]]},
        "input_seconds": round(audio.shape[1] / rate, 3),
        "input_lufs": round(loudness_lufs(audio, rate), 3),
        "loudness_lufs": as_lists(loudness),
        "t60_seconds": as_lists(t60) if reverb else None,
        "impulse_level": IMPULSE_LEVEL if reverb else None,
        "layout": f"rows follow {names[1]} (ascending), columns follow {names[0]} (ascending)",
    }


def plot(result: dict, path: Path) -> None:
    """A heatmap PNG of the loudness (and T60) grid, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    (x_name, x_values), (y_name, y_values) = result["knobs"].items()
    panels = [("loudness (dB LUFS)", result["loudness_lufs"], "viridis")]
    if result.get("t60_seconds") is not None:
        panels.append(("T60 (s), impulse in", result["t60_seconds"], "magma"))
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    extent = (x_values[0], x_values[-1], y_values[0], y_values[-1])
    for axis, (title, values, cmap) in zip(axes[0], panels, strict=True):
        data = np.array([[np.nan if v is None else v for v in line] for line in values], dtype=float)
        image = axis.imshow(data, origin="lower", extent=extent, aspect="auto", cmap=cmap, interpolation="nearest")
        figure.colorbar(image, ax=axis, label=title)
        axis.set_xlabel(x_name)
        axis.set_ylabel(y_name)
        axis.set_title(f"{result['model']}: {title.split(' (')[0]}")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def write_json(result: dict, path: Path) -> None:
    """The numbers as JSON, written atomically."""
    write_text(path, json.dumps(result, indent=2) + "\n")
