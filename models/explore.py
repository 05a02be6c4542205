"""What an effect's knobs do: a grid over its two knobs, measured as loudness and, for reverbs, decay time.

As in the steerable-effects paper's Figure 2: the input is rendered at every point of a grid over the first two
knobs (for a steered model, the controls c1, c2 over [-5, 5]^2) and its integrated loudness (LUFS, ITU-R BS.1770)
is measured; for a reverb-like model an impulse is rendered too and its T60 is estimated with
:func:`models.evaluation.t60_estimate` (Schroeder decay after the direct sound, -5..-25 dB, x3), which gives a
reason instead of a number when the decay is too short or too long to measure. With ``compare_real`` the same grid
is rendered through the real effect the model's sidecar says it emulates and measured the same way. The result is a
heatmap PNG and a JSON with every number.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.atomic_files import atomic_path, write_text
from models.audio_io import read_audio
from models.effects import ReferenceEffect, emulated_effect
from models.errors import ReaTimbreError
from models.evaluation import loudness_lufs, t60_estimate
from models.library import NeuralEffect, load_model
from models.resample import resample

MIN_GRID = 2
MAX_GRID = 21
MAX_INPUT_SECONDS = 10.0  # longer inputs are cut: the grid renders the input grid**2 times
IMPULSE_LEVEL = 0.5  # peak of the impulse used for T60
IMPULSE_MIN_SECONDS = 3.0  # window in which the impulse response is measured (at least the model's tail)
ANNOTATE_MAX_GRID = 9  # cells carry their numbers up to this grid size

Grid = list[list[float | None]]


def is_reverb_like(effect: NeuralEffect) -> bool:
    """A model with a tail (a shipped reverb) or steered with the long memory."""
    steered = effect.info.sidecar.get("steered", {})
    return effect.info.tail_seconds > 0 or steered.get("memory") == "long"


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
        audio, sample_rate = read_audio(source)
    mono = audio.mean(axis=0)
    mono = resample(mono, sample_rate, model_rate)
    mono = mono[: int(MAX_INPUT_SECONDS * model_rate)]
    if not np.any(mono):
        raise ReaTimbreError("the explore input is silent; give a recording with sound")
    return mono


def _rounded(values: np.ndarray) -> Grid:
    return [[None if math.isnan(v) else round(float(v), 3) for v in line] for line in values]


def _measure_grid(
    render: Callable[[np.ndarray, dict[str, float]], np.ndarray],
    audio: np.ndarray,
    impulse: np.ndarray | None,
    rate: int,
    names: list[str],
    axes: list[np.ndarray],
    step: Callable[[], None],
) -> dict:
    """Loudness of ``render(audio, knobs)`` and, when ``impulse`` is given, T60 of its impulse response (or the
    reason there is none), at every grid point; nested lists indexed [second knob][first knob]."""
    grid = len(axes[0])
    loudness = np.zeros((grid, grid))
    t60 = np.full((grid, grid), np.nan)
    reasons: list[list[str | None]] = [[None] * grid for _ in range(grid)]
    for row, second in enumerate(axes[1]):
        for column, first in enumerate(axes[0]):
            knobs = {names[0]: float(first), names[1]: float(second)}
            loudness[row, column] = loudness_lufs(render(audio, knobs), rate)
            if impulse is not None:
                decay = t60_estimate(render(impulse, knobs)[0], rate)
                t60[row, column] = np.nan if decay.seconds is None else decay.seconds
                reasons[row][column] = decay.reason
            step()
    return {
        "loudness_lufs": _rounded(loudness),
        "t60_seconds": _rounded(t60) if impulse is not None else None,
        "t60_reasons": reasons if impulse is not None else None,
    }


def _difference(model: dict, real: dict) -> dict:
    """Model minus real: loudness in LU, T60 as a relative error (model / real - 1) where both were measured."""
    loudness = [
        [round(m - r, 3) for m, r in zip(ml, rl, strict=True)]
        for ml, rl in zip(model["loudness_lufs"], real["loudness_lufs"], strict=True)
    ]
    result: dict = {"loudness_lu": loudness, "t60_relative": None}
    if model["t60_seconds"] is not None:
        result["t60_relative"] = [
            [None if m is None or r is None or r <= 0 else round(m / r - 1.0, 4) for m, r in zip(ml, rl, strict=True)]
            for ml, rl in zip(model["t60_seconds"], real["t60_seconds"], strict=True)
        ]
    return result


def agreement(model: dict, real: dict) -> dict:
    """The worst disagreement over the grid: largest loudness difference (LU) and, for a reverb, the largest T60
    relative error over the points where the real effect's T60 was measured (a model point without a T60 there
    counts as unmeasured, never as agreeing)."""
    difference = _difference(model, real)
    summary: dict = {
        "loudness_max_error_lu": round(max(abs(v) for line in difference["loudness_lu"] for v in line), 3),
        "t60_max_relative_error": None,
        "t60_points": None,
        "t60_model_unmeasured": None,
    }
    if difference["t60_relative"] is not None:
        real_measured = [
            (ml, rl)
            for line_m, line_r in zip(model["t60_seconds"], real["t60_seconds"], strict=True)
            for ml, rl in zip(line_m, line_r, strict=True)
            if rl is not None
        ]
        errors = [abs(m / r - 1.0) for m, r in real_measured if m is not None]
        summary["t60_points"] = len(real_measured)
        summary["t60_model_unmeasured"] = sum(m is None for m, _ in real_measured)
        summary["t60_max_relative_error"] = round(max(errors), 4) if errors else None
    return summary


def explore(
    name: str,
    source: str | os.PathLike | np.ndarray,
    grid: int = 9,
    *,
    sample_rate: int | None = None,
    compare_real: bool = False,
    progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> dict:
    """Render ``source`` through effect ``name`` on a ``grid`` x ``grid`` grid of its first two knobs; return the
    loudness (LUFS) of each render and, for a reverb-like model, the T60 of an impulse, as nested lists indexed
    [second knob][first knob]. With ``compare_real``, the same for the real effect the model's sidecar names, the
    difference grids and the worst disagreement."""
    if not isinstance(grid, int) or not MIN_GRID <= grid <= MAX_GRID:
        raise ReaTimbreError(f"grid must be a whole number from {MIN_GRID} to {MAX_GRID}, got {grid!r}")
    effect = load_model(name)
    real_effect: ReferenceEffect | None = emulated_effect(name, effect.info.sidecar) if compare_real else None
    rate = effect.sample_rate
    audio = _load_input(source, sample_rate, rate)[None, :]
    names, axes = _knob_axes(effect, grid)
    reverb = is_reverb_like(effect)
    impulse = None
    if reverb:
        impulse = np.zeros((1, int(max(IMPULSE_MIN_SECONDS, effect.info.tail_seconds) * rate)), np.float32)
        impulse[0, 0] = IMPULSE_LEVEL
    total = grid**2 * (2 if real_effect is not None else 1)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / total)

    def checked(render: Callable[[np.ndarray, dict[str, float]], np.ndarray]) -> Callable:
        def run(signal: np.ndarray, knobs: dict[str, float]) -> np.ndarray:
            if should_cancel is not None and should_cancel():
                raise ReaTimbreError("explore cancelled")
            return render(signal, knobs)

        return run

    model = _measure_grid(checked(effect.process), audio, impulse, rate, names, axes, step)
    result = {
        "model": name,
        "knobs": {names[0]: [round(float(v), 4) for v in axes[0]], names[1]: [round(float(v), 4) for v in axes[1]]},
        "input_seconds": round(audio.shape[1] / rate, 3),
        "input_lufs": round(loudness_lufs(audio, rate), 3),
        **model,
        "impulse_level": IMPULSE_LEVEL if reverb else None,
        "impulse_seconds": round(impulse.shape[1] / rate, 3) if impulse is not None else None,
        "t60_estimator": "Schroeder decay after the direct sound, -5..-25 dB fit x3" if reverb else None,
        "layout": f"rows follow {names[1]} (ascending), columns follow {names[0]} (ascending)",
    }
    if real_effect is not None:
        real_render = checked(lambda signal, knobs: real_effect.process(signal, rate, knobs))
        real = _measure_grid(real_render, audio, impulse, rate, names, axes, step)
        result["real"] = {"effect": real_effect.emulates, "mapping": real_effect.mapping, **real}
        result["difference"] = _difference(model, real)
        result["agreement"] = agreement(model, real)
    return result


def _cell_label(value: float | None, reason: str | None, digits: int) -> str:
    if value is not None:
        return f"{value:.{digits}f}"
    return (reason or "n/a").split(":")[0]


def plot(result: dict, path: Path) -> None:
    """A heatmap PNG of the loudness (and T60) grid, written atomically. With a real-effect comparison, each
    measure is a row of three panels: the model, the real effect on the same colour scale, and their difference.
    A grid point whose T60 could not be estimated is grey and says why (too short / too long)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import patheffects
    from matplotlib import pyplot as plt

    (x_name, x_values), (y_name, y_values) = result["knobs"].items()
    real = result.get("real")
    # (label, unit, grid key, reasons key, colours, difference key, difference unit, decimals)
    measures: list[tuple[str, str, str, str | None, str, str, str, int]] = [
        ("loudness", "dB LUFS", "loudness_lufs", None, "viridis", "loudness_lu", "LU, model - real", 1)
    ]
    if result.get("t60_seconds") is not None:
        measures.append(("T60", "s", "t60_seconds", "t60_reasons", "magma", "t60_relative", "model / real - 1", 2))
    columns = 3 if real is not None else 1
    figure, axes = plt.subplots(len(measures), columns, figsize=(5.2 * columns, 4.4 * len(measures)), squeeze=False)
    extent = (x_values[0], x_values[-1], y_values[0], y_values[-1])
    annotate = len(x_values) <= ANNOTATE_MAX_GRID
    halo = [patheffects.withStroke(linewidth=2, foreground="white")]  # readable on dark and light cells
    for row, (label, unit, key, reason_key, cmap, diff_key, diff_unit, digits) in enumerate(measures):
        panels = [(result["model"], result[key], result.get(reason_key or ""), cmap, unit)]
        if real is not None:
            panels.append((f"real {real['effect']}", real[key], real.get(reason_key or ""), cmap, unit))
            panels.append(("difference", result["difference"][diff_key], None, "coolwarm", diff_unit))
        values = [
            np.array([[np.nan if v is None else v for v in line] for line in grid], dtype=float)
            for _, grid, _, _, _ in panels
        ]
        shared = np.concatenate([v.ravel() for v in values[:2]])
        shared = shared[np.isfinite(shared)]
        for column, ((title, _, reasons, colours, panel_unit), data) in enumerate(zip(panels, values, strict=True)):
            axis = axes[row][column]
            colour_map = matplotlib.colormaps[colours].with_extremes(bad="lightgrey")
            limits: dict = {}
            if column < 2 and shared.size:
                limits = {"vmin": float(shared.min()), "vmax": float(shared.max())}
            elif column == 2 and np.isfinite(data).any():
                reach = float(np.nanmax(np.abs(data))) or 1.0
                limits = {"vmin": -reach, "vmax": reach}
            image = axis.imshow(
                data, origin="lower", extent=extent, aspect="auto", cmap=colour_map, interpolation="nearest", **limits
            )
            figure.colorbar(image, ax=axis, label=f"{label} ({panel_unit})")
            if annotate or reasons is not None:
                xs = np.linspace(extent[0], extent[1], 2 * data.shape[1] + 1)[1::2]
                ys = np.linspace(extent[2], extent[3], 2 * data.shape[0] + 1)[1::2]
                for i, y in enumerate(ys):
                    for j, x in enumerate(xs):
                        reason = reasons[i][j] if reasons is not None else None
                        if not annotate and reason is None:
                            continue
                        value = None if np.isnan(data[i, j]) else float(data[i, j])
                        text = _cell_label(value, reason, 2 if column == 2 else digits)
                        axis.text(x, y, text, ha="center", va="center", fontsize=7, color="black", path_effects=halo)
            axis.set_xlabel(x_name)
            axis.set_ylabel(y_name)
            axis.set_title(f"{title}: {label}", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def write_json(result: dict, path: Path) -> None:
    """The numbers as JSON, written atomically."""
    write_text(path, json.dumps(result, indent=2) + "\n")
