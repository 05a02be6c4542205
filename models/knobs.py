"""Knobs: named, ranged controls of an effect model, and their mapping to the model's control vector."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from models.errors import ReaTimbreError


@dataclass(frozen=True)
class Knob:
    """One control of an effect, in the unit a user sees (dB, ratio, 0..1, ...).

    ``scale`` says how the knob's travel maps to its value: ``linear`` or ``log`` (for ratios and frequencies).
    ``conditioning`` says what the network sees: ``normalised`` (the knob's position, 0..1) or ``raw`` (the value
    itself, as for steered models whose controls live in [-5, 5]).
    """

    name: str
    unit: str
    minimum: float
    maximum: float
    default: float
    scale: str = "linear"
    conditioning: str = "normalised"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.minimum < self.maximum:
            raise ValueError(f"knob {self.name}: minimum must be below maximum")
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"knob {self.name}: default outside its range")
        if self.scale not in ("linear", "log") or (self.scale == "log" and self.minimum <= 0):
            raise ValueError(f"knob {self.name}: scale must be linear, or log with a positive range")
        if self.conditioning not in ("normalised", "raw"):
            raise ValueError(f"knob {self.name}: conditioning must be normalised or raw")

    def position(self, value: float) -> float:
        """The knob's travel 0..1 for ``value``."""
        if self.scale == "log":
            return math.log(value / self.minimum) / math.log(self.maximum / self.minimum)
        return (value - self.minimum) / (self.maximum - self.minimum)

    def value_at(self, position: float) -> float:
        """The knob's value at travel ``position`` (0..1)."""
        if self.scale == "log":
            return self.minimum * (self.maximum / self.minimum) ** position
        return self.minimum + position * (self.maximum - self.minimum)

    def control(self, value: float) -> float:
        """What the network is fed for ``value``."""
        return self.position(value) if self.conditioning == "normalised" else float(value)

    def check(self, value: float) -> float:
        """``value`` as a float, or a :class:`ReaTimbreError` naming the knob and its range."""
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ReaTimbreError(f"knob {self.name!r} needs a number, got {value!r}") from None
        if not math.isfinite(value):
            raise ReaTimbreError(f"knob {self.name!r} must be a finite number, got {value}")
        if not self.minimum <= value <= self.maximum:
            unit = f" {self.unit}" if self.unit else ""
            span = f"{self.minimum:g}..{self.maximum:g}{unit}"
            raise ReaTimbreError(f"knob {self.name!r} = {value:g} is out of range {span}")
        return value

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Knob:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def resolve_knobs(knobs: list[Knob], values: dict[str, float] | None) -> dict[str, float]:
    """Every knob's value: the given ones (checked) and defaults for the rest; unknown names are an error."""
    values = dict(values or {})
    by_name = {k.name: k for k in knobs}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        known = ", ".join(by_name) or "none"
        raise ReaTimbreError(f"unknown knob {unknown[0]!r} (this effect's knobs: {known})")
    return {k.name: k.check(values[k.name]) if k.name in values else k.default for k in knobs}


def parse_knob_assignments(assignments: list[str] | None) -> dict[str, float]:
    """Parse command-line ``NAME=VALUE`` strings into a dict (values checked later against the model)."""
    parsed: dict[str, float] = {}
    for item in assignments or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ReaTimbreError(f"--knob expects NAME=VALUE, got {item!r}")
        try:
            parsed[name.strip()] = float(text)
        except ValueError:
            raise ReaTimbreError(f"--knob {name.strip()}: {text!r} is not a number") from None
    return parsed
