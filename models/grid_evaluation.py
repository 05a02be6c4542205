"""How much closer than the dry input a model gets to its real effect, on a knob grid and unseen material.

At every point of a grid over a model's first two knobs (others at their defaults), each clip of
:mod:`models.other_origin` (sampled instruments, a drum loop, speech and a mix: material of another origin than the
training programs) is rendered through the model and through the real effect its sidecar names. The figure at each
point is "times closer than dry": the MR-STFT distance of the dry input to the real effect's output divided by the
model's (:func:`models.evaluation.mrstft_distance`), each distance counted as at least the one a 0.5 dB level change
makes on that clip (:data:`JUST_NOTICEABLE_DB`): where the real effect leaves a clip unchanged (a compressor whose
threshold the clip never reaches) the dry input is exact, and a model within a just-noticeable difference of it
counts as "as close as dry" (x1) rather than infinitely worse. Below 1 the model is further from the real effect
than doing nothing. The raw distances are in the JSON too. The goals: at least 1 at every point and clip, and a
geometric mean over the grid (and clips) of at least :data:`GOALS` (compressor and overdrive x4, reverb x2). The
loudness difference to the real effect (LU) is reported beside it.

``python -m models.grid_evaluation NAME... --out DIR`` writes ``NAME_grid.json``, ``NAME_grid.md`` and
``NAME_grid.png`` (a heat map per clip) for each model; with ``--record`` it also writes the grid (without the raw
distances) into the model's sidecar as ``metrics.other_origin_grid``, which the shipped-model tests judge against
the goals from its grids (:func:`block_failures`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.atomic_files import atomic_path, write_text
from models.effects import emulated_effect
from models.errors import ReaTimbreError
from models.evaluation import loudness_lufs, mrstft_distance
from models.library import load_model
from models.other_origin import DEFAULT_SECONDS, ORIGINS, other_origin_material

GRID = 5
#: Geometric mean of "times closer than dry" over the grid that each shipped model must reach.
GOALS = {"compressor": 4.0, "overdrive": 4.0, "reverb": 2.0}
MIN_CLOSER = 1.0  # at every grid point and clip: never further from the real effect than the dry input
JUST_NOTICEABLE_DB = 0.5  # distances below the one this level change makes count as this one
_FLOOR = 1e-9  # a model distance of exactly zero still gives a finite ratio


def _geometric_mean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(np.maximum(values, _FLOOR)))))


def evaluate_grid(
    name: str,
    materials: dict[str, np.ndarray],
    grid: int = GRID,
    progress: Callable[[float], None] | None = None,
) -> dict:
    """The grid for model ``name`` on ``materials`` (mono clips at the model's rate, by name). Grids are nested lists
    indexed [second knob][first knob]; the effect's tail (silence after each clip) is rendered too."""
    if not isinstance(grid, int) or grid < 2:
        raise ReaTimbreError(f"the grid needs at least 2 points per knob, got {grid!r}")
    if not materials:
        raise ReaTimbreError("the grid evaluation needs at least one clip")
    model = load_model(name)
    real = emulated_effect(name, model.info.sidecar)
    knobs = model.info.knobs
    if len(knobs) < 2:
        raise ReaTimbreError(f"model {name!r} has {len(knobs)} knob(s); the grid needs two")
    first, second = knobs[:2]
    axes = [[first.value_at(p) for p in np.linspace(0, 1, grid)], [second.value_at(p) for p in np.linspace(0, 1, grid)]]
    rate = model.sample_rate
    tail = np.zeros(int(model.info.tail_seconds * rate), np.float32)
    dry = {clip: np.concatenate([np.asarray(audio, np.float32), tail])[None, :] for clip, audio in materials.items()}
    floor = {
        clip: max(_FLOOR, mrstft_distance(audio * 10 ** (JUST_NOTICEABLE_DB / 20), audio))
        for clip, audio in dry.items()
    }
    shape = (grid, grid)
    per_clip = {
        clip: {key: np.zeros(shape) for key in ("model_mrstft", "dry_mrstft", "closer", "loudness_lu")} for clip in dry
    }
    done, total = 0, grid * grid * len(dry)
    for row, second_value in enumerate(axes[1]):
        for column, first_value in enumerate(axes[0]):
            values = {first.name: float(first_value), second.name: float(second_value)}
            for clip, audio in dry.items():
                target = real.process(audio, rate, values)
                estimate = model.process(audio, values)
                figures = per_clip[clip]
                figures["model_mrstft"][row, column] = mrstft_distance(estimate, target)
                figures["dry_mrstft"][row, column] = mrstft_distance(audio, target)
                figures["closer"][row, column] = max(figures["dry_mrstft"][row, column], floor[clip]) / max(
                    figures["model_mrstft"][row, column], floor[clip]
                )
                figures["loudness_lu"][row, column] = loudness_lufs(estimate, rate) - loudness_lufs(target, rate)
                done += 1
                if progress is not None:
                    progress(done / total)
    closer_all = np.stack([figures["closer"] for figures in per_clip.values()])
    point_mean = np.exp(np.mean(np.log(np.maximum(closer_all, _FLOOR)), axis=0))
    worst_index = np.unravel_index(int(np.argmin(closer_all)), closer_all.shape)
    worst_clip = list(per_clip)[worst_index[0]]
    loudness_all = np.stack([figures["loudness_lu"] for figures in per_clip.values()])
    loud_index = np.unravel_index(int(np.argmax(np.abs(loudness_all))), loudness_all.shape)
    summary = {
        "geometric_mean_closer": round(_geometric_mean(closer_all.ravel().tolist()), 4),
        "worst": {
            "closer": round(float(closer_all[worst_index]), 4),
            "clip": worst_clip,
            first.name: round(float(axes[0][worst_index[2]]), 4),
            second.name: round(float(axes[1][worst_index[1]]), 4),
        },
        "points_further_than_dry": int(np.sum(closer_all < MIN_CLOSER)),
        "points": int(closer_all.size),
        "loudness_max_error_lu": round(float(abs(loudness_all[loud_index])), 3),
        "loudness_worst": {
            "clip": list(per_clip)[loud_index[0]],
            first.name: round(float(axes[0][loud_index[2]]), 4),
            second.name: round(float(axes[1][loud_index[1]]), 4),
        },
    }
    goal = GOALS.get(name)
    result = {
        "model": name,
        "real_effect": real.emulates,
        "knobs": {
            first.name: [round(float(v), 4) for v in axes[0]],
            second.name: [round(float(v), 4) for v in axes[1]],
        },
        "other_knobs": "at their defaults",
        "layout": f"rows follow {second.name} (ascending), columns follow {first.name} (ascending)",
        "measure": "closer = max(MR-STFT(dry, real), floor) / max(MR-STFT(model, real), floor), FFT 32..2048, floor = "
        f"the clip's MR-STFT change under a {JUST_NOTICEABLE_DB} dB level change; loudness_lu = model - real "
        "(ITU-R BS.1770 integrated)",
        "clips": {
            clip: {
                "seconds": round(materials[clip].size / rate, 3),
                "origin": ORIGINS.get(clip, "given"),
                "floor_mrstft": round(floor[clip], 4),
            }
            for clip in materials
        },
        "tail_seconds": model.info.tail_seconds,
        "per_clip": {
            clip: {key: _rounded(grid_values) for key, grid_values in figures.items()}
            for clip, figures in per_clip.items()
        },
        "closer_geometric_mean_over_clips": _rounded(point_mean),
        **summary,
        "goals": {"min_closer": MIN_CLOSER, "geometric_mean_closer": goal},
    }
    result["goal_failures"] = goal_failures(result)
    result["meets_goals"] = not result["goal_failures"]
    return result


def _rounded(values: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 4) for v in line] for line in values]


def goal_failures(result: dict) -> list[str]:
    """What the grid misses of the goals, one line each."""
    failures = []
    if result["points_further_than_dry"]:
        worst = result["worst"]
        failures.append(
            f"further from the real effect than the dry input at {result['points_further_than_dry']} of "
            f"{result['points']} points (worst x{worst['closer']:.2f}: {_where(worst)})"
        )
    goal = result["goals"]["geometric_mean_closer"]
    if goal is not None and result["geometric_mean_closer"] < goal:
        failures.append(f"geometric mean x{result['geometric_mean_closer']:.2f} closer than dry (goal x{goal:g})")
    return failures


SIDECAR_KEY = "other_origin_grid"  # under the sidecar's "metrics"


def sidecar_block(result: dict) -> dict:
    """What the sidecar keeps of a grid result: the knobs, the clips, the "times closer" grids and the verdict."""
    keys = ("real_effect", "knobs", "other_knobs", "layout", "measure", "geometric_mean_closer", "worst")
    grid = len(next(iter(result["knobs"].values())))
    seconds = next(iter(result["clips"].values()))["seconds"]
    return {
        "command": f"python -m models.grid_evaluation {result['model']} --grid {grid} --seconds {seconds:g} --record",
        **{key: result[key] for key in keys},
        "clips": {clip: record["origin"] for clip, record in result["clips"].items()},
        "closer": {clip: figures["closer"] for clip, figures in result["per_clip"].items()},
        "points_further_than_dry": result["points_further_than_dry"],
        "loudness_max_error_lu": result["loudness_max_error_lu"],
        "goals": result["goals"],
        "meets_goals": result["meets_goals"],
    }


def block_failures(block: dict) -> list[str]:
    """What a sidecar block misses of its goals, judged from its grids (not its summary), one line each."""
    try:
        values = [v for grid in block["closer"].values() for line in grid for v in line]
        goals = block["goals"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReaTimbreError(f"the {SIDECAR_KEY} block is malformed: {exc}") from None
    if not values:
        raise ReaTimbreError(f"the {SIDECAR_KEY} block has no grid points")
    failures = []
    further = sum(v < goals["min_closer"] for v in values)
    if further:
        failures.append(f"further from the real effect than the dry input at {further} of {len(values)} points")
    mean = _geometric_mean(values)
    if goals["geometric_mean_closer"] is not None and mean < goals["geometric_mean_closer"]:
        failures.append(f"geometric mean x{mean:.2f} closer than dry (goal x{goals['geometric_mean_closer']:g})")
    return failures


def record(result: dict) -> Path:
    """Write :func:`sidecar_block` into the evaluated model's sidecar (``metrics.other_origin_grid``); returns it."""
    path = load_model(result["model"]).info.weights_path.with_suffix(".json")
    sidecar = json.loads(path.read_text(encoding="utf-8"))
    sidecar.setdefault("metrics", {})[SIDECAR_KEY] = sidecar_block(result)
    write_text(path, json.dumps(sidecar, indent=2) + "\n")
    return path


def _where(point: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in point.items() if key != "closer")


def markdown(result: dict) -> str:
    """The grid as Markdown tables: the geometric mean over clips, then each clip, then the loudness difference."""
    (x_name, x_values), (y_name, y_values) = result["knobs"].items()
    lines = [
        f"# {result['model']} against {result['real_effect']}: times closer than dry",
        "",
        f"{result['measure']}. Rows: {y_name}; columns: {x_name}; other knobs {result['other_knobs']}.",
        "",
        f"- geometric mean: x{result['geometric_mean_closer']:.2f} (goal x{result['goals']['geometric_mean_closer']})",
        f"- worst point: x{result['worst']['closer']:.2f} ({_where(result['worst'])})",
        f"- points further than dry: {result['points_further_than_dry']} of {result['points']}",
        f"- largest loudness difference: {result['loudness_max_error_lu']:.2f} LU ({_where(result['loudness_worst'])})",
        f"- meets the goals: {'yes' if result['meets_goals'] else 'no: ' + '; '.join(result['goal_failures'])}",
        "",
    ]

    def table(title: str, values: list[list[float]], fmt: str) -> None:
        lines.extend([f"## {title}", "", f"| {y_name} \\ {x_name} | " + " | ".join(f"{v:g}" for v in x_values) + " |"])
        lines.append("|---" * (len(x_values) + 1) + "|")
        for y, row in zip(y_values, values, strict=True):
            lines.append(f"| {y:g} | " + " | ".join(format(v, fmt) for v in row) + " |")
        lines.append("")

    table("All clips (geometric mean)", result["closer_geometric_mean_over_clips"], ".2f")
    for clip, figures in result["per_clip"].items():
        table(f"{clip}: {result['clips'][clip]['origin']}", figures["closer"], ".2f")
    for clip, figures in result["per_clip"].items():
        table(f"{clip}: loudness, model - real (LU)", figures["loudness_lu"], "+.2f")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """A heat map PNG of "times closer than dry": one panel per clip and one for their geometric mean, on a log
    colour scale centred on 1 (red: further than dry), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colors, patheffects
    from matplotlib import pyplot as plt

    (x_name, x_values), (y_name, y_values) = result["knobs"].items()
    panels = [("all clips (geometric mean)", result["closer_geometric_mean_over_clips"])]
    panels += [(clip, figures["closer"]) for clip, figures in result["per_clip"].items()]
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.9 * rows), squeeze=False)
    reach = max(4.0, *(max(max(line) for line in values) for _, values in panels))
    scale = colors.LogNorm(vmin=1 / reach, vmax=reach)
    halo = [patheffects.withStroke(linewidth=2, foreground="white")]
    for index, axis in enumerate(axes.ravel()):
        if index >= len(panels):
            axis.axis("off")
            continue
        title, values = panels[index]
        data = np.array(values, dtype=float)
        image = axis.imshow(data, origin="lower", cmap="RdYlGn", norm=scale, aspect="auto", interpolation="nearest")
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                axis.text(j, i, f"{data[i, j]:.1f}", ha="center", va="center", fontsize=7, path_effects=halo)
        axis.set_xticks(range(len(x_values)), [f"{v:g}" for v in x_values], fontsize=7)
        axis.set_yticks(range(len(y_values)), [f"{v:g}" for v in y_values], fontsize=7)
        axis.set_xlabel(x_name)
        axis.set_ylabel(y_name)
        axis.set_title(title, fontsize=9)
        figure.colorbar(image, ax=axis, label="x closer than dry")
    figure.suptitle(
        f"{result['model']} vs {result['real_effect']}: geometric mean x{result['geometric_mean_closer']:.2f}, "
        f"worst x{result['worst']['closer']:.2f}",
        fontsize=10,
    )
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def write_report(result: dict, folder: Path) -> list[Path]:
    """``NAME_grid.json``, ``.md`` and ``.png`` in ``folder`` (created); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{result['model']}_grid"
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    write_text(paths[0], json.dumps(result, indent=2) + "\n")
    write_text(paths[1], markdown(result) + "\n")
    plot(result, paths[2])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Shipped models against their real effects on a knob grid, on material of another origin"
    )
    parser.add_argument("names", nargs="+", metavar="NAME", help="installed models (e.g. compressor overdrive reverb)")
    parser.add_argument("--grid", type=int, default=GRID, help=f"points per knob (default {GRID})")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="length of each clip")
    parser.add_argument("--out", type=Path, default=Path("runs/grid"), help="folder for the reports")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--record", action="store_true", help="also write the grid into each model's sidecar")
    args = parser.parse_args(argv)
    try:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        materials = other_origin_material(args.seconds)
        for name in args.names:
            result = evaluate_grid(name, materials, args.grid)
            paths = write_report(result, args.out)
            if args.record:
                paths.append(record(result))
            verdict = "meets the goals" if result["meets_goals"] else "; ".join(result["goal_failures"])
            print(
                f"{name}: x{result['geometric_mean_closer']:.2f} closer than dry (geometric mean), worst "
                f"x{result['worst']['closer']:.2f}, loudness within {result['loudness_max_error_lu']:.2f} LU: "
                f"{verdict}; wrote {', '.join(str(p) for p in paths)}"
            )
    except ReaTimbreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
