"""``coach-eval``: the paper's tables on held-out targets, beside a random-order baseline.

Held-out targets are drawn with their own seed (never a training family): a preset of the group, a random
non-empty subset of the five effects, random settings (the profile's sampling ranges). The coach starts from
the dry preset. For each target the full loop runs twice — with the next-effect RNN, and with a random order
of the same CNNs (the baseline; same stopping rule) — and we record the paper's four distances after every
step (a run that stopped early keeps its last value, so later per-step changes are 0), the time of the whole
run (renders included), and whether the RNN named the right next effect at each step it took (suggested or
undone): the first effect, in step order, that the target has and the current patch lacks (SerumRNN Table 4,
measured inside the loop).

Beyond the paper: the same tables for targets at other notes, and for targets rendered by another synth
(amsynth, hosted through DawDreamer), where the coach starts from the closest of the 12 Vital presets and
should say "out of reach" rather than make the sound worse. And an out-of-distribution set
(:func:`ood_targets`, :mod:`models.coach.ood`): patches, effect settings and notes drawn by samplers of
another origin than training's, beside the in-distribution set (:func:`vital_targets`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from models.coach.families import FamilyRenderer, subset_effects, subset_mask
from models.coach.steps import next_effect
from models.coach.store import CoachModels
from models.coach.suggest import CoachResult, run_coach
from models.errors import ReaTimbreError
from models.metrics import spectral_report
from models.synth import presets as preset_data
from models.synth.features import CLIP_SAMPLES, clip_features
from models.synth.profiles import load_profile

METRICS = ("mse", "mae", "mfcc_distance", "lsd_db")
METRIC_LABELS = {"mse": "MSE", "mae": "MAE", "mfcc_distance": "MFCC", "lsd_db": "LSD"}
#: The paper's final/initial ratios (hardest group) that our ratios must not exceed.
PAPER_RATIO_GOALS = {"mse": 0.19, "mae": 0.43, "mfcc_distance": 0.43, "lsd_db": 0.47}
ACCURACY_GOAL = 0.985
LATENCY_GOAL_SECONDS = 0.300
EVAL_SEED = 20_261_122


@dataclass(frozen=True)
class EvalTarget:
    """One held-out target: rendered audio, where the coach starts, and (for Vital targets) the truth."""

    audio: np.ndarray
    preset: str
    note: int
    mask: int | None  # the target's effects (None: not a Vital render)
    patch: dict[str, Any] | None = None  # the dry start patch when it is not a shipped preset


@dataclass
class RunRecord:
    """Distances after 0..5 steps (index 0 = start), run time, steps kept, RNN picks vs. labels."""

    curves: dict[str, list[float]]
    seconds: float
    steps: int
    out_of_reach: bool
    picks: list[tuple[int, bool]] = field(default_factory=list)  # (step number, RNN pick was right)


def _curves(result: CoachResult, max_steps: int) -> dict[str, list[float]]:
    snapshots = [result.initial] + [s.after for s in result.steps]
    snapshots += [snapshots[-1]] * (max_steps + 1 - len(snapshots))
    return {m: [float(s.metrics[m]) for s in snapshots] for m in METRICS}


def _picks(result: CoachResult, mask: int | None, step_order: tuple[str, ...]) -> list[tuple[int, bool]]:
    if mask is None:
        return []
    out, used = [], 0
    for step in result.tried:
        label = next_effect(mask, used, step_order)
        if label is None:
            break
        out.append((step.number, step.effect == label))
        used |= subset_mask([step.effect])
    return out


def vital_targets(group: str, count: int, note: int, seed: int = EVAL_SEED) -> Iterator[EvalTarget]:
    """``count`` held-out Vital targets of a preset group (``all`` for all 12) at ``note``."""
    profile = load_profile("vital")
    presets = preset_data.preset_names(None if group == "all" else group)
    renderer = FamilyRenderer(profile)
    for i in range(count):
        rng = np.random.default_rng([seed, note, i])
        preset = presets[i % len(presets)]
        mask = int(rng.integers(1, 32))
        settings = {name: profile.effect(name).sample(rng) for name in subset_effects(mask)}
        renderer.load_preset(preset)
        yield EvalTarget(renderer.render(settings, note), preset, note, mask)


def ood_targets(count: int, seed: int = EVAL_SEED) -> Iterator[EvalTarget]:
    """``count`` out-of-distribution Vital targets (:mod:`models.coach.ood`: Vital's init patch and random
    oscillator and filter patches, effect values from other laws, notes C2..C6); the coach starts from each
    target's dry patch."""
    from models.coach.ood import ood_draws

    profile = load_profile("vital")
    renderer = FamilyRenderer(profile)
    init_patch = renderer.synth.patch_json()
    for draw in ood_draws(profile, init_patch, count, seed):
        renderer.load_patch(draw.patch.patch)
        audio = renderer.render(draw.settings, draw.note)
        yield EvalTarget(audio, f"ood-{draw.patch.kind}", draw.note, subset_mask(draw.settings), draw.patch.patch)


AMSYNTH_RANDOM_CONTROLS = (
    "osc1_waveform", "osc2_waveform", "osc_mix", "filter_cutoff", "filter_resonance", "distortion_crunch",
    "reverb_wet", "osc2_detune", "amp_sustain",
)  # fmt: skip


def amsynth_targets(count: int, note: int = 48, seed: int = EVAL_SEED) -> Iterator[EvalTarget]:
    """``count`` amsynth sounds (random waveforms, filter, crunch, reverb); the coach starts from the closest
    of the 12 Vital presets (lowest spectral MSE)."""
    from models.synth.plugin import AMSYNTH_VST_PATH, PluginSynth

    if not AMSYNTH_VST_PATH.exists():
        raise ReaTimbreError(f"amsynth is not installed ({AMSYNTH_VST_PATH}); `python3 install.py --dev` adds it")
    amsynth = PluginSynth(AMSYNTH_VST_PATH)
    defaults = {name: amsynth.get_control(name) for name in AMSYNTH_RANDOM_CONTROLS}
    renderer = FamilyRenderer(load_profile("vital"))
    dry = {}
    for preset in preset_data.preset_names():
        renderer.load_preset(preset)
        dry[preset] = clip_features(renderer.render({}, note))
    for i in range(count):
        rng = np.random.default_rng([seed, 7, i])
        values = {name: float(np.round(rng.uniform(0.0, 1.0), 2)) for name in AMSYNTH_RANDOM_CONTROLS}
        values["filter_cutoff"] = float(np.round(rng.uniform(0.4, 1.0), 2))
        amsynth.set_controls({**defaults, **values})
        audio = amsynth.render(note, 1.0, 1.0, CLIP_SAMPLES / amsynth.sample_rate_hz)
        features = clip_features(audio)
        preset = min(
            dry,
            key=lambda p: float(spectral_report(dry[p].mel_db80, features.mel_db80, dry[p].mfcc, features.mfcc)["mse"]),
        )
        yield EvalTarget(audio, preset, note, None)


def evaluate_targets(
    models: CoachModels,
    targets: Iterator[EvalTarget],
    max_steps: int = 5,
    seed: int = EVAL_SEED,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[RunRecord], list[RunRecord]]:
    """(coach records, random-order baseline records) for every target."""
    renderer = FamilyRenderer(load_profile(models.profile))
    rng = np.random.default_rng(seed)
    coach_runs, baseline_runs = [], []

    def random_choice(options: list[str]) -> str:
        return options[int(rng.integers(len(options)))]

    for n, target in enumerate(targets, 1):
        records = []
        for choose in (None, random_choice):
            if target.patch is not None:
                renderer.load_patch(target.patch)
            else:
                renderer.load_preset(target.preset)
            renderer.synth.set_controls(renderer.profile.controls({}))
            started = time.perf_counter()
            result = run_coach(models, renderer.synth, target.audio, target.note, max_steps, choose=choose)
            seconds = time.perf_counter() - started
            picks = _picks(result, target.mask, models.step_order) if choose is None else []
            records.append(
                RunRecord(_curves(result, max_steps), seconds, len(result.steps), result.out_of_reach, picks)
            )
        coach_runs.append(records[0])
        baseline_runs.append(records[1])
        if progress is not None:
            progress(n)
    return coach_runs, baseline_runs


class MetricSummary(TypedDict):
    """One metric's means over a group of runs (see :func:`summarize`)."""

    initial: float
    final: float
    change: float
    per_step: list[float]
    ratio: float
    target_ratio: float  # the mean of per-target final/initial ratios (the paper's "ratio" is of the means)


def summarize(records: list[RunRecord], max_steps: int = 5) -> dict[str, MetricSummary]:
    """Per metric: mean initial, final, change, per-step changes, final/initial ratio of means and mean of
    per-target ratios."""
    out: dict[str, MetricSummary] = {}
    for metric in METRICS:
        curves = np.array([r.curves[metric] for r in records], dtype=np.float64)
        means = curves.mean(axis=0)
        out[metric] = {
            "initial": float(means[0]),
            "final": float(means[-1]),
            "change": float(means[-1] - means[0]),
            "per_step": [float(x) for x in np.diff(means)[:max_steps]],
            "ratio": float(means[-1] / means[0]) if means[0] > 0 else float("nan"),
            "target_ratio": float(np.mean(curves[:, -1] / np.maximum(curves[:, 0], 1e-12))),
        }
    return out


def accuracy_by_step(records: list[RunRecord], max_steps: int = 5) -> dict[str, float | None]:
    """In-loop next-effect accuracy per step number and overall (None where no step had a label)."""
    out: dict[str, float | None] = {}
    all_picks = [p for r in records for p in r.picks]
    for step in range(1, max_steps + 1):
        marks = [right for number, right in all_picks if number == step]
        out[str(step)] = float(np.mean(marks)) if marks else None
    out["all"] = float(np.mean([right for _, right in all_picks])) if all_picks else None
    return out


def timing(records: list[RunRecord]) -> dict[str, float]:
    seconds = np.array([r.seconds for r in records])
    return {"mean_ms": float(1000 * seconds.mean()), "p95_ms": float(1000 * np.percentile(seconds, 95))}


def format_group_table(title: str, coach: list[RunRecord], baseline: list[RunRecord], max_steps: int = 5) -> str:
    """The paper's Tables 1/5/6 layout, plus final/initial ratios beside the baseline's and the paper's goal."""
    ours, base = summarize(coach, max_steps), summarize(baseline, max_steps)
    step_head = " ".join(f"{k:>8d}" for k in range(1, max_steps + 1))
    lines = [
        f"{title} — {len(coach)} held-out targets",
        f"{'Metric':<6} {'Init.':>8} {'Final':>8} {'Δ':>8} | Δ per step {step_head} | "
        f"{'ratio':>6} {'random':>6} {'goal':>5}",
    ]
    for metric in METRICS:
        o, b = ours[metric], base[metric]
        scale = "{:8.2f}" if metric in ("mfcc_distance", "lsd_db") else "{:8.4f}"
        per_step = " ".join(scale.format(x) for x in o["per_step"])
        goal = PAPER_RATIO_GOALS[metric]
        mark = "ok" if o["ratio"] <= goal else "MISS"
        lines.append(
            f"{METRIC_LABELS[metric]:<6} {scale.format(o['initial'])} {scale.format(o['final'])} "
            f"{scale.format(o['change'])} |            {per_step} | {o['ratio']:6.3f} {b['ratio']:6.3f} "
            f"{goal:5.2f} {mark}"
        )
    kept = np.mean([r.steps for r in coach])
    reach = np.mean([r.out_of_reach for r in coach])
    lines.append(
        f"steps kept {kept:.2f} on average; flagged out of reach {100 * reach:.0f} %; "
        f"run time (renders included) mean {timing(coach)['mean_ms']:.0f} ms, p95 {timing(coach)['p95_ms']:.0f} ms"
    )
    return "\n".join(lines)


def format_accuracy_table(groups: dict[str, list[RunRecord]], teacher_forced: dict | None, max_steps: int = 5) -> str:
    """Table 4 layout: next-effect accuracy per step and overall, per group (in the loop)."""
    names = list(groups)
    lines = ["Next-effect accuracy (in the loop; label = first missing effect in step order)"]
    lines.append(
        f"{'Step':<5} "
        + " ".join(f"{n[:24]:>24}" for n in names)
        + ("   held-out teacher-forced" if teacher_forced else "")
    )
    accuracies = {n: accuracy_by_step(groups[n], max_steps) for n in names}
    for key in [*(str(k) for k in range(1, max_steps + 1)), "all"]:
        cells = " ".join(
            f"{'-' if accuracies[n][key] is None else format(accuracies[n][key], '.3f'):>24}" for n in names
        )
        extra = ""
        if teacher_forced:
            value = teacher_forced["per_step"].get(key) if key != "all" else teacher_forced.get("all")
            extra = f"   {value:.3f}" if value is not None else ""
        lines.append(f"{key:<5} {cells}{extra}")
    lines.append(f"goal: >= {ACCURACY_GOAL}")
    return "\n".join(lines)


#: The out-of-distribution goals (issue 26): mean final/initial ratios, as the paper's hardest group.
OOD_GOALS = {"mse": 0.19, "lsd_db": 0.47, "mfcc_distance": 0.43}


def by_start(records: list[RunRecord], starts: list[str], max_steps: int = 5) -> dict[str, dict[str, float]]:
    """Final/initial ratios (MSE, LSD, MFCC) and target count per start patch (preset or OOD patch kind)."""
    if len(records) != len(starts):
        raise ValueError("one start name per record")
    out = {}
    for name in dict.fromkeys(starts):
        group = [r for r, s in zip(records, starts, strict=True) if s == name]
        summary = summarize(group, max_steps)
        out[name] = {metric: summary[metric]["ratio"] for metric in OOD_GOALS} | {"targets": float(len(group))}
    return out


def format_ood_table(
    in_distribution: list[RunRecord], out_of_distribution: list[RunRecord], ood_starts: list[str], max_steps: int = 5
) -> str:
    """Mean final/initial ratios on the in- and out-of-distribution sets beside the goals, and per OOD patch kind."""
    ours, theirs = summarize(in_distribution, max_steps), summarize(out_of_distribution, max_steps)
    kinds = by_start(out_of_distribution, ood_starts, max_steps)
    kind_names = list(kinds)
    lines = [
        f"Final/initial means, in distribution ({len(in_distribution)}) and out of distribution "
        f"({len(out_of_distribution)}): ratios of the mean distances (the paper's), per OOD patch kind, and the "
        "mean of per-target ratios",
        f"{'Metric':<6} {'in':>7} {'out':>7} {'goal':>6}      "
        + " ".join(f"{k[:14]:>14}" for k in kind_names)
        + "   per-target mean: in    out",
    ]
    for metric, goal in OOD_GOALS.items():
        mark = "ok" if theirs[metric]["ratio"] <= goal else "MISS"
        cells = " ".join(f"{kinds[k][metric]:14.3f}" for k in kind_names)
        lines.append(
            f"{METRIC_LABELS[metric]:<6} {ours[metric]['ratio']:7.3f} {theirs[metric]['ratio']:7.3f} {goal:6.2f} "
            f"{mark:<4} {cells}   {ours[metric]['target_ratio']:19.3f} {theirs[metric]['target_ratio']:6.3f}"
        )
    lines.append(
        f"{'count':<6} {'':>7} {'':>7} {'':>6}      " + " ".join(f"{int(kinds[k]['targets']):14d}" for k in kind_names)
    )
    return "\n".join(lines)
