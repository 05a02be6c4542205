"""The coach's 12 presets in SerumRNN's 3 groups, rebuilt on Vital from data.

``models/synth/presets/vital_presets.json`` describes each preset as changes to Vital's init patch: control
values, oscillator wavetables given as keyframes of named single-cycle shapes (a wavetable morphs between its
keyframes as ``osc_N_wave_frame`` moves over 0..256), and modulation routes with amounts. All effects stay off:
a preset is the dry sound the coach's effects are applied to. :func:`build_preset_patch` turns one into a
``.vital`` JSON document; :meth:`VitalSynth.save_patch` writes it for Vital itself to open.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ReaTimbreError

PRESET_FILE = Path(__file__).resolve().parent / "presets" / "vital_presets.json"
PRESET_FORMAT = "reatimbre-vital-presets/1"
WAVE_SAMPLES = 2048
MAX_WAVE_FRAME = 256
N_OSCILLATORS = 3
N_MODULATION_SLOTS = 64


def single_cycle(shape: str, n_samples: int = WAVE_SAMPLES) -> np.ndarray:
    """One cycle of a named shape, float32 in -1..1: sine, triangle, saw, square, pulse_25, half_sine."""
    phase = np.arange(n_samples) / n_samples
    if shape == "sine":
        wave = np.sin(2 * np.pi * phase)
    elif shape == "triangle":
        wave = 1.0 - 4.0 * np.abs(((phase + 0.25) % 1.0) - 0.5)
    elif shape == "saw":
        wave = 2.0 * ((phase + 0.5) % 1.0) - 1.0
    elif shape == "square":
        wave = np.where(phase < 0.5, 1.0, -1.0)
    elif shape == "pulse_25":
        wave = np.where(phase < 0.25, 1.0, -1.0)
    elif shape == "half_sine":
        wave = np.maximum(np.sin(2 * np.pi * phase), 0.0) * 2.0 - 0.6366
    else:
        raise ReaTimbreError(f"unknown wave shape {shape!r}")
    return wave.astype(np.float32)


def _encode_wave(wave: np.ndarray) -> str:
    return base64.b64encode(np.asarray(wave, dtype="<f4").tobytes()).decode("ascii")


@dataclass(frozen=True)
class PresetSpec:
    """One preset as stored in the data file."""

    name: str
    group: str
    description: str
    controls: dict[str, float]
    wavetables: dict[int, tuple[tuple[int, str], ...]]  # oscillator → ((frame position, shape), …)
    modulations: tuple[tuple[str, str, float], ...]  # (source, destination, amount −1..1)


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, tuple[str, ...]], dict[str, PresetSpec]]:
    try:
        raw = json.loads(PRESET_FILE.read_text(encoding="utf-8"))
        if raw.get("format") != PRESET_FORMAT:
            raise ValueError(f"format is not {PRESET_FORMAT!r}")
        groups = {str(g): tuple(str(n) for n in names) for g, names in raw["groups"].items()}
        presets = {}
        for name, p in raw["presets"].items():
            tables = {
                int(osc): tuple((int(k["position"]), str(k["shape"])) for k in keys)
                for osc, keys in p.get("wavetables", {}).items()
            }
            mods = tuple(
                (str(m["source"]), str(m["destination"]), float(m["amount"])) for m in p.get("modulations", [])
            )
            presets[name] = PresetSpec(
                name,
                str(p["group"]),
                str(p.get("description", "")),
                {str(k): float(v) for k, v in p.get("controls", {}).items()},
                tables,
                mods,
            )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ReaTimbreError(f"cannot read the preset data {PRESET_FILE}: {exc}") from exc
    for group, names in groups.items():
        for name in names:
            if name not in presets or presets[name].group != group:
                raise ReaTimbreError(f"preset data: {name!r} listed in group {group!r} but not defined there")
    return groups, presets


def preset_groups() -> dict[str, tuple[str, ...]]:
    """Group name → preset names, in SerumRNN's order (basic, advanced, advanced modulating shapes)."""
    return dict(_load()[0])


def preset_names(group: str | None = None) -> list[str]:
    """All preset names, or those of one group."""
    groups = preset_groups()
    if group is None:
        return [name for names in groups.values() for name in names]
    if group not in groups:
        raise ReaTimbreError(f"unknown preset group {group!r}; groups: {', '.join(groups)}")
    return list(groups[group])


def preset_spec(name: str) -> PresetSpec:
    """The stored description of one preset."""
    presets = _load()[1]
    if name not in presets:
        raise ReaTimbreError(f"unknown preset {name!r}; presets: {', '.join(presets)}")
    return presets[name]


def build_preset_patch(name: str, init_patch: dict[str, Any]) -> dict[str, Any]:
    """A ``.vital`` JSON document for preset ``name``, built on a copy of Vital's ``init_patch``."""
    spec = preset_spec(name)
    patch = json.loads(json.dumps(init_patch))
    settings = patch["settings"]
    unknown = sorted(k for k in spec.controls if k not in settings)
    if unknown:
        raise ReaTimbreError(f"preset {name}: Vital has no control {', '.join(unknown)}")
    settings.update(spec.controls)
    for osc, keyframes in spec.wavetables.items():
        if not 1 <= osc <= N_OSCILLATORS:
            raise ReaTimbreError(f"preset {name}: oscillator {osc} is not 1..{N_OSCILLATORS}")
        table = settings["wavetables"][osc - 1]
        table["name"] = "+".join(shape for _, shape in keyframes)
        component = table["groups"][0]["components"][0]
        component["keyframes"] = [
            {"position": min(max(position, 0), MAX_WAVE_FRAME), "wave_data": _encode_wave(single_cycle(shape))}
            for position, shape in keyframes
        ]
    if len(spec.modulations) > N_MODULATION_SLOTS:
        raise ReaTimbreError(f"preset {name}: more than {N_MODULATION_SLOTS} modulations")
    for slot, (source, destination, amount) in enumerate(spec.modulations, start=1):
        if destination not in settings:
            raise ReaTimbreError(f"preset {name}: modulation destination {destination!r} is not a Vital control")
        settings["modulations"][slot - 1] = {"source": source, "destination": destination}
        settings[f"modulation_{slot}_amount"] = amount
    patch["preset_name"] = name
    patch["author"] = "ReaTimbre"
    patch["comments"] = spec.description
    return patch
