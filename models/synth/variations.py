"""Training-side variations of the coach's presets (``coach-data --variation``): wider base patches.

A varied draw keeps its preset's oscillators and wavetables (the named single-cycle shapes of
:mod:`models.synth.presets`) and redraws a few of the preset's own controls: unison voices and detune,
oscillator levels, the amp envelope, and filter 1 — a filter the preset has gets another cutoff (±24 semitones)
and resonance; a preset without one gets, half the time, an Analog or Ladder low-pass (12 or 24 dB).
It never uses Vital's init patch, random spectra, oscillator warps or the other filter models: those belong to
the coach's out-of-distribution evaluation (:mod:`models.coach.ood`), which must stay of another origin.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

#: Filter models a varied preset may gain (Vital's Analog and Ladder), low-pass slopes 12 / 24 dB.
VARIATION_FILTER_MODELS = (0, 2)


def vary_preset_patch(patch: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A copy of a preset's ``.vital`` JSON with its unison, levels, amp envelope and filter 1 redrawn."""
    out = json.loads(json.dumps(patch))
    settings = out["settings"]
    settings["osc_1_unison_voices"] = float(rng.integers(1, 6))
    settings["osc_1_unison_detune"] = float(rng.uniform(0.5, 5.0))
    settings["osc_1_level"] = float(rng.uniform(0.5, 0.9))
    if settings.get("osc_2_on", 0.0) >= 0.5:
        settings["osc_2_level"] = float(rng.uniform(0.3, 0.8))
    settings["env_1_attack"] = float(rng.uniform(0.0, 0.3))
    settings["env_1_decay"] = float(rng.uniform(0.4, 1.5))
    settings["env_1_sustain"] = float(rng.uniform(0.3, 1.0))
    if settings.get("filter_1_on", 0.0) >= 0.5:
        cutoff = float(settings["filter_1_cutoff"]) + rng.uniform(-24.0, 24.0)
        settings["filter_1_cutoff"] = float(np.clip(cutoff, 20.0, 136.0))
        settings["filter_1_resonance"] = float(rng.uniform(0.0, 0.8))
    elif rng.random() < 0.5:
        settings.update(
            {
                "filter_1_on": 1.0,
                "filter_1_model": float(VARIATION_FILTER_MODELS[int(rng.integers(len(VARIATION_FILTER_MODELS)))]),
                "filter_1_style": float(rng.integers(2)),
                "filter_1_cutoff": float(rng.uniform(50.0, 130.0)),
                "filter_1_resonance": float(rng.uniform(0.0, 0.6)),
                "osc_1_destination": 0.0,
                "osc_2_destination": 0.0,
            }
        )
    return out
