"""Measure how repeatable synth renders are: the noise floor of every metric.

A clip is rendered twice: once in a fresh synth instance, once in a worn instance right after another clip
(other preset, effects and parameters). With perfectly repeatable renders every distance between the two would
be 0; what remains is the floor under which the coach's metrics cannot resolve differences.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models import metrics
from models.rates import SAMPLE_RATE_HZ
from models.synth import presets as preset_data
from models.synth.base import Synth
from models.synth.dataset import CLIPS_PER_DRAW, DatasetConfig, plan_clip
from models.synth.features import CLIP_SAMPLES, clip_features
from models.synth.profiles import load_profile
from models.synth.vital import DEFAULT_SETTLE_SECONDS, VitalSynth

METRIC_KEYS = ("mse", "mae", "lsd_db", "mfcc_distance")


def history_noise_floor(
    make_synth: Callable[[], Synth], prepare: Callable[[Synth, int], None], clips: int, note: int = 48
) -> dict[str, float]:
    """Worst case over ``clips`` of each metric between a fresh render of clip ``2k`` and a render of it in a
    worn instance right after clip ``2k + 1``; ``prepare(synth, i)`` sets a synth up for clip ``i``.

    Returns the maxima of ``mse``, ``mae``, ``lsd_db``, ``mfcc_distance`` and ``max_abs_sample``.
    """
    render_seconds = CLIP_SAMPLES / SAMPLE_RATE_HZ
    worn = make_synth()
    worst = dict.fromkeys((*METRIC_KEYS, "max_abs_sample"), 0.0)

    def render(synth: Synth, clip_index: int) -> np.ndarray:
        prepare(synth, clip_index)
        return synth.render(note, 1.0, 1.0, render_seconds)

    for k in range(clips):
        fresh_audio = render(make_synth(), 2 * k)
        render(worn, 2 * k + 1)  # something else first
        worn_audio = render(worn, 2 * k)
        a, b = clip_features(fresh_audio), clip_features(worn_audio)
        report = metrics.spectral_report(a.mel_db80, b.mel_db80, a.mfcc, b.mfcc)
        for key in METRIC_KEYS:
            worst[key] = max(worst[key], report[key])
        worst["max_abs_sample"] = max(worst["max_abs_sample"], float(np.abs(fresh_audio - worn_audio).max()))
    return worst


def vital_noise_floor(
    group: str = "all", clips: int = 6, settle_seconds: float = DEFAULT_SETTLE_SECONDS, seed: int = 1
) -> dict[str, float]:
    """The noise floor on random ``coach-data`` clips of a preset group rendered by :class:`VitalSynth`."""
    config = DatasetConfig(group=group, clips=CLIPS_PER_DRAW * 48, seed=seed, settle_seconds=settle_seconds)
    profile = load_profile(config.profile)
    init_patch = VitalSynth(settle_seconds=settle_seconds).patch_json()

    def prepare(synth: Synth, clip_index: int) -> None:
        assert isinstance(synth, VitalSynth)
        picked = int(np.random.default_rng([seed, clip_index]).integers(config.clips))  # any draw and subset
        plan = plan_clip(config, picked, profile)
        synth.load_patch_json(preset_data.build_preset_patch(plan.preset, init_patch))
        synth.set_controls(profile.controls(plan.settings))

    return history_noise_floor(lambda: VitalSynth(settle_seconds=settle_seconds), prepare, clips, config.note)


def plugin_noise_floor(
    make_synth: Callable[[], Synth], controls: list[str], clips: int = 4, seed: int = 1
) -> dict[str, float]:
    """The noise floor of a hosted plug-in with the named controls set to random normalised values per clip."""

    def prepare(synth: Synth, clip_index: int) -> None:
        rng = np.random.default_rng([seed, clip_index])
        synth.set_controls({name: float(rng.uniform(0.0, 1.0)) for name in controls})

    return history_noise_floor(make_synth, prepare, clips)
