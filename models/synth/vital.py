"""Vital, rendered headless through the ``vita`` package: the coach's default synth.

Repeatability. Vital starts each oscillator at a random phase by default, smooths parameter changes over ~0.1–0.25
s, and the first note after a fresh start or an effect switch is rendered differently from later ones.
:class:`VitalSynth` therefore (1) turns the oscillators' random phase off while it holds a patch (the patch's own
setting is restored in what :meth:`VitalSynth.patch_bytes` saves), and (2) before every note renders a short
settling pass — a 50 ms note of the same pitch followed by silence, ``settle_seconds`` in all, rounded up to whole
512-sample blocks — which lets smoothed parameters reach their values and puts the voice in the state every later
note starts from. The note is that long because Vital moves its smoothed values only while a voice sounds (more
silence does not help, a longer note does): a 1 ms note left part of the previous patch in the next render (10 % of
120 random ``match`` patches rendered right after another patch differed from the same patch rendered again, by up
to 1.14 dB LSD; with 50 ms, at most 0.01 dB). Vital ignores velocity by default, so the settling note is as loud as
any, and its release reaches into the note when the silence after it is short: renders settled 0.3 s in all (the
default, which the coach's data rate needs) are 0.07 dB LSD on average (worst 0.54) from those with a 1 s note and 1
s of silence after it, settled 0.5 s 0.025 dB (worst 0.37), which is what ``match`` uses, since it compares renders
with audio from elsewhere (1 s: 0.004 dB, worst 0.15). Vital's reverb modulates its delay lines with a free-running
chorus LFO; the coach's hall-reverb profile sets ``reverb_chorus_amount`` to 0 so that reverb renders repeat too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np

from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.synth.base import BLOCK_SAMPLES, Synth

RANDOM_PHASE_CONTROLS = ("osc_1_random_phase", "osc_2_random_phase", "osc_3_random_phase", "sample_random_phase")
SETTLE_VELOCITY = 0.01
SETTLE_NOTE_SECONDS = 0.05
DEFAULT_SETTLE_SECONDS = 0.3


def vital_host_order(versions_added: Mapping[str, int]) -> list[str]:
    """Vital's plug-in parameter order: sorted by the version that added each parameter, then by name.

    Vital sorts its parameter list with that comparator and adds one host parameter per control in list order
    (``synth_parameters.cpp``, ``synth_plugin.cpp``; ``shared/reference/reaper-python-binding.md`` §7), so a
    parameter's host index is its position here. ``vita``'s control dict is alphabetical, which is not it.
    """
    return sorted(versions_added, key=lambda name: (int(versions_added[name]), name.encode("ascii")))


class VitalSynth(Synth):
    """Vital with a current patch (Vital's init patch until one is loaded)."""

    kind = "vital"

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE_HZ, settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> None:
        super().__init__(sample_rate_hz)
        import vita

        if settle_seconds < 0:
            raise ReaTimbreError(f"settle_seconds must be >= 0, got {settle_seconds}")
        blocks = math.ceil(settle_seconds * self.sample_rate_hz / BLOCK_SAMPLES)
        self.settle_seconds = blocks * BLOCK_SAMPLES / self.sample_rate_hz
        self._vita = vita.Synth()
        self._vita.set_sample_rate(float(self.sample_rate_hz))
        self._controls = self._vita.get_controls()
        self._details = {name: self._vita.get_control_details(name) for name in self._controls}
        order = vital_host_order({name: details.version_added for name, details in self._details.items()})
        self._host_index = {name: index for index, name in enumerate(order)}
        self._saved_random_phase: dict[str, float] = {}
        self._init_patch: dict | None = None
        self._make_deterministic()

    # --- controls -------------------------------------------------------------------------------------
    def control_names(self) -> list[str]:
        return list(self._controls)

    def host_index(self, name: str) -> int:
        """The control's index among Vital's plug-in parameters in a host such as REAPER (see
        :func:`vital_host_order`)."""
        self._require(name)
        return self._host_index[name]

    def control_details(self, name: str):
        """Vital's metadata for a control: ``min``, ``max``, ``scale``, ``options``, ``display_name`` …"""
        self._require(name)
        return self._details[name]

    def display_name(self, name: str) -> str:
        """The control's name as Vital (and a host showing Vital's plug-in parameters) displays it."""
        return str(self.control_details(name).display_name)

    def get_control(self, name: str) -> float:
        self._require(name)
        if name in self._saved_random_phase:
            return self._saved_random_phase[name]
        return float(self._controls[name].value())

    def _set_control(self, name: str, value: float) -> None:
        details = self._details[name]
        low, high = float(details.min), float(details.max)
        tolerance = 1e-6 * max(1.0, high - low)
        if not low - tolerance <= value <= high + tolerance:
            raise ReaTimbreError(f"Vital control {name!r} takes {low:g}..{high:g}, got {value:g}")
        value = min(max(value, low), high)
        if details.is_discrete:
            value = float(round(value))
        if name in RANDOM_PHASE_CONTROLS:
            self._saved_random_phase[name] = value
            return
        self._controls[name].set(value)

    def control_text(self, name: str) -> str:
        self._require(name)
        return str(self._controls[name].get_text()).strip()

    def normalized_value(self, name: str) -> float:
        """Host-normalised value: Vital's plug-in maps each control's stored range linearly onto 0..1."""
        details = self.control_details(name)
        low, high = float(details.min), float(details.max)
        return (self.get_control(name) - low) / (high - low)

    def _require(self, name: str) -> None:
        if name not in self._controls:
            raise ReaTimbreError(f"Vital has no control named {name!r}")

    # --- patches --------------------------------------------------------------------------------------
    def patch_bytes(self) -> bytes:
        """The patch as a ``.vital`` JSON document, with the patch's own random-phase settings."""
        for name, value in self._saved_random_phase.items():
            self._controls[name].set(value)
        try:
            text = self._vita.to_json()
        finally:
            self._make_deterministic()
        return text.encode("utf-8")

    def patch_json(self) -> dict:
        """The patch as a parsed ``.vital`` JSON object (a fresh copy)."""
        return json.loads(self.patch_bytes())

    def load_patch_bytes(self, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
            parsed = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReaTimbreError(f"not a Vital patch (invalid JSON): {exc}") from exc
        if not isinstance(parsed, dict) or not isinstance(parsed.get("settings"), dict):
            raise ReaTimbreError("not a Vital patch: no 'settings' object")
        if not self._vita.load_json(text):
            raise ReaTimbreError("Vital rejected the patch (malformed, or saved by a newer Vital)")
        self._saved_random_phase = {}
        self._make_deterministic()

    def load_patch_json(self, patch: dict) -> None:
        """Load a patch given as a parsed ``.vital`` JSON object."""
        self.load_patch_bytes(json.dumps(patch).encode("utf-8"))

    def load_init_patch(self) -> None:
        """Reset to Vital's init patch."""
        self._vita.load_init_preset()
        self._saved_random_phase = {}
        self._make_deterministic()

    def load_preset(self, name: str) -> None:
        """Load one of the coach's presets (:mod:`models.synth.presets`), built on Vital's init patch."""
        from models.synth.presets import build_preset_patch

        if self._init_patch is None:
            self.load_init_patch()
            self._init_patch = self.patch_json()
        self.load_patch_json(build_preset_patch(name, self._init_patch))

    def connect_modulation(self, source: str, destination: str) -> None:
        """Route a modulation source (``lfo_1``, ``env_2`` …) to a control; its amount is a control too."""
        if not self._vita.connect_modulation(source, destination):
            raise ReaTimbreError(f"Vital cannot route modulation {source!r} -> {destination!r}")

    def _make_deterministic(self) -> None:
        for name in RANDOM_PHASE_CONTROLS:
            if name in self._controls:
                self._saved_random_phase.setdefault(name, float(self._controls[name].value()))
                self._controls[name].set(0.0)

    # --- rendering ------------------------------------------------------------------------------------
    def _settle(self, note: int) -> None:
        if self.settle_seconds > 0:
            self._vita.render(note, SETTLE_VELOCITY, SETTLE_NOTE_SECONDS, self.settle_seconds)

    def _render_note(self, note: int, velocity: float, note_seconds: float, render_seconds: float) -> np.ndarray:
        return np.asarray(self._vita.render(note, velocity, note_seconds, render_seconds), dtype=np.float32)
