"""The suggestion loop: from the current patch towards a target, one effect at a time (SerumRNN).

For each step: the next-effect RNN ranks the effects not yet used, the chosen effect's CNN predicts its
settings from (target, current), the settings are applied to the synth, the patch is re-rendered and the
paper's distances to the target are measured. The loop takes up to ``max_steps`` steps and suggests those
up to the closest sound it reached; the steps after it are undone (SerumRNN stops "just before the second
step that makes the metric worse"; looking further finds the cases where distortion, say, sounds worse on its
own until the reverb and phaser after it are on). So a run never ends worse than it started, and a step that
is worse on its own stays only when a later one more than makes up for it.
When what is left is far from the target (no step helps, or the steps remove less than half of the distance),
the result says the target is out of reach instead of making the sound worse.

:func:`coach_json` writes a result in the shape :meth:`extension.coach_steps.CoachPlan.from_coach_json`
reads, with everything else the REAPER bridge and a user need (profile, parameter names, normalised values,
display text, MIDI CCs, metrics per step).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from models.coach.store import CoachModels
from models.errors import ReaTimbreError
from models.metrics import spectral_report
from models.synth.base import Synth
from models.synth.features import CLIP_SAMPLES, ClipFeatures, clip_features
from models.synth.profiles import EFFECT_NAMES, EffectProfile, load_profile

COACH_JSON_FORMAT = "reatimbre-coach/1"
#: A step must lower the spectral MSE by at least this fraction to count as helping.
MIN_RELATIVE_GAIN = 0.005
#: Settings tried per step: the CNN's prediction and its runner-up class of a categorical parameter.
DEFAULT_CANDIDATES = 2
#: Initial MSE below which the patch already sounds like the target (renders of one patch differ less).
ALREADY_THERE_MSE = 1e-4
#: Final MSE (dB-mel/80 units) above which a target is out of reach however much the steps helped.
OUT_OF_REACH_MSE = 0.02
#: Final MSE below which what is left counts as close to the target.
CLOSE_MSE = 0.005
#: Steps that leave more than this share of the initial MSE (and more than CLOSE_MSE) mean the target is out of
#: reach: they remove ~90 % on in-domain Vital targets, ~40 % on amsynth's (docs/coach.md, coach-eval).
OUT_OF_REACH_RATIO = 0.5


@dataclass
class Snapshot:
    """One rendered state: audio (2, samples), features and distances to the target."""

    audio: np.ndarray
    features: ClipFeatures
    metrics: dict[str, float]


@dataclass
class Step:
    """One suggested step (applied, or tried and undone)."""

    number: int
    effect: str
    values: dict[str, float]
    description: str
    probability: float
    before: dict[str, float]
    after: Snapshot
    kept: bool
    seconds: float


@dataclass
class CoachResult:
    """What a coach run found."""

    profile: EffectProfile
    note: int
    target: Snapshot
    initial: Snapshot
    steps: list[Step]
    undone: list[Step]  # steps tried after the closest sound, in order (none of them is suggested)
    stopped_because: str
    out_of_reach: bool
    message: str
    seconds: float
    step_order: tuple[str, ...]
    already_on: tuple[str, ...] = ()
    changes: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def rejected(self) -> Step | None:
        """The first step tried and not suggested."""
        return self.undone[0] if self.undone else None

    @property
    def tried(self) -> list[Step]:
        """Every step the loop took, suggested or undone, in order."""
        return self.steps + self.undone

    @property
    def final(self) -> Snapshot:
        return self.steps[-1].after if self.steps else self.initial


def _measure(audio: np.ndarray, target: ClipFeatures) -> Snapshot:
    features = clip_features(audio)
    metrics = spectral_report(features.mel_db80, target.mel_db80, features.mfcc, target.mfcc)
    return Snapshot(audio, features, metrics)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def effects_on(synth: Synth, profile: EffectProfile) -> tuple[str, ...]:
    """Effects the patch already has switched on (the coach leaves them as they are)."""
    out = []
    for effect in profile.effects:
        switch = effect.switch
        if switch.control and abs(synth.get_control(switch.control) - switch.on) < 1e-6:
            out.append(effect.name)
    return tuple(out)


class EffectRanker:
    """The next-effect RNN over one coach run: each (target, current) pair is encoded once, when first needed."""

    def __init__(self, models: CoachModels, target: ClipFeatures) -> None:
        self.rnn = models.next_effect
        self.target_mel = _tensor(target.mel_db80)[None]
        self.currents: list[ClipFeatures] = []
        self.encoded: list[torch.Tensor] = []

    def add(self, current: ClipFeatures) -> None:
        """The sound after the latest step (the first one added is the starting patch)."""
        self.currents.append(current)

    @torch.no_grad()
    def rank(self, used: list[set[str]]) -> list[tuple[str, float]]:
        """Effects not used yet, most likely next first, with the RNN's probabilities; ``used[i]`` holds the
        effects used before current ``i``."""
        for current in self.currents[len(self.encoded) :]:
            self.encoded.append(self.rnn.encode(self.target_mel, _tensor(current.mel_db80)[None]))
        one_hots = _tensor(np.array([[float(name in u) for name in EFFECT_NAMES] for u in used]))[None]
        lengths = torch.tensor([len(self.encoded)])
        logits = self.rnn.classify(torch.cat(self.encoded)[None], one_hots, lengths)[0]
        probabilities = torch.softmax(logits, dim=-1)
        ranked = sorted(range(len(EFFECT_NAMES)), key=lambda i: -float(probabilities[i]))
        return [(EFFECT_NAMES[i], float(probabilities[i])) for i in ranked if EFFECT_NAMES[i] not in used[-1]]


@torch.no_grad()
def predict_settings(
    models: CoachModels, effect: str, target: ClipFeatures, current: ClipFeatures, count: int = 1
) -> list[dict[str, float]]:
    """Up to ``count`` paper-space settings of ``effect`` that move ``current`` towards ``target``, best first
    (the CNN's prediction, then its runner-up class for a categorical parameter such as the distortion type)."""
    cnn = models.effect_cnns[effect]
    inputs = (
        _tensor(target.mel_db80)[None],
        _tensor(current.mel_db80)[None],
        _tensor(target.mfcc)[None],
        _tensor(current.mfcc)[None],
    )
    if count > 1 and hasattr(cnn, "predict_candidates"):
        return cnn.predict_candidates(*inputs, count=count)
    return cnn.predict(*inputs)[:1]


def run_coach(
    models: CoachModels,
    synth: Synth,
    target_audio: np.ndarray,
    note: int = 48,
    max_steps: int = 5,
    velocity: float = 1.0,
    choose: Callable[[list[str]], str] | None = None,
    stop_when_worse: bool = True,
    candidates: int = DEFAULT_CANDIDATES,
) -> CoachResult:
    """Coach ``synth``'s current patch towards ``target_audio`` (2, CLIP_SAMPLES at 44.1 kHz).

    ``choose`` replaces the RNN's pick (it gets the unused effects; the random-order baseline uses it);
    ``stop_when_worse=False`` suggests every step taken, closer or not (for timing all ``max_steps`` steps).
    ``candidates`` > 1 also renders the CNN's runner-up class of a categorical parameter and keeps whichever
    lands closer (one more render, for distortion steps only). The synth is left holding the suggested patch
    (the suggested steps applied, the undone ones put back).
    """
    if not 1 <= max_steps <= len(EFFECT_NAMES):
        raise ReaTimbreError(f"--max-steps must be 1..{len(EFFECT_NAMES)}, got {max_steps}")
    if target_audio.shape != (2, CLIP_SAMPLES):
        raise ReaTimbreError(f"target clip must be (2, {CLIP_SAMPLES}), got {target_audio.shape}")
    started = time.perf_counter()
    profile = load_profile(models.profile)
    render_seconds = CLIP_SAMPLES / synth.sample_rate_hz
    target_features = clip_features(target_audio)
    target = Snapshot(target_audio, target_features, {})

    def render() -> Snapshot:
        return _measure(synth.render(note, velocity, 1.0, render_seconds), target_features)

    current = render()
    initial = current
    already_on = effects_on(synth, profile)
    used = [set(already_on)]
    ranker = EffectRanker(models, target_features)
    ranker.add(current.features)
    tried: list[tuple[Step, dict[str, float]]] = []  # every step taken, with the controls it changed
    best, best_count = current, 0  # the closest sound so far, and how many steps lead to it
    for number in range(1, max_steps + 1):
        if len(used[-1]) == len(EFFECT_NAMES):
            break
        step_started = time.perf_counter()
        if choose is None:
            effect_name, probability = ranker.rank(used)[0]
        else:
            effect_name, probability = choose([n for n in EFFECT_NAMES if n not in used[-1]]), math.nan
        effect = profile.effect(effect_name)
        previous: dict[str, float] = {}
        after = None
        for candidate in predict_settings(models, effect_name, target_features, current.features, candidates):
            controls = effect.controls(candidate)
            previous = previous or {name: synth.get_control(name) for name in controls}
            synth.set_controls(controls)
            rendered = render()
            if after is None or rendered.metrics["mse"] < after.metrics["mse"]:
                after, values, chosen = rendered, candidate, controls
        assert after is not None, "predict_settings gives at least the CNN's own prediction"
        if chosen is not controls:  # an earlier candidate won: put its settings back
            synth.set_controls(chosen)
        kept = after.metrics["mse"] < best.metrics["mse"] * (1.0 - MIN_RELATIVE_GAIN) or not stop_when_worse
        step = Step(
            number,
            effect_name,
            values,
            effect.describe(values),
            probability,
            dict(current.metrics),
            after,
            kept,
            time.perf_counter() - step_started,
        )
        tried.append((step, previous))
        if kept:
            best, best_count = after, len(tried)
        current = after
        ranker.add(after.features)
        used.append(used[-1] | {effect_name})
    for _, previous in reversed(tried[best_count:]):  # undo the steps after the closest sound, newest first
        synth.set_controls(previous)
    steps = [step for step, _ in tried[:best_count]]
    undone = [step for step, _ in tried[best_count:]]
    if len(undone) == 1:
        stopped_because = f"step {undone[0].number} ({undone[0].effect}) would not bring the sound closer"
    elif undone:
        stopped_because = f"steps {undone[0].number}-{undone[-1].number} would not bring the sound closer"
    elif len(used[-1]) == len(EFFECT_NAMES):
        stopped_because = "all effects used"
    else:
        stopped_because = f"{max_steps} steps"
    initial_mse, final_mse = initial.metrics["mse"], best.metrics["mse"]
    out_of_reach = final_mse > OUT_OF_REACH_MSE or (
        final_mse > CLOSE_MSE and final_mse > OUT_OF_REACH_RATIO * initial_mse
    )
    if not steps and initial_mse < ALREADY_THERE_MSE:
        message = f"the patch already sounds like the target (MSE×100 {100 * final_mse:.3f}); nothing to change"
    elif not steps and not out_of_reach:
        message = (
            f"the patch is already close to the target (MSE×100 {100 * final_mse:.2f}); no effect step brings it closer"
        )
    elif not steps:
        message = (
            f"target out of reach: no effect step brings the patch closer (MSE×100 {100 * final_mse:.2f}); "
            "try another preset or note"
        )
    elif out_of_reach:
        message = (
            f"target partly out of reach: {len(steps)} step(s) bring MSE×100 from "
            f"{100 * initial_mse:.2f} to {100 * final_mse:.2f}, still far from the target; "
            "it may need other oscillators, filters or notes than these five effects"
        )
    else:
        message = f"{len(steps)} step(s) bring MSE×100 from {100 * initial_mse:.2f} to {100 * final_mse:.2f}"
    result = CoachResult(
        profile,
        note,
        target,
        initial,
        steps,
        undone,
        stopped_because,
        out_of_reach,
        message,
        time.perf_counter() - started,
        models.step_order,
        already_on,
    )
    result.changes = [step_changes(synth, profile, step) for step in steps]
    return result


_NUMBER = re.compile(r"^(-?\d+\.\d+)(.*)$")


def tidy_text(text: str) -> str:
    """Vital's control text with trailing zeros dropped ("0.500000 dB" → "0.5 dB")."""
    match = _NUMBER.match(text.strip())
    if not match:
        return text.strip()
    return f"{float(match.group(1)):g}{match.group(2)}"


def _host_index(synth: Synth, control: str | None, profile_index: int | None) -> int:
    if profile_index is not None:
        return int(profile_index)
    if control is None:
        raise ReaTimbreError("profile parameter has neither a control name nor a host index")
    return synth.host_index(control)


def step_changes(synth: Synth, profile: EffectProfile, step: Step) -> list[dict[str, Any]]:
    """The plug-in parameter changes of one step, in the REAPER bridge's ``changes`` shape.

    Switch first, then the effect's fixed settings, then its parameters; each with the host-normalised value,
    display text and (for the switch and parameters) the profile's MIDI CC. ``param_index`` is the profile's
    host index, else the synth's host parameter order (for Vital: by version added, then name); the bridge also
    matches by ``param_name``.
    """
    effect = profile.effect(step.effect)
    rows: list[dict[str, Any]] = []

    def add(control: str | None, name: str, value: float, display: str, cc: int | None, index: int | None) -> None:
        rows.append(
            {
                "fx_name": profile.plugin_name,
                "fx_index": None,
                "param_index": _host_index(synth, control, index),
                "param_name": name,
                "control": control,
                "value": round(min(max(value, 0.0), 1.0), 6),
                "display": display,
                "cc": cc,
                "channel": 0,
            }
        )

    switch = effect.switch
    if switch.control:
        add(switch.control, switch.display_name, synth.normalized_value(switch.control), "On", switch.midi_cc, None)
    elif switch.host_index is not None:
        add(None, switch.display_name, switch.on, "On", switch.midi_cc, switch.host_index)
    for control in effect.fixed:
        display_name = getattr(synth, "display_name", lambda c: c)(control)
        add(control, display_name, synth.normalized_value(control), tidy_text(synth.control_text(control)), None, None)
    for p in effect.parameters:
        value = step.values[p.name]
        add(p.control, p.display_name, p.host_normalized(value), p.display_text(value), p.midi_cc, p.host_index)
    return rows


def _round_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in metrics.items() if math.isfinite(v)}


def coach_json(result: CoachResult, **context: Any) -> dict[str, Any]:
    """The result as the coach JSON (see the module docstring); ``context`` adds top-level fields."""
    steps = []
    for step, changes in zip(result.steps, result.changes, strict=True):
        metrics = _round_metrics(step.after.metrics)
        metrics.update({f"{k}_before": v for k, v in _round_metrics(step.before).items()})
        steps.append(
            {
                "number": step.number,
                "effect": step.effect,
                "description": step.description,
                "probability": None if math.isnan(step.probability) else round(step.probability, 4),
                "helped": step.kept,
                "values": step.values,
                "metrics": metrics,
                "seconds": round(step.seconds, 4),
                "changes": changes,
            }
        )
    rejected = None
    if result.rejected is not None:
        rejected = {
            "number": result.rejected.number,
            "effect": result.rejected.effect,
            "description": result.rejected.description,
            "values": result.rejected.values,
            "metrics": _round_metrics(result.rejected.after.metrics),
        }
    return {
        "format": COACH_JSON_FORMAT,
        "profile": result.profile.synth,
        "plugin_name": result.profile.plugin_name,
        **context,
        "note": result.note,
        "step_order": list(result.step_order),
        "already_on": list(result.already_on),
        "initial_metrics": _round_metrics(result.initial.metrics),
        "final_metrics": _round_metrics(result.final.metrics),
        "stopped_because": result.stopped_because,
        "out_of_reach": result.out_of_reach,
        "message": result.message,
        "seconds": round(result.seconds, 4),
        "steps": steps,
        "rejected_step": rejected,
    }
