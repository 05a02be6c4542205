"""The real DSP effects the shipped neural models emulate, with their knobs.

Each :class:`ReferenceEffect` maps two user-facing knobs to the parameters of pedalboard's built-in effects, and
processes audio with a fresh effect state every call (so a render depends only on its input). Every channel is
processed on its own, exactly as the neural model (mono in, mono out) treats a multichannel file.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pedalboard

from models.errors import ReaTimbreError
from models.knobs import Knob, resolve_knobs


@dataclass(frozen=True)
class ReferenceEffect:
    """A real effect with a knob-to-parameter mapping.

    ``parameters(knob_values)`` returns the effect's parameter values (for the sidecar and for building the chain);
    ``chain(parameters)`` builds the pedalboard chain from them.
    """

    name: str
    description: str
    knobs: tuple[Knob, ...]
    emulates: str
    parameters: Callable[[dict[str, float]], dict[str, float]]
    chain: Callable[[dict[str, float]], list]
    mapping: dict[str, str]  # each effect parameter as a formula of the knobs, for people reading the sidecar
    tail_seconds: float = 0.0
    memory_seconds: float = 0.0  # how far back the effect's output depends on its input, roughly

    def process(self, audio: np.ndarray, sample_rate: int, knob_values: dict[str, float] | None = None) -> np.ndarray:
        """Apply the effect to ``audio`` (channels, samples), each channel separately, from a silent state."""
        values = resolve_knobs(list(self.knobs), knob_values)
        board = pedalboard.Pedalboard(self.chain(self.parameters(values)))
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        return np.stack([board(channel[None, :], sample_rate, reset=True)[0] for channel in audio])

    def describe(self, knob_values: dict[str, float] | None = None) -> dict:
        """The mapping as data: what the effect is and its parameters at ``knob_values`` (defaults if None)."""
        values = resolve_knobs(list(self.knobs), knob_values)
        return {
            "effect": self.emulates,
            "mapping": self.mapping,
            "knobs": values,
            "parameters": self.parameters(values),
            "channels": "each channel processed separately, starting from silence",
        }


def _compressor_parameters(k: dict[str, float]) -> dict[str, float]:
    return {"threshold_db": k["threshold"], "ratio": k["ratio"], "attack_ms": 5.0, "release_ms": 120.0}


def _overdrive_parameters(k: dict[str, float]) -> dict[str, float]:
    # Tone sweeps a 1-pole low-pass after the clipper from dark (600 Hz) to open (12 kHz), log-spaced.
    cutoff_hz = 600.0 * (12_000.0 / 600.0) ** k["tone"]
    return {"drive_db": k["drive"], "lowpass_cutoff_hz": cutoff_hz}


def _reverb_parameters(k: dict[str, float]) -> dict[str, float]:
    # Size spans freeverb room sizes 0.45..0.8 (T60 about 1 to 2.5 s): a hall, not a room.
    return {
        "room_size": 0.45 + 0.35 * k["size"],
        "damping": 0.35,
        "wet_level": k["mix"],
        "dry_level": 1.0 - k["mix"],
        "width": 1.0,
    }


COMPRESSOR = ReferenceEffect(
    name="compressor",
    description="Feed-forward compressor: 5 ms attack, 120 ms release",
    knobs=(
        Knob("threshold", "dB", -50.0, -5.0, -25.0, description="level above which gain is reduced"),
        Knob("ratio", ":1", 1.5, 20.0, 4.0, scale="log", description="input dB above threshold per output dB"),
    ),
    emulates="pedalboard.Compressor",
    parameters=_compressor_parameters,
    chain=lambda p: [pedalboard.Compressor(**p)],
    mapping={"threshold_db": "threshold", "ratio": "ratio", "attack_ms": "5", "release_ms": "120"},
    memory_seconds=0.5,
)

OVERDRIVE = ReferenceEffect(
    name="overdrive",
    description="Overdrive: tanh soft clipper with drive, then a tone low-pass",
    knobs=(
        Knob("drive", "dB", 0.0, 36.0, 18.0, description="gain into the clipper"),
        Knob("tone", "", 0.0, 1.0, 0.5, description="dark (0) to bright (1): low-pass 600 Hz to 12 kHz"),
    ),
    emulates="pedalboard.Distortion -> pedalboard.LowpassFilter",
    parameters=_overdrive_parameters,
    chain=lambda p: [
        pedalboard.Distortion(drive_db=p["drive_db"]),
        pedalboard.LowpassFilter(cutoff_frequency_hz=p["lowpass_cutoff_hz"]),
    ],
    mapping={"drive_db": "drive", "lowpass_cutoff_hz": "600 * 20 ** tone"},
    memory_seconds=0.02,
)

HALL_REVERB = ReferenceEffect(
    name="reverb",
    description="Hall reverb (freeverb), mixed with the dry signal",
    knobs=(
        Knob("size", "", 0.0, 1.0, 0.6, description="hall size: decay from about 1 s to 2.5 s"),
        Knob("mix", "", 0.2, 1.0, 0.4, description="wet share of the output"),
    ),
    emulates="pedalboard.Reverb",
    parameters=_reverb_parameters,
    chain=lambda p: [pedalboard.Reverb(**p)],
    mapping={
        "room_size": "0.45 + 0.35 * size",
        "damping": "0.35",
        "wet_level": "mix",
        "dry_level": "1 - mix",
        "width": "1",
    },
    tail_seconds=2.5,
    memory_seconds=3.0,
)

REFERENCE_EFFECTS: dict[str, ReferenceEffect] = {e.name: e for e in (COMPRESSOR, OVERDRIVE, HALL_REVERB)}


def reference_effect(name: str) -> ReferenceEffect:
    """The reference effect called ``name``."""
    try:
        return REFERENCE_EFFECTS[name]
    except KeyError:
        raise ReaTimbreError(f"no reference effect {name!r} (known: {', '.join(REFERENCE_EFFECTS)})") from None


_FORMULA_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
}


def evaluate_formula(formula: str, knob_values: dict[str, float]) -> float:
    """The value of a sidecar mapping formula (numbers, knob names, + - * / ** and brackets) at ``knob_values``."""

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in knob_values:
            return float(knob_values[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _FORMULA_OPERATORS:
            return _FORMULA_OPERATORS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _FORMULA_OPERATORS:
            return _FORMULA_OPERATORS[type(node.op)](value(node.operand))
        raise ReaTimbreError(f"mapping formula {formula!r} is not arithmetic on the knobs {sorted(knob_values)}")

    try:
        tree = ast.parse(str(formula), mode="eval")
    except SyntaxError:
        raise ReaTimbreError(f"mapping formula {formula!r} is not arithmetic on the knobs") from None
    try:
        result = value(tree.body)
    except (ArithmeticError, ValueError):
        raise ReaTimbreError(f"mapping formula {formula!r} has no value at {knob_values}") from None
    if not math.isfinite(result):
        raise ReaTimbreError(f"mapping formula {formula!r} has no finite value at {knob_values}")
    return result


def _plugin_chain(effect: str) -> Callable[[dict[str, float]], list]:
    """How to build the chain named ``effect`` (``pedalboard.A -> pedalboard.B``) from its parameters: the chain
    training used when it is one of the reference effects, otherwise each plugin gets the parameters it has."""
    for known in REFERENCE_EFFECTS.values():
        if known.emulates == effect:
            return known.chain
    classes = []
    for part in effect.split("->"):
        module, _, class_name = part.strip().partition(".")
        plugin = getattr(pedalboard, class_name, None) if module == "pedalboard" else None
        if not (isinstance(plugin, type) and issubclass(plugin, pedalboard.Plugin)):
            raise ReaTimbreError(f"cannot build the real effect {effect!r}: {part.strip()!r} is no pedalboard plugin")
        classes.append(plugin)

    def chain(parameters: dict[str, float]) -> list:
        try:
            plugins = [plugin_class() for plugin_class in classes]
            for name, number in parameters.items():
                owners = [p for p in plugins if name in dir(p) and not callable(getattr(p, name))]
                if not owners:
                    raise ReaTimbreError(f"cannot build the real effect {effect!r}: no plugin takes {name!r}")
                setattr(owners[0], name, number)
        except (TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise ReaTimbreError(f"cannot build the real effect {effect!r}: {exc}") from None
        return plugins

    return chain


def emulated_effect(model_name: str, sidecar: dict) -> ReferenceEffect:
    """The real effect a model's sidecar says it emulates, built from its ``emulates`` record: the chain its
    ``effect`` names, with each parameter from its ``mapping`` formula of the model's knobs."""
    record = sidecar.get("emulates")
    if not isinstance(record, dict) or not record.get("effect") or not isinstance(record.get("mapping"), dict):
        raise ReaTimbreError(
            f"model {model_name!r} names no real effect it emulates (its sidecar has no 'emulates' record)"
        )
    mapping = {str(k): str(v) for k, v in record["mapping"].items()}
    knobs = tuple(Knob.from_dict(k) for k in sidecar.get("knobs", []))

    def parameters(knob_values: dict[str, float]) -> dict[str, float]:
        return {name: evaluate_formula(formula, knob_values) for name, formula in mapping.items()}

    stated = record.get("parameters")
    if isinstance(record.get("knobs"), dict) and isinstance(stated, dict):
        derived = parameters(record["knobs"])
        for name, number in stated.items():
            if name in derived and not math.isclose(derived[name], float(number), rel_tol=1e-6, abs_tol=1e-9):
                raise ReaTimbreError(
                    f"model {model_name!r}: its mapping gives {name} = {derived[name]:g} at {record['knobs']}, "
                    f"but its sidecar records {number}"
                )
    return ReferenceEffect(
        name=model_name,
        description=f"the real effect model {model_name!r} emulates",
        knobs=knobs,
        emulates=str(record["effect"]),
        parameters=parameters,
        chain=_plugin_chain(str(record["effect"])),
        mapping=mapping,
        tail_seconds=float(sidecar.get("tail_seconds", 0.0)),
    )
