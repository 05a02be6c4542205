"""Dexed's plug-in parameters as a host lists them, transcribed from Dexed's own source for the REAPER tests.

Source: ``asb2m10/dexed``, ``Source/PluginParam.cpp``, ``DexedAudioProcessor::initCtrl`` (master of 2026-03-15,
the layout of Dexed 0.9.5 to 1.0): five controls of the plug-in, the voice's global values, then per operator
OP1 … OP6 its 21 values and an on/off switch. A voice value is normalised as ``value / steps`` (``CtrlDX``,
``steps`` being the value's maximum) and set back with ``roundToInt(normalised * steps)``. The voice offsets are
the DX7's VCED layout, operators stored OP6 first (``opTarget = (5 - i) * 21`` for OP ``i + 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from reaper_emulator import EmuParam


@dataclass(frozen=True)
class DexedParameter:
    name: str
    voice_offset: int | None  # the VCED byte it sets; None for the plug-in's own controls
    steps: int  # the value's maximum (Dexed's ``steps``)


_PLUGIN = ["Cutoff", "Resonance", "Output", "MonoMode", "MASTER TUNE ADJ"]
_GLOBAL = [
    ("ALGORITHM", 134, 31), ("FEEDBACK", 135, 7), ("OSC KEY SYNC", 136, 1), ("LFO SPEED", 137, 99),
    ("LFO DELAY", 138, 99), ("LFO PM DEPTH", 139, 99), ("LFO AM DEPTH", 140, 99), ("LFO KEY SYNC", 141, 1),
    ("LFO WAVE", 142, 5), ("TRANSPOSE", 144, 48), ("P MODE SENS.", 143, 7),
    *((f"PITCH EG RATE {i + 1}", 126 + i, 99) for i in range(4)),
    *((f"PITCH EG LEVEL {i + 1}", 130 + i, 99) for i in range(4)),
]  # fmt: skip
_OPERATOR = [
    *((f"EG RATE {j + 1}", j, 99) for j in range(4)), *((f"EG LEVEL {j + 1}", 4 + j, 99) for j in range(4)),
    ("OUTPUT LEVEL", 16, 99), ("MODE", 17, 1), ("F COARSE", 18, 31), ("F FINE", 19, 99), ("OSC DETUNE", 20, 14),
    ("BREAK POINT", 8, 99), ("L SCALE DEPTH", 9, 99), ("R SCALE DEPTH", 10, 99), ("L KEY SCALE", 11, 3),
    ("R KEY SCALE", 12, 3), ("RATE SCALING", 13, 7), ("A MOD SENS.", 14, 3), ("KEY VELOCITY", 15, 7),
]  # fmt: skip


def dexed_parameters() -> list[DexedParameter]:
    """Dexed's 156 parameters in its host order."""
    out = [DexedParameter(name, None, 1) for name in _PLUGIN]
    out += [DexedParameter(name, offset, steps) for name, offset, steps in _GLOBAL]
    for i in range(6):
        base = (5 - i) * 21
        out += [DexedParameter(f"OP{i + 1} {name}", base + offset, steps) for name, offset, steps in _OPERATOR]
        out.append(DexedParameter(f"OP{i + 1} SWITCH", None, 1))
    return out


def dexed_emulated(value: float = 0.3) -> list[EmuParam]:
    """The parameters for the REAPER emulator, each at ``value`` (a Dexed holding some other voice)."""
    return [EmuParam(p.name, value) for p in dexed_parameters()]


def voice_from_host(values: list[float]) -> bytes:
    """The 145 voice values a Dexed would hold after a host set ``values`` (in host order), as Dexed reads them."""
    voice = bytearray(145)
    for p, value in zip(dexed_parameters(), values, strict=True):
        if p.voice_offset is not None:
            voice[p.voice_offset] = round(value * p.steps)
    return bytes(voice)
