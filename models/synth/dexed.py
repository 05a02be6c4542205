"""Dexed, the DX7 six-operator FM synth, rendered headless through ``dexed-py``.

A DX7 voice is 155 numbers (the "VCED" single-voice layout of Yamaha's sysex: six operators of 21 values stored
OP6 first, then the pitch envelope, algorithm, feedback, LFO, transpose and a 10-character name). Each number is
one control of :class:`DexedSynth`, named ``op1_output_level`` … ``op6_detune``, ``algorithm``, ``feedback`` …,
in the DX7's own integer values: levels and rates 0–99, ``algorithm`` 0–31 (the DX7 shows 1–32),
``frequency_coarse`` 0–31 (0 is a ratio of 0.5), ``detune`` 0–14 (7 is none), ``transpose`` 0–48 (24 plays the
note as written). A set value is rounded to the nearest integer and clipped to the control's range, as the DX7
itself would store it; a host would see ``value / maximum``.

Patches are saved as a 32-voice DX7 cartridge (``.syx``, 4,104 bytes, what Dexed's and every DX7 librarian's
cartridge loader reads): the voice in slot 1, Dexed's init voice in the other 31. A cartridge, a single-voice
dump (163 bytes) or a bare 155-byte voice loads.

Renders are repeatable without settling: ``dexed-py`` starts every render from silence with fresh envelopes
(``tests/test_dexed_synth.py``). The engine is mono; both channels carry it.
"""

from __future__ import annotations

from functools import lru_cache

import dexed
import numpy as np

from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.synth.base import Synth

#: One operator's 21 values in VCED order, with each one's maximum.
OPERATOR_FIELDS: tuple[tuple[str, int], ...] = (
    ("rate1", 99), ("rate2", 99), ("rate3", 99), ("rate4", 99),
    ("level1", 99), ("level2", 99), ("level3", 99), ("level4", 99),
    ("breakpoint", 99), ("left_depth", 99), ("right_depth", 99), ("left_curve", 3), ("right_curve", 3),
    ("rate_scaling", 7), ("amp_mod_sensitivity", 3), ("velocity_sensitivity", 7), ("output_level", 99),
    ("frequency_mode", 1), ("frequency_coarse", 31), ("frequency_fine", 99), ("detune", 14),
)  # fmt: skip
#: The voice's global values after the operators, in VCED order.
GLOBAL_FIELDS: tuple[tuple[str, int], ...] = (
    ("pitch_rate1", 99), ("pitch_rate2", 99), ("pitch_rate3", 99), ("pitch_rate4", 99),
    ("pitch_level1", 99), ("pitch_level2", 99), ("pitch_level3", 99), ("pitch_level4", 99),
    ("algorithm", 31), ("feedback", 7), ("osc_key_sync", 1), ("lfo_speed", 99), ("lfo_delay", 99),
    ("lfo_pitch_mod_depth", 99), ("lfo_amp_mod_depth", 99), ("lfo_sync", 1), ("lfo_wave", 5),
    ("pitch_mod_sensitivity", 7), ("transpose", 48),
)  # fmt: skip
#: The names Dexed's plug-in gives a host for one operator's values (``OP1 EG RATE 1`` …): Dexed's
#: ``Source/PluginParam.cpp`` (``DexedAudioProcessor::initCtrl``; unchanged from 0.9.5 to 1.0).
HOST_OPERATOR_NAMES: dict[str, str] = {
    "rate1": "EG RATE 1", "rate2": "EG RATE 2", "rate3": "EG RATE 3", "rate4": "EG RATE 4",
    "level1": "EG LEVEL 1", "level2": "EG LEVEL 2", "level3": "EG LEVEL 3", "level4": "EG LEVEL 4",
    "breakpoint": "BREAK POINT", "left_depth": "L SCALE DEPTH", "right_depth": "R SCALE DEPTH",
    "left_curve": "L KEY SCALE", "right_curve": "R KEY SCALE", "rate_scaling": "RATE SCALING",
    "amp_mod_sensitivity": "A MOD SENS.", "velocity_sensitivity": "KEY VELOCITY", "output_level": "OUTPUT LEVEL",
    "frequency_mode": "MODE", "frequency_coarse": "F COARSE", "frequency_fine": "F FINE", "detune": "OSC DETUNE",
}  # fmt: skip
#: The names Dexed's plug-in gives the voice's global values (same source).
HOST_GLOBAL_NAMES: dict[str, str] = {
    "pitch_rate1": "PITCH EG RATE 1", "pitch_rate2": "PITCH EG RATE 2", "pitch_rate3": "PITCH EG RATE 3",
    "pitch_rate4": "PITCH EG RATE 4", "pitch_level1": "PITCH EG LEVEL 1", "pitch_level2": "PITCH EG LEVEL 2",
    "pitch_level3": "PITCH EG LEVEL 3", "pitch_level4": "PITCH EG LEVEL 4", "algorithm": "ALGORITHM",
    "feedback": "FEEDBACK", "osc_key_sync": "OSC KEY SYNC", "lfo_speed": "LFO SPEED", "lfo_delay": "LFO DELAY",
    "lfo_pitch_mod_depth": "LFO PM DEPTH", "lfo_amp_mod_depth": "LFO AM DEPTH", "lfo_sync": "LFO KEY SYNC",
    "lfo_wave": "LFO WAVE", "pitch_mod_sensitivity": "P MODE SENS.", "transpose": "TRANSPOSE",
}  # fmt: skip
#: Dexed plug-in parameters outside the voice that a render through ``dexed-py`` assumes: its output filter open
#: (``Cutoff`` 1, ``Resonance`` 0) and all six operators switched on. Output gain, tuning and mono mode are left
#: to the user.
HOST_PLAYBACK_VALUES: dict[str, float] = {
    "Cutoff": 1.0, "Resonance": 0.0, **{f"OP{op} SWITCH": 1.0 for op in range(1, 7)},
}  # fmt: skip
VOICE_BYTES = 155
NAME_BYTES = 10
SINGLE_VOICE_HEADER = bytes([0xF0, 0x43, 0x00, 0x00, 0x01, 0x1B])
CARTRIDGE_HEADER = bytes([0xF0, 0x43, 0x00, 0x09, 0x20, 0x00])
CARTRIDGE_BYTES = 4104
CARTRIDGE_VOICES = 32


def _layout() -> dict[str, tuple[int, int]]:
    """Control name → (byte offset in the voice, maximum)."""
    layout: dict[str, tuple[int, int]] = {}
    for stored in range(6):  # stored OP6 first
        op = 6 - stored
        for i, (field, maximum) in enumerate(OPERATOR_FIELDS):
            layout[f"op{op}_{field}"] = (stored * 21 + i, maximum)
    for i, (field, maximum) in enumerate(GLOBAL_FIELDS):
        layout[field] = (126 + i, maximum)
    return layout


CONTROLS: dict[str, tuple[int, int]] = _layout()
#: The byte after a VCED voice in ``dexed-py``'s sysex: which operators are on (all six).
OPERATORS_ON = b"\x3f"


@lru_cache(maxsize=1)
def _init_voice_bytes() -> bytes:
    patch = dexed.Patch("INIT VOICE")
    for op in range(1, 6):
        patch.op[op].output_level = 0
    return patch.to_sysex()[:VOICE_BYTES]


def init_voice() -> bytearray:
    """The DX7's init voice (``INIT VOICE``): algorithm 1, operator 1 alone at output level 99, a plain sine."""
    return bytearray(_init_voice_bytes())


def _checksum(payload: bytes) -> int:
    return (-sum(payload)) & 0x7F


def cartridge_bytes(voice: bytes) -> bytes:
    """A 32-voice DX7 cartridge with ``voice`` (155 bytes) in slot 1 and the init voice in the others."""
    first = dexed.Patch.from_sysex(bytes(voice) + OPERATORS_ON).to_packed()
    rest = dexed.Patch.from_sysex(bytes(init_voice()) + OPERATORS_ON).to_packed()
    payload = bytes(first) + bytes(rest) * (CARTRIDGE_VOICES - 1)
    return CARTRIDGE_HEADER + payload + bytes([_checksum(payload), 0xF7])


def voice_from_bytes(data: bytes) -> bytearray:
    """The first voice of a cartridge, a single-voice dump or a bare voice (raises :class:`ReaTimbreError`)."""
    if len(data) == CARTRIDGE_BYTES and data[:6] == CARTRIDGE_HEADER and data[-1] == 0xF7:
        payload = data[6 : 6 + 4096]
        if _checksum(payload) != data[6 + 4096]:
            raise ReaTimbreError("DX7 cartridge checksum does not match: the file is damaged")
        return bytearray(dexed.Patch.from_packed(payload[:128]).to_sysex()[:VOICE_BYTES])
    if len(data) == len(SINGLE_VOICE_HEADER) + VOICE_BYTES + 2 and data[:6] == SINGLE_VOICE_HEADER:
        voice = data[6 : 6 + VOICE_BYTES]
        if _checksum(voice) != data[6 + VOICE_BYTES] or data[-1] != 0xF7:
            raise ReaTimbreError("DX7 single-voice dump is damaged (checksum or end byte)")
        return bytearray(voice)
    if len(data) in (VOICE_BYTES, VOICE_BYTES + 1):
        return bytearray(data[:VOICE_BYTES])
    raise ReaTimbreError(
        f"not a DX7 voice: expected a 4104-byte cartridge, a 163-byte single-voice dump or 155 bytes, got {len(data)}"
    )


class DexedSynth(Synth):
    """Dexed through ``dexed-py``: the 145 numbers of a DX7 voice as controls, DX7 integer values."""

    kind = "dexed"

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        super().__init__(sample_rate_hz)
        self._engine = dexed.DexedSynth(sample_rate=float(self.sample_rate_hz))
        self._voice = init_voice()

    def control_names(self) -> list[str]:
        return list(CONTROLS)

    def _spec(self, name: str) -> tuple[int, int]:
        if name not in CONTROLS:
            raise ReaTimbreError(f"dexed synth has no control named {name!r}")
        return CONTROLS[name]

    def get_control(self, name: str) -> float:
        return float(self._voice[self._spec(name)[0]])

    def _set_control(self, name: str, value: float) -> None:
        offset, maximum = self._spec(name)
        self._voice[offset] = int(min(maximum, max(0, round(value))))

    def _set_checked(self, names: list[str], numbers: np.ndarray) -> None:
        """All at once, rounded and clipped as :meth:`_set_control` does (a search sets the whole voice per render)."""
        if not names:
            return
        offsets, maxima = zip(*(CONTROLS[name] for name in names), strict=True)
        voice = np.frombuffer(self._voice, dtype=np.uint8)  # a view: writes go into the voice
        voice[list(offsets)] = np.clip(np.rint(numbers), 0, maxima).astype(np.uint8)

    def control_text(self, name: str) -> str:
        value = int(self.get_control(name))
        return str(value + 1) if name == "algorithm" else str(value)

    def normalized_value(self, name: str) -> float:
        offset, maximum = self._spec(name)
        return self._voice[offset] / maximum

    def host_parameter_values(self) -> dict[str, float]:
        """The current voice as Dexed's plug-in parameters: a host's parameter name → normalised value (the DX7
        value / its maximum, which Dexed rounds back to the value), with :data:`HOST_PLAYBACK_VALUES`. Set them all
        and a Dexed in a host plays this voice (its name aside: the name is no parameter)."""
        values = dict(HOST_PLAYBACK_VALUES)
        for name in CONTROLS:
            op, _, field = name.partition("_")
            host = f"{op.upper()} {HOST_OPERATOR_NAMES[field]}" if op[:2] == "op" and op[2:].isdigit() else None
            values[host or HOST_GLOBAL_NAMES[name]] = self.normalized_value(name)
        return values

    @property
    def voice_name(self) -> str:
        return bytes(self._voice[VOICE_BYTES - NAME_BYTES : VOICE_BYTES]).decode("ascii", "replace").rstrip()

    @voice_name.setter
    def voice_name(self, name: str) -> None:
        text = "".join(c if 32 <= ord(c) < 127 else "_" for c in name)[:NAME_BYTES].ljust(NAME_BYTES)
        self._voice[VOICE_BYTES - NAME_BYTES : VOICE_BYTES] = text.encode("ascii")

    def voice_bytes(self) -> bytes:
        """The current voice: 155 VCED bytes."""
        return bytes(self._voice)

    def patch_bytes(self) -> bytes:
        return cartridge_bytes(bytes(self._voice))

    def load_patch_bytes(self, data: bytes) -> None:
        voice = voice_from_bytes(bytes(data))
        for name, (offset, maximum) in CONTROLS.items():
            if voice[offset] > maximum:
                raise ReaTimbreError(f"DX7 voice: {name} is {voice[offset]}, above its maximum {maximum}")
        self._voice = voice

    def _settle(self, note: int) -> None:
        """Nothing to do: every ``dexed-py`` render starts from silence."""

    def _render_note(self, note: int, velocity: float, note_seconds: float, render_seconds: float) -> np.ndarray:
        # the sysex straight to the engine: dexed.Patch's parse and re-serialise give the same bytes back and cost
        # 0.4 ms a render (tests/test_dexed_synth.py renders both ways)
        self._engine._synth.load_sysex(bytes(self._voice) + OPERATORS_ON)
        midi_velocity = int(min(127, max(1, round(velocity * 127))))
        mono = np.asarray(self._engine.render(note, midi_velocity, note_seconds, render_seconds), dtype=np.float32)
        n_samples = int(round(render_seconds * self.sample_rate_hz))
        if mono.shape[0] < n_samples:
            mono = np.pad(mono, (0, n_samples - mono.shape[0]))
        return np.stack([mono[:n_samples], mono[:n_samples]])
