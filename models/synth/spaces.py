"""Parameter spaces for patch matching: a synth's patch as a fixed-length vector a network can predict.

A :class:`ParameterSpace` lists the parameters a synth's patches are described by, each in the synth's *native*
values (what its own preset files store: amsynth's bank values, Vital's control values, a hosted plug-in's
normalised values). :meth:`ParameterSpace.encode` turns a native patch into the vector the multi-task VAE
(:mod:`models.asp`) predicts, as the paper does: a continuous parameter is one value ``(v - low) / (high - low)``
in 0..1; a categorical one (a step-1 parameter such as a waveform) is a one-hot group over its classes.
:meth:`ParameterSpace.decode` inverts it (continuous values clipped to 0..1, the class with the largest score).
A categorical value between classes encodes as the nearest class.

:meth:`ParameterSpace.layout` describes the vector for the losses: which slots are continuous, which slices are
one-hot groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import ReaTimbreError

CONTINUOUS = "continuous"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: its native range (continuous) or class values (categorical), default and sampling range."""

    name: str
    kind: str
    default: float
    low: float = 0.0
    high: float = 1.0
    classes: tuple[float, ...] = ()
    #: The range random patches draw from (continuous; None: the full range).
    sample_low: float | None = None
    sample_high: float | None = None

    def __post_init__(self) -> None:
        if self.kind == CONTINUOUS:
            if not self.high > self.low:
                raise ReaTimbreError(f"parameter {self.name}: high must exceed low")
        elif self.kind == CATEGORICAL:
            if len(self.classes) < 2:
                raise ReaTimbreError(f"categorical parameter {self.name} needs at least 2 classes")
        else:
            raise ReaTimbreError(f"parameter {self.name}: unknown kind {self.kind!r}")

    @property
    def width(self) -> int:
        """Slots this parameter takes in the encoded vector."""
        return 1 if self.kind == CONTINUOUS else len(self.classes)

    def class_index(self, value: float) -> int:
        """The class nearest to a native value."""
        return int(np.argmin(np.abs(np.asarray(self.classes, dtype=np.float64) - float(value))))

    def sample(self, rng: np.random.Generator) -> float:
        """One random native value: uniform over the sampling range, or over the classes."""
        if self.kind == CATEGORICAL:
            return float(self.classes[int(rng.integers(len(self.classes)))])
        low = self.low if self.sample_low is None else self.sample_low
        high = self.high if self.sample_high is None else self.sample_high
        return float(rng.uniform(low, high))

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "kind": self.kind, "default": self.default}
        if self.kind == CONTINUOUS:
            body.update(low=self.low, high=self.high)
        else:
            body["classes"] = list(self.classes)
        return body


@dataclass(frozen=True)
class Layout:
    """Where each parameter sits in an encoded vector of ``size`` slots."""

    size: int
    continuous: tuple[int, ...]
    groups: tuple[tuple[int, int], ...]  # (start, classes) of each one-hot group

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "continuous": list(self.continuous), "groups": [list(g) for g in self.groups]}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Layout:
        return cls(
            int(raw["size"]),
            tuple(int(i) for i in raw["continuous"]),
            tuple((int(a), int(b)) for a, b in raw["groups"]),
        )


class ParameterSpace:
    """An ordered set of parameters with encode/decode between native patches and vectors."""

    def __init__(self, synth: str, parameters: list[ParameterSpec]) -> None:
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ReaTimbreError(f"{synth}: parameter names repeat")
        self.synth = synth
        self.parameters = list(parameters)
        self._by_name = {p.name: p for p in parameters}
        starts, position = [], 0
        for p in parameters:
            starts.append(position)
            position += p.width
        self._starts = starts
        self.size = position
        # decode's arrays: continuous slots with their lows and spans, categorical groups with their classes
        continuous = [(s, p) for s, p in zip(starts, parameters, strict=True) if p.kind == CONTINUOUS]
        self._continuous_slots = np.array([s for s, _ in continuous], dtype=np.int64)
        self._continuous_lows = np.array([p.low for _, p in continuous], dtype=np.float64)
        self._continuous_spans = np.array([p.high - p.low for _, p in continuous], dtype=np.float64)

    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def spec(self, name: str) -> ParameterSpec:
        if name not in self._by_name:
            raise ReaTimbreError(f"{self.synth} has no matched parameter {name!r}")
        return self._by_name[name]

    def layout(self) -> Layout:
        pairs = list(zip(self._starts, self.parameters, strict=True))
        continuous = tuple(s for s, p in pairs if p.kind == CONTINUOUS)
        groups = tuple((s, p.width) for s, p in pairs if p.kind == CATEGORICAL)
        return Layout(self.size, continuous, groups)

    def defaults(self) -> dict[str, float]:
        return {p.name: float(p.default) for p in self.parameters}

    def complete(self, native: Mapping[str, float]) -> dict[str, float]:
        """``native`` with every missing parameter at its default (unknown names raise)."""
        unknown = sorted(set(native) - set(self._by_name))
        if unknown:
            raise ReaTimbreError(f"{self.synth} has no matched parameter {', '.join(unknown)}")
        return {**self.defaults(), **{k: float(v) for k, v in native.items()}}

    def encode(self, native: Mapping[str, float]) -> np.ndarray:
        """The float32 vector of a native patch (missing parameters at their defaults)."""
        values = self.complete(native)
        vector = np.zeros(self.size, dtype=np.float32)
        for start, p in zip(self._starts, self.parameters, strict=True):
            value = values[p.name]
            if not np.isfinite(value):
                raise ReaTimbreError(f"{self.synth} parameter {p.name} is not finite")
            if p.kind == CONTINUOUS:
                vector[start] = np.clip((value - p.low) / (p.high - p.low), 0.0, 1.0)
            else:
                vector[start + p.class_index(value)] = 1.0
        return vector

    def decode(self, vector: np.ndarray) -> dict[str, float]:
        """The native patch of a vector (model outputs: continuous slots clipped, largest class score wins)."""
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (self.size,):
            raise ReaTimbreError(f"{self.synth} vectors have {self.size} values, got shape {vector.shape}")
        values = self._continuous_lows + np.clip(vector[self._continuous_slots], 0.0, 1.0) * self._continuous_spans
        continuous = iter(values.tolist())
        native = {}
        for start, p in zip(self._starts, self.parameters, strict=True):
            if p.kind == CONTINUOUS:
                native[p.name] = next(continuous)
            else:
                native[p.name] = float(p.classes[int(np.argmax(vector[start : start + p.width]))])
        return native

    def varied_patch(self, native: Mapping[str, float], rng: np.random.Generator, spread: float) -> dict[str, float]:
        """A random variation of a native patch: each continuous parameter, with probability 1/2, moved by a normal
        step of standard deviation ``spread`` of its range (clipped to the range); each categorical, with probability
        ``spread``, redrawn uniformly from its classes (it may draw its own class)."""
        if not 0.0 <= spread <= 1.0:
            raise ReaTimbreError(f"a variation's spread must be 0..1 of a parameter's range, got {spread}")
        vector = self.encode(native).astype(np.float64)
        for start, p in zip(self._starts, self.parameters, strict=True):
            if p.kind == CONTINUOUS:
                if rng.random() < 0.5:
                    vector[start] = np.clip(vector[start] + rng.normal(0.0, spread), 0.0, 1.0)
            elif rng.random() < spread:
                vector[start : start + p.width] = 0.0
                vector[start + int(rng.integers(p.width))] = 1.0
        return self.decode(vector)

    def random_patch(self, rng: np.random.Generator) -> dict[str, float]:
        """A random native patch: every parameter drawn from its sampling range or classes."""
        return {p.name: p.sample(rng) for p in self.parameters}

    def to_json(self) -> dict[str, Any]:
        return {
            "synth": self.synth,
            "parameters": [p.to_json() for p in self.parameters],
            "layout": self.layout().to_json(),
        }
