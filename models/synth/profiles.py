"""Effect profiles: the coach's five effects mapped onto one synth's own controls, loaded from JSON data.

A profile (``models/synth/profiles/<name>.json``) lists, for each effect of :data:`EFFECT_NAMES`, its on/off
switch, fixed settings applied whenever the coach turns it on, and the SerumRNN parameters (paper Table 2).
Every parameter value the coach handles is in the paper's space:

* continuous: ``u`` in 0..1; the synth's native value is ``native_at_0 + u · (native_at_1 − native_at_0)``;
* categorical: a class index ``k``; the native value is ``class_values[k]``.

What a host such as REAPER sees is the normalised value ``(native − min) / (max − min)`` over the control's
``control_range``; a MIDI-learned parameter receives ``round(normalised · 127)`` on the parameter's ``midi_cc``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ReaTimbreError

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
PROFILE_FORMAT = "reatimbre-effect-profile/1"
#: The coach's effects, in the order SerumRNN's next-effect model indexes them.
EFFECT_NAMES = ("compressor", "distortion", "eq", "phaser", "reverb")


@dataclass(frozen=True)
class Parameter:
    """One effect parameter of a profile (see the module docstring for its value spaces)."""

    name: str
    paper_name: str
    type: str  # "continuous" or "categorical"
    control: str | None
    host_index: int | None
    display_name: str
    unit: str
    control_min: float
    control_max: float
    midi_cc: int
    native_at_0: float = 0.0
    native_at_1: float = 1.0
    sample_ranges: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    grid: float = 0.01
    classes: tuple[str, ...] = ()
    class_values: tuple[float, ...] = ()

    @property
    def is_categorical(self) -> bool:
        return self.type == "categorical"

    def to_native(self, value: float) -> float:
        """Paper-space value (u, or a class index) → the synth's native control value."""
        if self.is_categorical:
            index = int(value)
            if index != value or not 0 <= index < len(self.classes):
                raise ReaTimbreError(f"{self.name} takes a class index 0..{len(self.classes) - 1}, got {value}")
            return float(self.class_values[index])
        if not 0.0 <= value <= 1.0:
            raise ReaTimbreError(f"{self.name} takes a value in 0..1, got {value}")
        return self.native_at_0 + float(value) * (self.native_at_1 - self.native_at_0)

    def from_native(self, native: float) -> float:
        """Native control value → paper-space value (nearest class; u clipped to 0..1)."""
        if self.is_categorical:
            return float(int(np.argmin(np.abs(np.asarray(self.class_values) - native))))
        u = (native - self.native_at_0) / (self.native_at_1 - self.native_at_0)
        return float(min(max(u, 0.0), 1.0))

    def host_normalized(self, value: float) -> float:
        """Paper-space value → the host-normalised 0..1 value (what REAPER's TrackFX_*Normalized use)."""
        return (self.to_native(value) - self.control_min) / (self.control_max - self.control_min)

    def midi_cc_value(self, value: float) -> int:
        """Paper-space value → the 0..127 value of this parameter's MIDI CC."""
        return int(round(self.host_normalized(value) * 127))

    def display_text(self, value: float) -> str:
        """Human text for a paper-space value in the synth's own units, e.g. ``"Hard Clip"``, ``"+12.5 dB"``."""
        if self.is_categorical:
            return self.classes[int(value)]
        native = self.to_native(value)
        if self.unit in ("dB",):
            return f"{native:+.1f} dB"
        if self.unit in ("0..1", "normalised"):
            return f"{native * 100:.0f}%"
        if self.unit == "log2 Hz":
            return f"{2.0**native:.3g} Hz"
        return f"{native:.1f} {self.unit}".strip()

    def sample(self, rng: np.random.Generator) -> float:
        """Draw a value as SerumRNN did: a uniform class, or u on the 0.01 grid within the sampling ranges."""
        if self.is_categorical:
            return float(rng.integers(len(self.classes)))
        grids = [
            np.arange(round(lo / self.grid), round(hi / self.grid) + 1) * self.grid for lo, hi in self.sample_ranges
        ]
        points = np.concatenate(grids)
        return float(np.round(points[rng.integers(points.size)], 6))


@dataclass(frozen=True)
class Switch:
    """An effect's on/off control (``control`` None when the synth exposes none to a host)."""

    control: str | None
    display_name: str
    off: float
    on: float
    host_index: int | None
    midi_cc: int


@dataclass(frozen=True)
class Effect:
    """One coach effect on one synth: switch, fixed settings, parameters."""

    name: str
    display_name: str
    switch: Switch
    fixed: dict[str, float]
    parameters: tuple[Parameter, ...]

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise ReaTimbreError(f"effect {self.name} has no parameter {name!r}")

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Random paper-space values for every parameter."""
        return {p.name: p.sample(rng) for p in self.parameters}

    def controls(self, values: dict[str, float] | None) -> dict[str, float]:
        """Native control values that turn the effect on with ``values`` (None: turn it off).

        Parameters without a named control (host-index-only profiles) are left out; see
        :meth:`EffectProfile.host_values` for those.
        """
        if values is None:
            return {self.switch.control: self.switch.off} if self.switch.control else {}
        missing = [p.name for p in self.parameters if p.name not in values]
        unknown = sorted(set(values) - {p.name for p in self.parameters})
        if missing or unknown:
            raise ReaTimbreError(
                f"effect {self.name} needs values for {', '.join(p.name for p in self.parameters)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        out = dict(self.fixed)
        if self.switch.control:
            out[self.switch.control] = self.switch.on
        for parameter in self.parameters:
            if parameter.control:
                out[parameter.control] = parameter.to_native(values[parameter.name])
        return out

    def describe(self, values: dict[str, float]) -> str:
        """One line in the synth's words, e.g. ``"Distortion on: Hard Clip, Distortion Drive +12.5 dB"``."""
        parts = []
        for p in self.parameters:
            text = p.display_text(values[p.name])
            parts.append(text if p.is_categorical else f"{p.display_name} {text}")
        return f"{self.display_name} on: " + ", ".join(parts)


@dataclass(frozen=True)
class EffectProfile:
    """The coach's effects on one synth (loaded with :func:`load_profile`)."""

    synth: str
    plugin_name: str
    description: str
    rack_order: tuple[str, ...]
    effects: tuple[Effect, ...]
    source: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def effect_names(self) -> tuple[str, ...]:
        return tuple(effect.name for effect in self.effects)

    def effect(self, name: str) -> Effect:
        for effect in self.effects:
            if effect.name == name:
                return effect
        raise ReaTimbreError(f"unknown effect {name!r}; the coach's effects are {', '.join(EFFECT_NAMES)}")

    def controls(self, settings: dict[str, dict[str, float]]) -> dict[str, float]:
        """Native control values for a whole rack: effects in ``settings`` on with their values, others off."""
        unknown = sorted(set(settings) - set(self.effect_names))
        if unknown:
            raise ReaTimbreError(f"unknown effect(s) {', '.join(unknown)}")
        out: dict[str, float] = {}
        for effect in self.effects:
            out.update(effect.controls(settings.get(effect.name)))
        return out

    def read_settings(self, synth: Any) -> dict[str, dict[str, float]]:
        """The effects a synth's current patch has on, with their paper-space values (nearest class; u clipped).

        Only for profiles whose switches and parameters name the synth's controls (e.g. Vital).
        """
        settings: dict[str, dict[str, float]] = {}
        for effect in self.effects:
            if effect.switch.control is None or any(p.control is None for p in effect.parameters):
                raise ReaTimbreError(f"profile {self.synth!r} cannot read {effect.name} settings from a synth")
            if synth.get_control(effect.switch.control) == effect.switch.on:
                settings[effect.name] = {p.name: p.from_native(synth.get_control(p.control)) for p in effect.parameters}
        return settings

    def host_values(self, settings: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
        """What a host writes for ``settings``: one row per parameter with index, name, 0..1 value, CC, text."""
        rows = []
        for name, values in settings.items():
            effect = self.effect(name)
            for p in effect.parameters:
                value = values[p.name]
                rows.append(
                    {
                        "effect": name,
                        "parameter": p.name,
                        "control": p.control,
                        "host_index": p.host_index,
                        "display_name": p.display_name,
                        "value": value,
                        "native": p.to_native(value),
                        "normalized": p.host_normalized(value),
                        "midi_cc": p.midi_cc,
                        "midi_cc_value": p.midi_cc_value(value),
                        "text": p.display_text(value),
                    }
                )
        return rows


def _parameter(raw: dict[str, Any]) -> Parameter:
    low, high = (float(x) for x in raw["control_range"])
    if not high > low:
        raise ValueError(f"control_range of {raw['name']} is empty")
    # The fields every parameter has; the type-specific ones are filled in below with ``replace``.
    common = Parameter(
        name=str(raw["name"]),
        paper_name=str(raw["paper_name"]),
        type=str(raw["type"]),
        control=raw.get("control"),
        host_index=raw.get("host_index"),
        display_name=str(raw["display_name"]),
        unit=str(raw.get("unit", "")),
        control_min=low,
        control_max=high,
        midi_cc=int(raw["midi_cc"]),
    )
    if not 0 <= common.midi_cc <= 127:
        raise ValueError(f"midi_cc of {raw['name']} is not 0..127")
    if raw["type"] == "categorical":
        classes = tuple(str(c) for c in raw["classes"])
        values = tuple(float(v) for v in raw["class_values"])
        if len(classes) != len(values) or len(classes) < 2:
            raise ValueError(f"{raw['name']} needs matching classes and class_values (at least 2)")
        return replace(common, classes=classes, class_values=values)
    if raw["type"] != "continuous":
        raise ValueError(f"parameter type must be continuous or categorical, got {raw['type']!r}")
    ranges = tuple((float(lo), float(hi)) for lo, hi in raw["sample_ranges"])
    if not ranges or any(not 0.0 <= lo <= hi <= 1.0 for lo, hi in ranges):
        raise ValueError(f"sample_ranges of {raw['name']} must lie in 0..1")
    return replace(
        common,
        native_at_0=float(raw["native_at_0"]),
        native_at_1=float(raw["native_at_1"]),
        sample_ranges=ranges,
        grid=float(raw.get("grid", 0.01)),
    )


def parse_profile(raw: dict[str, Any]) -> EffectProfile:
    """Build a profile from its parsed JSON; a malformed document raises :class:`ReaTimbreError`."""
    try:
        if raw.get("format") != PROFILE_FORMAT:
            raise ValueError(f"format is not {PROFILE_FORMAT!r}")
        effects = []
        for e in raw["effects"]:
            s = e["switch"]
            switch = Switch(
                control=s.get("control"),
                display_name=str(s["display_name"]),
                off=float(s["off"]),
                on=float(s["on"]),
                host_index=s.get("host_index"),
                midi_cc=int(s["midi_cc"]),
            )
            fixed = {str(k): float(v) for k, v in e.get("fixed", {}).items()}
            params = tuple(_parameter(p) for p in e["parameters"])
            effects.append(Effect(str(e["name"]), str(e["display_name"]), switch, fixed, params))
        names = tuple(effect.name for effect in effects)
        if names != EFFECT_NAMES:
            raise ValueError(f"effects must be {', '.join(EFFECT_NAMES)} in that order, got {', '.join(names)}")
        return EffectProfile(
            synth=str(raw["synth"]),
            plugin_name=str(raw["plugin_name"]),
            description=str(raw.get("description", "")),
            rack_order=tuple(raw.get("rack_order", EFFECT_NAMES)),
            effects=tuple(effects),
            source=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ReaTimbreError(f"malformed effect profile: {exc}") from exc


def available_profiles() -> list[str]:
    """Names of the shipped profiles (``vital``, ``serum1``)."""
    return sorted(path.stem for path in PROFILE_DIR.glob("*.json"))


@lru_cache(maxsize=8)
def _load_cached(path: str) -> EffectProfile:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaTimbreError(f"cannot read effect profile {path}: {exc}") from exc
    return parse_profile(raw)


def load_profile(name_or_path: str | Path = "vital") -> EffectProfile:
    """A shipped profile by name (``vital``, ``serum1``) or a profile JSON file by path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = PROFILE_DIR / f"{name_or_path}.json"
        if not path.exists():
            raise ReaTimbreError(f"no effect profile {name_or_path!r}; shipped: {', '.join(available_profiles())}")
    return _load_cached(str(path.resolve()))
