"""Measure how repeatable synth renders are: the noise floor of every metric.

A clip is rendered twice: once in a fresh synth instance, once after a history of other clips (other presets,
effects and parameters). With perfectly repeatable renders every distance between the two would be 0; what
remains is the floor under which the coach's metrics cannot resolve differences.
"""

from __future__ import annotations

import numpy as np

from models import metrics
from models.synth import presets as preset_data
from models.synth.dataset import DatasetConfig, plan_clip
from models.synth.features import CLIP_SAMPLES, clip_features
from models.synth.profiles import load_profile
from models.synth.vital import DEFAULT_SETTLE_SECONDS, VitalSynth


def vital_noise_floor(
    group: str = "all", clips: int = 6, settle_seconds: float = DEFAULT_SETTLE_SECONDS, seed: int = 1
) -> dict[str, float]:
    """Worst case over ``clips`` random dataset clips of each metric between a fresh and a history render.

    Returns ``{"mse", "mae", "lsd_db", "mfcc_distance"}`` maxima, plus ``"max_abs_sample"``.
    """
    config = DatasetConfig(group=group, clips=clips * 2, seed=seed, settle_seconds=settle_seconds)
    profile = load_profile(config.profile)
    render_seconds = CLIP_SAMPLES / config.sample_rate_hz
    worn = VitalSynth(settle_seconds=settle_seconds)
    init_patch = worn.patch_json()
    worst = {"mse": 0.0, "mae": 0.0, "lsd_db": 0.0, "mfcc_distance": 0.0, "max_abs_sample": 0.0}

    def render(synth: VitalSynth, clip_index: int) -> np.ndarray:
        plan = plan_clip(config, clip_index, profile)
        synth.load_patch_json(preset_data.build_preset_patch(plan.preset, init_patch))
        synth.set_controls(profile.controls(plan.settings))
        return synth.render(config.note, config.velocity, config.note_seconds, render_seconds)

    for k in range(clips):
        target, history = 2 * k, 2 * k + 1
        fresh_audio = render(VitalSynth(settle_seconds=settle_seconds), target)
        render(worn, history)  # something else first
        worn_audio = render(worn, target)
        a, b = clip_features(fresh_audio), clip_features(worn_audio)
        report = metrics.spectral_report(a.mel_db80, b.mel_db80, a.mfcc, b.mfcc)
        for key in ("mse", "mae", "lsd_db", "mfcc_distance"):
            worst[key] = max(worst[key], report[key])
        worst["max_abs_sample"] = max(worst["max_abs_sample"], float(np.abs(fresh_audio - worn_audio).max()))
    return worst
