"""Out-of-distribution coach targets: patches, effect settings and notes of another origin than training.

The coach trains on ``coach-data`` draws (:mod:`models.synth.dataset`): one of the 12 shipped presets
(:mod:`models.synth.presets`, wavetables of six named single-cycle shapes), one note (MIDI 48), and effect
values drawn by :meth:`models.synth.profiles.Parameter.sample` — uniform on the profile's sampling ranges, on a
0.01 grid — for a subset mask drawn uniformly from the 31 non-empty ones (the in-distribution evaluation,
:func:`models.coach.evaluate.vital_targets`, draws the same way). Nothing here calls those samplers:

* **Patches** are built on Vital's own init patch by this module, never from the preset data, in three kinds
  (one target in three each): ``init`` — Vital's init patch exactly as Vital makes it; ``init_filter`` — the init
  patch through a randomised filter 1 (model, slope, cutoff, resonance, drive, key tracking) and amp envelope;
  ``random_osc`` — one to three oscillators whose single-cycle waves are random additive spectra (a random
  number of harmonics with power-law roll-off, odd/even balance, random phases and gaps), with random
  oscillator warps (sync, bend, squeeze, pulse), unison, transposition and levels, through a randomised filter.
* **Effect settings** come from other laws than training: the number of effects on is uniform 1..5 (training:
  each non-empty subset equally likely, so mostly 2–3 effects), and every continuous parameter is drawn from
  Beta(0.6, 0.6) over its whole 0..1 space, off any grid (training: uniform on the sampling ranges, which leave
  out e.g. reverb mix outside 0.3..0.7 and distortion drive under 0.3); categorical parameters are uniform.
* **Notes** are uniform over C2..C6 (MIDI 36..84, C4 = 60); training renders MIDI 48 only.

The coach starts from the target's dry patch (all five effects off) at the target's note, as in the
in-distribution set, so the five effects can reach every target exactly and final/initial ratios compare.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.synth.profiles import EFFECT_NAMES, Effect, EffectProfile

#: The OOD set's notes: C2..C6 (MIDI, C4 = 60).
OOD_NOTE_RANGE = (36, 84)
OOD_PATCH_KINDS = ("init", "init_filter", "random_osc")
#: Beta(a, a) for continuous effect parameters over their whole 0..1 space (a < 1: the ends are likelier).
OOD_BETA = 0.6
WAVE_SAMPLES = 2048
#: Filter models drawn for randomised filters (Vital's names; Formant and Phaser left out: no cutoff to set).
FILTER_MODELS = {"Analog": 0, "Dirty": 1, "Ladder": 2, "Digital": 3, "Diode": 4, "Comb": 6}
#: Oscillator warps (Vital's ``osc_N_distortion_type``): None, Sync, Bend, Squeeze, Pulse.
OSC_WARPS = (0, 1, 4, 5, 6)
TRANSPOSES = (-12, 0, 0, 5, 7, 12, 19, 24)


@dataclass(frozen=True)
class OodPatch:
    """A dry Vital patch of this module's making: the ``.vital`` JSON and what was drawn, in words."""

    kind: str
    patch: dict[str, Any]
    summary: str


def random_spectrum_wave(rng: np.random.Generator, n_samples: int = WAVE_SAMPLES) -> np.ndarray:
    """One cycle of a random additive spectrum, float32 peak-normalised to 1 (no named shape)."""
    harmonics = int(rng.integers(1, 48))
    k = np.arange(1, harmonics + 1, dtype=np.float64)
    amplitude = k ** -rng.uniform(0.4, 2.5)
    amplitude[1::2] *= rng.uniform(0.0, 1.0)  # even harmonics: from none (square-like) to full (saw-like)
    amplitude *= rng.random(harmonics) > rng.uniform(0.0, 0.4)  # random gaps
    amplitude[0] = max(amplitude[0], 0.2)  # keep the fundamental, so the note is the note played
    phase = rng.uniform(0.0, 2.0 * np.pi, harmonics)
    t = np.arange(n_samples) / n_samples
    wave = (amplitude[:, None] * np.sin(2.0 * np.pi * k[:, None] * t[None, :] + phase[:, None])).sum(axis=0)
    wave -= wave.mean()
    return (wave / max(float(np.abs(wave).max()), 1e-9)).astype(np.float32)


def _set_wave(settings: dict[str, Any], oscillator: int, wave: np.ndarray, name: str) -> None:
    table = settings["wavetables"][oscillator - 1]
    table["name"] = name
    component = table["groups"][0]["components"][0]
    data = base64.b64encode(np.asarray(wave, dtype="<f4").tobytes()).decode("ascii")
    component["keyframes"] = [{"position": 0, "wave_data": data}]


def _random_filter(settings: dict[str, Any], rng: np.random.Generator) -> str:
    model = list(FILTER_MODELS)[int(rng.integers(len(FILTER_MODELS)))]
    settings.update(
        {
            "filter_1_on": 1.0,
            "filter_1_model": float(FILTER_MODELS[model]),
            "filter_1_style": float(rng.integers(2)),
            "filter_1_cutoff": float(rng.uniform(40.0, 130.0)),
            "filter_1_resonance": float(rng.uniform(0.0, 0.75)),
            "filter_1_drive": float(rng.uniform(0.0, 12.0)),
            "filter_1_keytrack": float(rng.uniform(0.0, 1.0)),
            "env_1_attack": float(rng.uniform(0.0, 0.45)),
            "env_1_decay": float(rng.uniform(0.3, 1.6)),
            "env_1_sustain": float(rng.uniform(0.2, 1.0)),
        }
    )
    for osc in (1, 2, 3):
        settings[f"osc_{osc}_destination"] = 0.0  # filter 1
    return f"{model} filter at {settings['filter_1_cutoff']:.0f} semitones"


def ood_patch(init_patch: dict[str, Any], kind: str, rng: np.random.Generator) -> OodPatch:
    """A dry patch of ``kind`` (:data:`OOD_PATCH_KINDS`) built on a copy of Vital's ``init_patch``."""
    patch = json.loads(json.dumps(init_patch))
    settings = patch["settings"]
    for name in EFFECT_NAMES:  # dry: the coach's effects off (Vital's init patch has them off too)
        settings[f"{name}_on"] = 0.0
    if kind == "init":
        summary = "Vital's init patch"
    elif kind == "init_filter":
        summary = "Vital's init patch, " + _random_filter(settings, rng)
    elif kind == "random_osc":
        count = int(rng.integers(1, 4))
        parts = []
        for osc in range(1, count + 1):
            _set_wave(settings, osc, random_spectrum_wave(rng), f"ood-spectrum-{osc}")
            warp = OSC_WARPS[int(rng.integers(len(OSC_WARPS)))]
            settings.update(
                {
                    f"osc_{osc}_on": 1.0,
                    f"osc_{osc}_level": float(rng.uniform(0.35, 0.85)),
                    f"osc_{osc}_transpose": 0.0 if osc == 1 else float(TRANSPOSES[int(rng.integers(len(TRANSPOSES)))]),
                    f"osc_{osc}_unison_voices": float(rng.integers(1, 8)),
                    f"osc_{osc}_unison_detune": float(rng.uniform(0.0, 5.0)),
                    f"osc_{osc}_distortion_type": float(warp),
                    f"osc_{osc}_distortion_amount": float(rng.uniform(0.0, 0.8)),
                }
            )
            parts.append(f"osc {osc} warp {warp}")
        summary = f"{count} random-spectrum oscillator(s) ({', '.join(parts)}), " + _random_filter(settings, rng)
    else:
        raise ValueError(f"unknown OOD patch kind {kind!r}")
    patch["preset_name"] = f"ood-{kind}"
    return OodPatch(kind, patch, summary)


def ood_effect_values(effect: Effect, rng: np.random.Generator) -> dict[str, float]:
    """Paper-space values for one effect: Beta(0.6, 0.6) over 0..1 off-grid, uniform classes."""
    values = {}
    for parameter in effect.parameters:
        if parameter.is_categorical:
            values[parameter.name] = float(rng.integers(len(parameter.classes)))
        else:
            values[parameter.name] = float(rng.beta(OOD_BETA, OOD_BETA))
    return values


def ood_settings(profile: EffectProfile, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """A target's effects: how many is uniform 1..5, which ones uniform among those of that size."""
    count = int(rng.integers(1, len(EFFECT_NAMES) + 1))
    chosen = rng.choice(len(EFFECT_NAMES), size=count, replace=False)
    return {EFFECT_NAMES[i]: ood_effect_values(profile.effect(EFFECT_NAMES[i]), rng) for i in sorted(chosen)}


@dataclass(frozen=True)
class OodDraw:
    """One OOD target before rendering: its dry patch, note and effect settings."""

    patch: OodPatch
    note: int
    settings: dict[str, dict[str, float]]


def ood_draws(profile: EffectProfile, init_patch: dict[str, Any], count: int, seed: int) -> Iterator[OodDraw]:
    """``count`` OOD draws; draw ``i`` depends only on ``(seed, i)`` (kinds cycle init, init_filter, random_osc)."""
    for i in range(count):
        rng = np.random.default_rng([seed, 0x00D, i])
        kind = OOD_PATCH_KINDS[i % len(OOD_PATCH_KINDS)]
        patch = ood_patch(init_patch, kind, rng)
        note = int(rng.integers(OOD_NOTE_RANGE[0], OOD_NOTE_RANGE[1] + 1))
        yield OodDraw(patch, note, ood_settings(profile, rng))
