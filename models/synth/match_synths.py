"""The synths patch matching infers patches for: a parameter space, a renderer and a patch file writer for each.

* ``vital`` — wavetable/virtual analogue (Vital through ``vita``). Vital ships no presets here, so its patches are
  random settings of 22 controls around Vital's init patch (oscillator 1 always on with its warp mode and
  amount, unison, an optional second oscillator a fifth or octave away, an optional filter, the amplitude
  envelope), each drawn from a musically sensible range (:data:`VITAL_PARAMETERS`). Patches: ``.vital`` files.
* ``amsynth`` — two-oscillator subtractive (Debian's amsynth VST through DawDreamer). All 41 parameters, with
  the ranges of amsynth's own parameter table (``Parameter.cpp``); its patches are the 3,482 human-made presets
  of the 28 banks Debian installs in ``/usr/share/amsynth/banks``. Patches: an amsynth bank file (one preset).
* ``kars`` — Karplus-Strong plucked string, physical modelling (DISTRHO's Kars VST, ``dpf-plugins-vst``; its
  three parameters). Random patches. Patches: ReaTimbre's plug-in patch JSON (:class:`PluginSynth`).
* ``dexed`` — six-operator FM (Dexed, the DX7, through ``dexed-py``). No human DX7 cartridges ship here, so its
  patches are random voices around the DX7's init voice: any of the 32 algorithms, feedback, and per operator its
  output level, frequency ratio (0.5 and 1–8), detune and a four-number envelope (attack rate, decay rate,
  sustain level, release rate), drawn so that the algorithm's carriers sound (:meth:`DexedMatch.random_patch`).
  Patches: a DX7 cartridge (``.syx``) with the voice in slot 1.

A native patch is a ``{parameter: value}`` dict in the synth's own values (see :mod:`models.synth.spaces`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.errors import ReaTimbreError
from models.synth.base import Synth
from models.synth.plugin import AMSYNTH_VST_PATH
from models.synth.spaces import CATEGORICAL, CONTINUOUS, ParameterSpace, ParameterSpec

AMSYNTH_BANK_DIR = Path("/usr/share/amsynth/banks")
KARS_VST_PATH = Path("/usr/lib/vst/Kars-vst.so")


def _continuous(
    name: str, default: float, low: float, high: float, sample: tuple[float, float] | None = None
) -> ParameterSpec:
    sample_low, sample_high = sample if sample is not None else (None, None)
    return ParameterSpec(name, CONTINUOUS, default, low, high, sample_low=sample_low, sample_high=sample_high)


def _categorical(name: str, default: float, classes: tuple[float, ...]) -> ParameterSpec:
    return ParameterSpec(name, CATEGORICAL, default, classes=classes)


def _steps(low: int, high: int) -> tuple[float, ...]:
    return tuple(float(v) for v in range(low, high + 1))


#: Vital: (control, full range from Vital, sampling range) — oscillator warp modes None..Pulse (the FM/RM modes
#: need a second source), filter models Analog..Diode in 12/24 dB, the second oscillator 7, 12 or 19 semitones up.
VITAL_PARAMETERS: tuple[ParameterSpec, ...] = (
    _continuous("osc_1_level", 0.7071, 0.0, 1.0, (0.5, 1.0)),
    _categorical("osc_1_distortion_type", 0.0, _steps(0, 6)),
    _continuous("osc_1_distortion_amount", 0.5, 0.0, 1.0),
    _categorical("osc_1_unison_voices", 1.0, (1.0, 3.0, 5.0)),
    _continuous("osc_1_unison_detune", 4.4721, 0.0, 10.0, (0.0, 6.0)),
    _categorical("osc_2_on", 0.0, (0.0, 1.0)),
    _continuous("osc_2_level", 0.7071, 0.0, 1.0, (0.3, 1.0)),
    _categorical("osc_2_transpose", 0.0, (7.0, 12.0, 19.0)),
    _categorical("osc_2_distortion_type", 0.0, _steps(0, 6)),
    _continuous("osc_2_distortion_amount", 0.5, 0.0, 1.0),
    _continuous("osc_2_tune", 0.0, -1.0, 1.0, (-0.2, 0.2)),
    _categorical("filter_1_on", 0.0, (0.0, 1.0)),
    _categorical("filter_1_model", 0.0, _steps(0, 4)),
    _categorical("filter_1_style", 0.0, (0.0, 1.0)),
    _continuous("filter_1_cutoff", 60.0, 8.0, 136.0, (40.0, 130.0)),
    _continuous("filter_1_resonance", 0.5, 0.0, 1.0, (0.0, 0.8)),
    _continuous("filter_1_drive", 0.0, 0.0, 20.0, (0.0, 12.0)),
    _continuous("env_1_attack", 0.1495, 0.0, 2.3784, (0.0, 0.75)),
    _continuous("env_1_decay", 1.0, 0.0, 2.3784, (0.3, 1.5)),
    _continuous("env_1_sustain", 1.0, 0.0, 1.0),
    _continuous("env_1_release", 0.5476, 0.0, 2.3784, (0.2, 1.2)),
    _continuous("volume", 5473.0405, 0.0, 7399.4404, (3000.0, 6500.0)),
)

#: amsynth 1.13's parameter table (name, default, min, max, step): step-1 parameters are categorical.
AMSYNTH_TABLE: tuple[tuple[str, float, float, float, float], ...] = (
    ("amp_attack", 0.0, 0.0, 2.5, 0.0),
    ("amp_decay", 0.0, 0.0, 2.5, 0.0),
    ("amp_sustain", 1.0, 0.0, 1.0, 0.0),
    ("amp_release", 0.0, 0.0, 2.5, 0.0),
    ("osc1_waveform", 2.0, 0.0, 4.0, 1.0),
    ("filter_attack", 0.0, 0.0, 2.5, 0.0),
    ("filter_decay", 0.0, 0.0, 2.5, 0.0),
    ("filter_sustain", 1.0, 0.0, 1.0, 0.0),
    ("filter_release", 0.0, 0.0, 2.5, 0.0),
    ("filter_resonance", 0.0, 0.0, 0.97, 0.0),
    ("filter_env_amount", 0.0, -16.0, 16.0, 0.0),
    ("filter_cutoff", 1.5, -0.5, 1.5, 0.0),
    ("osc2_detune", 0.0, -1.0, 1.0, 0.0),
    ("osc2_waveform", 2.0, 0.0, 4.0, 1.0),
    ("master_vol", 0.67, 0.0, 1.0, 0.0),
    ("lfo_freq", 0.0, 0.0, 7.5, 0.0),
    ("lfo_waveform", 0.0, 0.0, 6.0, 1.0),
    ("osc2_range", 0.0, -3.0, 4.0, 1.0),
    ("osc_mix", 0.0, -1.0, 1.0, 0.0),
    ("freq_mod_amount", 0.0, 0.0, 1.25992105, 0.0),
    ("filter_mod_amount", -1.0, -1.0, 1.0, 0.0),
    ("amp_mod_amount", -1.0, -1.0, 1.0, 0.0),
    ("osc_mix_mode", 0.0, 0.0, 1.0, 0.0),
    ("osc1_pulsewidth", 1.0, 0.0, 1.0, 0.0),
    ("osc2_pulsewidth", 1.0, 0.0, 1.0, 0.0),
    ("reverb_roomsize", 0.0, 0.0, 1.0, 0.0),
    ("reverb_damp", 0.0, 0.0, 1.0, 0.0),
    ("reverb_wet", 0.0, 0.0, 1.0, 0.0),
    ("reverb_width", 1.0, 0.0, 1.0, 0.0),
    ("distortion_crunch", 0.0, 0.0, 0.9, 0.0),
    ("osc2_sync", 0.0, 0.0, 1.0, 1.0),
    ("portamento_time", 0.0, 0.0, 1.0, 0.0),
    ("keyboard_mode", 0.0, 0.0, 2.0, 1.0),
    ("osc2_pitch", 0.0, -12.0, 12.0, 1.0),
    ("filter_type", 0.0, 0.0, 4.0, 1.0),
    ("filter_slope", 1.0, 0.0, 1.0, 1.0),
    ("freq_mod_osc", 0.0, 0.0, 2.0, 1.0),
    ("filter_kbd_track", 1.0, 0.0, 1.0, 0.0),
    ("filter_vel_sens", 1.0, 0.0, 1.0, 0.0),
    ("amp_vel_sens", 1.0, 0.0, 1.0, 0.0),
    ("portamento_mode", 0.0, 0.0, 1.0, 0.0),
)

AMSYNTH_PARAMETERS: tuple[ParameterSpec, ...] = tuple(
    _categorical(name, default, _steps(int(low), int(high))) if step == 1.0 else _continuous(name, default, low, high)
    for name, default, low, high, step in AMSYNTH_TABLE
)

#: Kars's parameters are host-normalised values: Sustain is a switch, Release 0..1 maps to its release time.
KARS_PARAMETERS: tuple[ParameterSpec, ...] = (
    _categorical("Sustain", 0.0, (0.0, 1.0)),
    _continuous("Release", 0.002, 0.0, 1.0),
    _continuous("Volume", 0.75, 0.0, 1.0, (0.3, 1.0)),
)


#: Dexed: the voice's controls a match infers (DX7 integer values; the rest of the voice is the init voice's).
#: Each operator's envelope is attack rate (``rate1``, to level 99), decay rate (``rate2``), sustain level
#: (``level2``, held: ``level3`` follows it) and release rate (``rate4``, to 0).
#: The defaults are the init voice's: operator 1 alone at output 99, ratio 1, no detune, instant envelopes.
def _dexed_operator(op: int) -> tuple[ParameterSpec, ...]:
    return (
        _continuous(f"op{op}_output_level", 99.0 if op == 1 else 0.0, 0.0, 99.0),
        _categorical(f"op{op}_frequency_coarse", 1.0, _steps(0, 8)),
        _continuous(f"op{op}_detune", 7.0, 0.0, 14.0),
        _continuous(f"op{op}_rate1", 99.0, 0.0, 99.0),
        _continuous(f"op{op}_rate2", 99.0, 0.0, 99.0),
        _continuous(f"op{op}_level2", 99.0, 0.0, 99.0),
        _continuous(f"op{op}_rate4", 99.0, 0.0, 99.0),
    )


DEXED_PARAMETERS: tuple[ParameterSpec, ...] = (
    _categorical("algorithm", 0.0, _steps(0, 31)),
    _continuous("feedback", 0.0, 0.0, 7.0),
    *(spec for op in range(1, 7) for spec in _dexed_operator(op)),
)


@dataclass(frozen=True)
class Preset:
    """A human-made preset: a unique name (bank/name#index) and its native values."""

    name: str
    values: dict[str, float]


class MatchSynth(ABC):
    """A synth as patch matching sees it: a parameter space, native patches in, audio out, patch files."""

    name: str = ""
    method: str = ""
    patch_suffix: str = ""
    #: Renders ``match`` spends by default refining a patch by ear (``models.asp.refine``), so that a match
    #: stays within about 1 s per synth on a 2-core CPU at this synth's render cost.
    refine_renders: int = 0
    #: Whether a patch renders the same every time. amsynth's and Kars's do not (noise sources: the same patch
    #: twice at MIDI 57 is 0.34 dB LSD apart on average for amsynth's presets, 5.2 dB for random Kars patches;
    #: Vital and Dexed 0): the closest of several renders is then partly the luckiest, so its distance is told
    #: from one more render (:func:`models.asp.infer.heard_distance`).
    repeatable: bool = True

    def __init__(self, space: ParameterSpace) -> None:
        self.space = space
        self._synth: Synth | None = None
        #: How long the last answer's patch file and host values took (s), kept free in the next one's time budget.
        self.finish_seconds = 0.0

    def renders_refining(self, refine: int | None) -> int:
        """Renders to refine a patch with: ``refine`` as asked, or this synth's :attr:`refine_renders` for None."""
        return self.refine_renders if refine is None else refine

    @property
    def synth(self) -> Synth:
        """The renderer (loaded on first use)."""
        if self._synth is None:
            self._synth = self._make()
        return self._synth

    @abstractmethod
    def _make(self) -> Synth:
        """Load the renderer."""

    @abstractmethod
    def apply(self, native: Mapping[str, float], *, from_init: bool = True) -> None:
        """Make the synth's patch ``native`` (missing parameters at their defaults). ``from_init`` False lets a
        synth set only the space's controls on the patch it was last given, where starting afresh costs time and
        the render hardly differs (Vital: see :meth:`VitalMatch.apply`); what a search's comparisons use."""

    def read(self) -> dict[str, float]:
        """The synth's current native values of the space's parameters (controls named as the parameters)."""
        return {name: self.synth.get_control(name) for name in self.space.names()}

    @abstractmethod
    def patch_file_bytes(self, native: Mapping[str, float], name: str) -> bytes:
        """A patch file, in the synth's own format, holding ``native``."""

    def presets(self) -> list[Preset]:
        """The synth's human-made presets (none: random patches are drawn instead)."""
        return []

    def render_settings(self) -> dict[str, float]:
        """How the renderer prepares a note, where that is ReaTimbre's choice and changes the audio (none by
        default); a dataset records it so that clips rendered one way are not extended with clips of another."""
        return {}

    def host_controls(self) -> list[str]:
        """The controls that make up a whole patch in a host: set them all and the plug-in holds the patch."""
        return self.space.names()

    def host_values_by_name(self) -> dict[str, float]:
        """The synth's current patch as a host's parameter name → normalised value, for plug-ins a host should
        address by name rather than by index (none by default: :meth:`host_controls` gives the indices)."""
        return {}

    def random_patch(self, rng: np.random.Generator) -> dict[str, float]:
        """A random native patch for synths without presets (default: each parameter from its sampling range)."""
        return self.space.random_patch(rng)

    def render(
        self,
        native: Mapping[str, float],
        note: int,
        velocity: float,
        note_seconds: float,
        render_seconds: float,
        *,
        from_init: bool = True,
    ) -> np.ndarray:
        """Render one note of a native patch: float32 (2, samples); ``from_init`` as :meth:`apply`'s."""
        self.apply(native, from_init=from_init)
        return self.synth.render(note, velocity, note_seconds, render_seconds)


class VitalMatch(MatchSynth):
    name = "vital"
    refine_renders = 6  # a render costs ~35 ms: its 12 guesses and 3 candidate notes already take ~0.55 s
    #: Settling before each note (``VitalSynth``): 0.5 s, so that less of the settling note's release reaches into
    #: a clip compared with a target from elsewhere (0.025 dB LSD on average from a fully settled render; 0.3 s:
    #: 0.07 dB; 1 s: 0.004 dB, but 0.89 s a match instead of 0.69, too near the 1 s goal).
    settle_seconds = 0.5
    method = "wavetable / virtual analogue"
    patch_suffix = ".vital"

    def __init__(self) -> None:
        super().__init__(ParameterSpace(self.name, list(VITAL_PARAMETERS)))

    def _make(self) -> Synth:
        from models.synth.vital import VitalSynth

        return VitalSynth(settle_seconds=self.settle_seconds)

    def apply(self, native: Mapping[str, float], *, from_init: bool = True) -> None:
        """Vital's own init preset (not its saved JSON loaded back: the same renders within 1e-7, in 7 ms instead of
        12 on a Xeon, 22 ms on the EPYC), then the space's controls. With ``from_init`` False only the controls are
        set: a voice's state then carries over from the last patch, a render 0.001 dB LSD on average from one
        started afresh (at most 0.022, 40 random patches each after another), for about a quarter of its time."""
        from models.synth.vital import VitalSynth

        synth = self.synth
        assert isinstance(synth, VitalSynth)
        if from_init:
            synth.load_init_patch()
        synth.set_controls(self.space.complete(native))

    def render_settings(self) -> dict[str, float]:
        from models.synth.vital import SETTLE_NOTE_SECONDS

        # from the settings, not the loaded synth: match-data's main process never renders, so it loads no Vital
        return {"settle_seconds": self.settle_seconds, "settle_note_seconds": SETTLE_NOTE_SECONDS}

    def host_controls(self) -> list[str]:
        """Every control: the inferred ones sit on Vital's init patch, which a host's Vital may not hold."""
        return self.synth.control_names()

    def patch_file_bytes(self, native: Mapping[str, float], name: str) -> bytes:
        import json

        from models.synth.vital import VitalSynth

        self.apply(native)
        synth = self.synth
        assert isinstance(synth, VitalSynth)
        patch = synth.patch_json()
        patch.update(preset_name=name, author="ReaTimbre match", comments="inferred by reatimbre match")
        return json.dumps(patch).encode("utf-8")


class _PluginMatch(MatchSynth):
    """A hosted plug-in whose controls are set from native values through ``to_host``."""

    plugin_path: Path = Path()

    def _make(self) -> Synth:
        from models.synth.plugin import PluginSynth

        return PluginSynth(self.plugin_path)

    def to_host(self, name: str, value: float) -> float:
        return value

    def from_host(self, name: str, host: float) -> float:
        return host

    def apply(self, native: Mapping[str, float], *, from_init: bool = True) -> None:
        values = self.space.complete(native)
        self.synth.set_controls({k: min(1.0, max(0.0, self.to_host(k, v))) for k, v in values.items()})

    def read(self) -> dict[str, float]:
        return {name: self.from_host(name, self.synth.get_control(name)) for name in self.space.names()}


class AmsynthMatch(_PluginMatch):
    name = "amsynth"
    repeatable = False
    refine_renders = 60
    method = "two-oscillator subtractive"
    patch_suffix = ".amSynth.bank"
    plugin_path = AMSYNTH_VST_PATH

    def __init__(self, bank_dir: Path = AMSYNTH_BANK_DIR) -> None:
        super().__init__(ParameterSpace(self.name, list(AMSYNTH_PARAMETERS)))
        self.bank_dir = Path(bank_dir)
        self._ranges = {name: (low, high) for name, _d, low, high, _s in AMSYNTH_TABLE}

    def to_host(self, name: str, value: float) -> float:
        low, high = self._ranges[name]
        return (value - low) / (high - low)

    def from_host(self, name: str, host: float) -> float:
        low, high = self._ranges[name]
        return low + host * (high - low)

    def presets(self) -> list[Preset]:
        return list(_amsynth_presets(str(self.bank_dir)))

    def patch_file_bytes(self, native: Mapping[str, float], name: str) -> bytes:
        values = self.space.complete(native)
        safe = re.sub(r"\s+", "_", name.strip()) or "matched"
        lines = ["amSynth", f"<preset> <name> {safe}"]
        lines += [f"<parameter> {key} {values[key]:.6g}" for key in self.space.names()]
        return ("\n".join(lines) + "\n").encode("utf-8")


def parse_amsynth_bank(text: str, bank: str) -> list[Preset]:
    """The presets of one amsynth bank file's text (``<preset> <name> N`` then ``<parameter> key value`` lines)."""
    presets: list[Preset] = []
    known = {name for name, *_ in AMSYNTH_TABLE}
    name: str | None = None
    values: dict[str, float] = {}

    def close() -> None:
        if name is not None:
            presets.append(Preset(f"{bank}/{name}#{len(presets)}", dict(values)))

    for line in text.splitlines():
        parts = line.split()
        if line.startswith("<preset>"):
            close()
            name, values = " ".join(parts[2:]) or "unnamed", {}
        elif line.startswith("<parameter>") and len(parts) == 3 and name is not None:
            key = parts[1]
            try:
                value = float(parts[2])
            except ValueError as exc:
                raise ReaTimbreError(f"amsynth bank {bank}: bad value in {line.strip()!r}") from exc
            if key in known and np.isfinite(value):
                values[key] = value
    close()
    return presets


@lru_cache(maxsize=2)
def _amsynth_presets(bank_dir: str) -> tuple[Preset, ...]:
    folder = Path(bank_dir)
    banks = sorted(folder.glob("*.bank")) if folder.is_dir() else []
    if not banks:
        raise ReaTimbreError(
            f"no amsynth banks in {folder}; install Debian's amsynth package (python3 install.py --dev)"
        )
    presets: list[Preset] = []
    for path in banks:
        bank = path.name.split(".")[0]
        presets += parse_amsynth_bank(path.read_text(encoding="utf-8", errors="replace"), bank)
    return tuple(presets)


class KarsMatch(_PluginMatch):
    name = "kars"
    repeatable = False
    method = "Karplus-Strong plucked string (physical modelling)"
    patch_suffix = ".json"
    plugin_path = KARS_VST_PATH

    def __init__(self) -> None:
        super().__init__(ParameterSpace(self.name, list(KARS_PARAMETERS)))

    def patch_file_bytes(self, native: Mapping[str, float], name: str) -> bytes:
        self.apply(native)
        return self.synth.patch_bytes()


class DexedMatch(MatchSynth):
    name = "dexed"
    refine_renders = 300
    method = "six-operator FM (DX7)"
    patch_suffix = ".syx"

    def __init__(self) -> None:
        super().__init__(ParameterSpace(self.name, list(DEXED_PARAMETERS)))

    def _make(self) -> Synth:
        from models.synth.dexed import DexedSynth

        return DexedSynth()

    def apply(self, native: Mapping[str, float], *, from_init: bool = True) -> None:
        from models.synth.dexed import DexedSynth, init_voice

        synth = self.synth
        assert isinstance(synth, DexedSynth)
        synth.load_patch_bytes(bytes(init_voice()))
        values = self.space.complete(native)
        for op in range(1, 7):
            values[f"op{op}_level1"] = 99.0
            values[f"op{op}_rate3"] = values[f"op{op}_rate2"]
            values[f"op{op}_level3"] = values[f"op{op}_level2"]
            values[f"op{op}_level4"] = 0.0
        synth.set_controls(values)

    def host_controls(self) -> list[str]:
        """None by index: a host addresses Dexed's parameters by name (:meth:`host_values_by_name`)."""
        return []

    def host_values_by_name(self) -> dict[str, float]:
        """The whole voice by Dexed's plug-in parameter names: Dexed's parameter order has changed between its
        versions, its names have not (``TRANSPOSE`` aside: ``MIDDLE C`` before 0.9.5, which REAPER's side knows)."""
        from models.synth.dexed import DexedSynth

        synth = self.synth
        assert isinstance(synth, DexedSynth)
        return synth.host_parameter_values()

    def random_patch(self, rng: np.random.Generator) -> dict[str, float]:
        """A random voice that sounds: an algorithm, its carriers loud (output 75–99, ratio mostly 1), each
        modulator off (a quarter of them) or at 35–90 with a ratio of 0.5–8; attack rates 40–99, decay rates
        20–90, sustain levels 0–99, release rates 35–90, detune 4–10 (7 is none); feedback 0–7. Integers, as
        the DX7 stores them."""
        from dexed import algorithms

        algorithm = int(rng.integers(32))
        carriers = set(algorithms[algorithm].carriers)
        values: dict[str, float] = {"algorithm": float(algorithm), "feedback": float(rng.integers(0, 8))}
        for op in range(1, 7):
            carrier = (op - 1) in carriers
            if carrier:
                level = rng.uniform(75, 99)
                coarse = rng.choice([0, 1, 1, 1, 1, 2, 2, 3, 4])
            else:
                level = 0.0 if rng.random() < 0.25 else rng.uniform(35, 90)
                coarse = rng.integers(0, 9)
            values.update(
                {
                    f"op{op}_output_level": level,
                    f"op{op}_frequency_coarse": float(coarse),
                    f"op{op}_detune": rng.uniform(4, 10),
                    f"op{op}_rate1": rng.uniform(55 if carrier else 40, 99),
                    f"op{op}_rate2": rng.uniform(20, 90),
                    f"op{op}_level2": rng.uniform(0, 99),
                    f"op{op}_rate4": rng.uniform(35, 90),
                }
            )
        return {name: float(round(value)) for name, value in values.items()}

    def patch_file_bytes(self, native: Mapping[str, float], name: str) -> bytes:
        from models.synth.dexed import DexedSynth

        self.apply(native)
        synth = self.synth
        assert isinstance(synth, DexedSynth)
        synth.voice_name = name.strip() or "MATCHED"
        return synth.patch_bytes()


MATCH_SYNTHS: dict[str, Callable[[], MatchSynth]] = {
    "vital": VitalMatch,
    "amsynth": AmsynthMatch,
    "kars": KarsMatch,
    "dexed": DexedMatch,
}


def match_synth(name: str) -> MatchSynth:
    """A fresh adapter for synth ``name``."""
    if name not in MATCH_SYNTHS:
        raise ReaTimbreError(f"unknown synth {name!r}; synths: {', '.join(MATCH_SYNTHS)}")
    return MATCH_SYNTHS[name]()


#: Each synth's patch file suffix (without loading the synth).
PATCH_SUFFIXES: dict[str, str] = {
    "vital": VitalMatch.patch_suffix,
    "amsynth": AmsynthMatch.patch_suffix,
    "kars": KarsMatch.patch_suffix,
    "dexed": DexedMatch.patch_suffix,
}
