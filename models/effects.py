"""The real DSP effects the shipped neural models emulate, with their knobs.

Each :class:`ReferenceEffect` maps two user-facing knobs to the parameters of pedalboard's built-in effects, and
processes audio with a fresh effect state every call (so a render depends only on its input). Every channel is
processed on its own, exactly as the neural model (mono in, mono out) treats a multichannel file.
"""

from __future__ import annotations

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
