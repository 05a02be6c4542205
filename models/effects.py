"""The real DSP effects the shipped neural models emulate, with their knobs.

Each :class:`ReferenceEffect` maps two or three user-facing knobs to the parameters of pedalboard's built-in
effects (and, for the pedal board, a few DSP stages pedalboard has no plugin for: ``models.pedals.dsp``), and
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
from models.pedals.dsp import AsymmetricClipper, Cabinet, FlipFlopOctave


@dataclass(frozen=True)
class ReferenceEffect:
    """A real effect with a knob-to-parameter mapping.

    ``parameters(knob_values)`` returns the effect's parameter values (for the sidecar and for building the chain);
    ``chain(parameters)`` builds the chain from them: pedalboard plugins, and callables
    ``stage(audio, sample_rate) -> audio`` for DSP stages pedalboard lacks (``models.pedals.dsp``). ``lfo`` says,
    for an effect modulated by an LFO that restarts with every render, which knob sets its rate in Hz and the
    LFO's phase at the first sample (radians of a sine), so a network can be given the same phase.
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
    latency_samples: int = 0  # how many samples the effect's output lags its input (at 44.1 kHz)
    lfo: LFO | None = None

    def process(self, audio: np.ndarray, sample_rate: int, knob_values: dict[str, float] | None = None) -> np.ndarray:
        """Apply the effect to ``audio`` (channels, samples), each channel separately, from a silent state."""
        values = resolve_knobs(list(self.knobs), knob_values)
        stages = _group_plugins(self.chain(self.parameters(values)))
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        rendered = []
        for channel in audio:
            signal = channel[None, :]
            for stage in stages:
                if isinstance(stage, pedalboard.Pedalboard):
                    signal = stage(signal, sample_rate, reset=True)
                else:
                    signal = np.asarray(stage(signal, sample_rate), dtype=np.float32)
            rendered.append(signal[0])
        return np.stack(rendered)

    def describe(self, knob_values: dict[str, float] | None = None) -> dict:
        """The mapping as data: what the effect is and its parameters at ``knob_values`` (defaults if None)."""
        values = resolve_knobs(list(self.knobs), knob_values)
        return {
            "effect": self.emulates,
            "mapping": self.mapping,
            "knobs": values,
            "parameters": self.parameters(values),
            "channels": "each channel processed separately, starting from silence",
            **({"latency_samples": self.latency_samples} if self.latency_samples else {}),
            **({"lfo": self.lfo.to_dict()} if self.lfo else {}),
        }


@dataclass(frozen=True)
class LFO:
    """An effect's LFO: the knob giving its rate in Hz, and its phase at a render's first sample (radians of a
    sine: the modulation is ``sin(2 pi rate t + start_phase)``)."""

    rate_knob: str
    start_phase: float

    def to_dict(self) -> dict:
        return {"rate_knob": self.rate_knob, "start_phase_rad": self.start_phase}


def _group_plugins(chain: list) -> list:
    """``chain`` with each run of consecutive pedalboard plugins joined into one Pedalboard (processed as one)."""
    stages: list = []
    for stage in chain:
        if isinstance(stage, pedalboard.Plugin):
            if stages and isinstance(stages[-1], list):
                stages[-1].append(stage)
            else:
                stages.append([stage])
        elif callable(stage):
            stages.append(stage)
        else:
            raise ReaTimbreError(f"a reference effect's chain holds {stage!r}, neither a plugin nor a DSP stage")
    return [pedalboard.Pedalboard(s) if isinstance(s, list) else s for s in stages]


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


def _fuzz_parameters(k: dict[str, float]) -> dict[str, float]:
    return {
        "input_highpass_hz": 120.0,
        "gain_db": k["gain"],
        "clip_bias": 0.35,
        "dc_block_hz": 25.0,
        "tone_lowpass_hz": 500.0 * 16.0 ** k["tone"],
        "output_gain_db": -8.0,
    }


FUZZ = ReferenceEffect(
    name="fuzz",
    description="Fuzz: gain into an asymmetric transistor clipper, DC blocker, tone low-pass",
    knobs=(
        Knob("gain", "dB", 10.0, 46.0, 30.0, description="gain into the clipper"),
        Knob("tone", "", 0.0, 1.0, 0.5, description="dark (0) to bright (1): low-pass 500 Hz to 8 kHz"),
    ),
    emulates="pedalboard.HighpassFilter -> pedalboard.Gain -> models.pedals.dsp.AsymmetricClipper -> "
    "pedalboard.HighpassFilter -> pedalboard.LowpassFilter -> pedalboard.Gain",
    parameters=_fuzz_parameters,
    chain=lambda p: [
        pedalboard.HighpassFilter(cutoff_frequency_hz=p["input_highpass_hz"]),
        pedalboard.Gain(gain_db=p["gain_db"]),
        AsymmetricClipper(bias=p["clip_bias"]),
        pedalboard.HighpassFilter(cutoff_frequency_hz=p["dc_block_hz"]),
        pedalboard.LowpassFilter(cutoff_frequency_hz=p["tone_lowpass_hz"]),
        pedalboard.Gain(gain_db=p["output_gain_db"]),
    ],
    mapping={
        "input_highpass_hz": "120",
        "gain_db": "gain",
        "clip_bias": "0.35",
        "dc_block_hz": "25",
        "tone_lowpass_hz": "500 * 16 ** tone",
        "output_gain_db": "-8",
    },
    memory_seconds=0.05,
)


def _amp_parameters(k: dict[str, float]) -> dict[str, float]:
    return {
        "input_highpass_hz": 90.0,
        "drive_db": k["gain"],
        "presence_hz": 2500.0,
        "presence_gain_db": 18.0 * k["tone"] - 12.0,
        "mid_hz": 700.0,
        "mid_gain_db": -6.0,
        "output_gain_db": -4.0,
    }


AMP = ReferenceEffect(
    name="amp",
    description="Guitar amp: preamp drive, presence shelf and mid scoop, then a generated 4x12 cabinet",
    knobs=(
        Knob("gain", "dB", 0.0, 40.0, 20.0, description="preamp drive"),
        Knob("tone", "", 0.0, 1.0, 0.5, description="presence: -12 dB (0) to +6 dB (1) above 2.5 kHz"),
    ),
    emulates="pedalboard.HighpassFilter -> pedalboard.Distortion -> pedalboard.HighShelfFilter -> "
    "pedalboard.PeakFilter -> models.pedals.dsp.Cabinet -> pedalboard.Gain",
    parameters=_amp_parameters,
    chain=lambda p: [
        pedalboard.HighpassFilter(cutoff_frequency_hz=p["input_highpass_hz"]),
        pedalboard.Distortion(drive_db=p["drive_db"]),
        pedalboard.HighShelfFilter(cutoff_frequency_hz=p["presence_hz"], gain_db=p["presence_gain_db"]),
        pedalboard.PeakFilter(cutoff_frequency_hz=p["mid_hz"], gain_db=p["mid_gain_db"]),
        Cabinet(),
        pedalboard.Gain(gain_db=p["output_gain_db"]),
    ],
    mapping={
        "input_highpass_hz": "90",
        "drive_db": "gain",
        "presence_hz": "2500",
        "presence_gain_db": "18 * tone - 12",
        "mid_hz": "700",
        "mid_gain_db": "-6",
        "output_gain_db": "-4",
    },
    memory_seconds=0.05,
)

OCTAVE = ReferenceEffect(
    name="octave",
    description="Octave down: a flip-flop divider times the low-passed input, mixed with the dry signal",
    knobs=(
        Knob("mix", "", 0.0, 1.0, 0.5, description="share of the octave-down voice"),
        Knob("tone", "", 0.0, 1.0, 0.5, description="octave voice dark (0) to bright (1): low-pass 150 Hz to 1.5 kHz"),
    ),
    emulates="models.pedals.dsp.FlipFlopOctave",
    parameters=lambda k: {"mix": k["mix"], "sub_lowpass_hz": 150.0 * 10.0 ** k["tone"]},
    chain=lambda p: [FlipFlopOctave(mix=p["mix"], sub_lowpass_hz=p["sub_lowpass_hz"])],
    mapping={"mix": "mix", "sub_lowpass_hz": "150 * 10 ** tone"},
    memory_seconds=0.1,
    latency_samples=FlipFlopOctave.latency_for(44_100),
)

CHORUS = ReferenceEffect(
    name="chorus",
    description="Chorus: one voice on a 7 ms delay swept by a sine LFO, mixed with the dry signal",
    knobs=(
        Knob("rate", "Hz", 0.2, 3.0, 0.8, scale="log", description="LFO rate"),
        Knob("depth", "", 0.0, 1.0, 0.5, description="delay sweep: +-0.5 ms (0) to +-5 ms (1)"),
        Knob("mix", "", 0.1, 0.9, 0.5, description="wet share of the output"),
    ),
    emulates="pedalboard.Chorus",
    parameters=lambda k: {
        "rate_hz": k["rate"],
        "depth": 0.05 + 0.45 * k["depth"],
        "centre_delay_ms": 7.0,
        "feedback": 0.0,
        "mix": k["mix"],
    },
    chain=lambda p: [pedalboard.Chorus(**p)],
    mapping={"rate_hz": "rate", "depth": "0.05 + 0.45 * depth", "centre_delay_ms": "7", "feedback": "0", "mix": "mix"},
    memory_seconds=0.0,  # the LFO restarts with every render: training crops start the effect where the net does
    tail_seconds=0.02,
    lfo=LFO(rate_knob="rate", start_phase=math.pi),  # measured: the delay is 7 ms - 10 ms * depth * sin(2 pi r t)
)

DELAY = ReferenceEffect(
    name="delay",
    description="Echo: a delay line with feedback, mixed with the dry signal",
    knobs=(
        Knob("time", "ms", 60.0, 400.0, 250.0, description="time between echoes"),
        Knob("feedback", "", 0.0, 0.6, 0.35, description="level of each echo relative to the one before"),
        Knob("mix", "", 0.1, 0.6, 0.35, description="wet share of the output"),
    ),
    emulates="pedalboard.Delay",
    parameters=lambda k: {"delay_seconds": k["time"] / 1000.0, "feedback": k["feedback"], "mix": k["mix"]},
    chain=lambda p: [pedalboard.Delay(**p)],
    mapping={"delay_seconds": "time / 1000", "feedback": "feedback", "mix": "mix"},
    tail_seconds=3.0,
    memory_seconds=3.0,
)

FILTER = ReferenceEffect(
    name="filter",
    description="Resonant ladder low-pass (24 dB/octave, Moog style)",
    knobs=(
        Knob("cutoff", "Hz", 150.0, 8000.0, 1000.0, scale="log", description="cutoff frequency"),
        Knob("resonance", "", 0.0, 0.9, 0.4, description="peak at the cutoff"),
    ),
    emulates="pedalboard.LadderFilter(LPF24)",
    parameters=lambda k: {"cutoff_hz": k["cutoff"], "resonance": k["resonance"], "drive": 1.0},
    chain=lambda p: [pedalboard.LadderFilter(mode=pedalboard.LadderFilter.Mode.LPF24, **p)],
    mapping={"cutoff_hz": "cutoff", "resonance": "resonance", "drive": "1"},
    memory_seconds=0.05,
)

PEDALS = ("fuzz", "amp", "octave", "chorus", "delay", "filter")  # issue 29's pedal board

REFERENCE_EFFECTS: dict[str, ReferenceEffect] = {
    e.name: e for e in (COMPRESSOR, OVERDRIVE, HALL_REVERB, FUZZ, AMP, OCTAVE, CHORUS, DELAY, FILTER)
}


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
    known = next((e for e in REFERENCE_EFFECTS.values() if e.emulates == record["effect"]), None)
    return ReferenceEffect(
        name=model_name,
        description=f"the real effect model {model_name!r} emulates",
        knobs=knobs,
        emulates=str(record["effect"]),
        parameters=parameters,
        chain=_plugin_chain(str(record["effect"])),
        mapping=mapping,
        tail_seconds=float(sidecar.get("tail_seconds", 0.0)),
        latency_samples=known.latency_samples if known else 0,
        lfo=known.lfo if known else None,
    )
