"""Any VST2/VST3 instrument, hosted through DawDreamer's plug-in processor.

This is how a user's own Serum (or any other instrument) is rendered on their machine; here amsynth
(Debian's ``amsynth`` package, ``/usr/lib/vst/amsynth_vst.so``) proves it. Controls are the plug-in's parameter
names and take host-normalised values in 0..1, exactly what REAPER reads and writes.

Repeatability. A hosted plug-in keeps its state between renders (held voices, reverb and delay tails), and
its first note after new settings can differ from later ones, so before every note :class:`PluginSynth`
renders a 50 ms warm-up note of the same pitch and then silence — at least ``min_settle_seconds`` in all, then
further 0.25 s chunks until the output's peak is below -100 dBFS or ``max_settle_seconds`` have passed. This
also lets the plug-in's parameter smoothing reach newly set values.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.synth.base import BLOCK_SAMPLES, Synth

AMSYNTH_VST_PATH = Path("/usr/lib/vst/amsynth_vst.so")
QUIET_PEAK = 1e-5  # -100 dBFS
PLUGIN_PATCH_FORMAT = "reatimbre-plugin-patch/1"
SETTLE_CHUNK_SECONDS = 0.25
WARM_UP_NOTE_SECONDS = 0.05
WARM_UP_VELOCITY = 100


@contextlib.contextmanager
def _quiet_native_output() -> Iterator[None]:
    """Silence what the native host library and plug-in print on stdout/stderr while a plug-in loads."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


class PluginSynth(Synth):
    """A VST2/VST3 instrument rendered by DawDreamer; controls are its parameter names (values 0..1)."""

    kind = "plugin"

    def __init__(
        self,
        plugin_path: str | Path,
        sample_rate_hz: int = SAMPLE_RATE_HZ,
        min_settle_seconds: float = 0.5,
        max_settle_seconds: float = 5.0,
    ) -> None:
        super().__init__(sample_rate_hz)
        import dawdreamer

        self.plugin_path = Path(plugin_path)
        if not self.plugin_path.exists():
            raise ReaTimbreError(f"plug-in not found: {self.plugin_path}")
        if not 0 <= min_settle_seconds <= max_settle_seconds:
            raise ReaTimbreError("settle lengths must satisfy 0 <= min_settle_seconds <= max_settle_seconds")
        self.min_settle_seconds = float(min_settle_seconds)
        self.max_settle_seconds = float(max_settle_seconds)
        self._engine = dawdreamer.RenderEngine(self.sample_rate_hz, BLOCK_SAMPLES)
        try:
            with _quiet_native_output():
                self._processor = self._engine.make_plugin_processor("synth", str(self.plugin_path))
        except Exception as exc:  # DawDreamer raises plain exceptions for unloadable plug-ins
            raise ReaTimbreError(f"cannot load plug-in {self.plugin_path}: {exc}") from exc
        if self._processor.get_num_output_channels() < 1:
            raise ReaTimbreError(f"{self.plugin_path} has no audio outputs; is it an instrument?")
        self._engine.load_graph([(self._processor, [])])
        descriptions = self._processor.get_parameters_description()
        self._index = {str(d["name"]): int(d["index"]) for d in descriptions}
        self._descriptions = {str(d["name"]): d for d in descriptions}

    # --- controls -------------------------------------------------------------------------------------
    def control_names(self) -> list[str]:
        return list(self._index)

    def parameter_index(self, name: str) -> int:
        """The host parameter index of control ``name`` (what REAPER's TrackFX_* calls use)."""
        self._require(name)
        return self._index[name]

    def set_host_values(self, values: dict[int, float]) -> None:
        """Set parameters by host index to normalised values (a profile's ``host_values`` rows, e.g. Serum's)."""
        names = {index: name for name, index in self._index.items()}
        missing = sorted(index for index in values if index not in names)
        if missing:
            raise ReaTimbreError(f"plug-in {self.plugin_path.name} has no parameter index {missing[0]}")
        self.set_controls({names[index]: value for index, value in values.items()})

    def get_control(self, name: str) -> float:
        return float(self._processor.get_parameter(self.parameter_index(name)))

    def _set_control(self, name: str, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ReaTimbreError(f"plug-in parameter {name!r} takes a normalised value in 0..1, got {value:g}")
        self._processor.set_parameter(self._index[name], value)

    def control_text(self, name: str) -> str:
        text = str(self._processor.get_parameter_text(self.parameter_index(name))).strip()
        label = str(self._descriptions[name].get("label") or "").strip()
        return f"{text} {label}".strip()

    def normalized_value(self, name: str) -> float:
        return self.get_control(name)

    def _require(self, name: str) -> None:
        if name not in self._index:
            raise ReaTimbreError(f"plug-in {self.plugin_path.name} has no parameter named {name!r}")

    # --- patches --------------------------------------------------------------------------------------
    def patch_bytes(self) -> bytes:
        """The patch as JSON: the plug-in's file name and every parameter's normalised value by name.

        Portable and safe to load headless; state a plug-in keeps outside its parameters (e.g. Serum's
        wavetables) is not included.
        """
        document = {
            "format": PLUGIN_PATCH_FORMAT,
            "plugin": self.plugin_path.name,
            "parameters": {name: self.get_control(name) for name in self._index},
        }
        return json.dumps(document, indent=1).encode("utf-8")

    def load_patch_bytes(self, data: bytes) -> None:
        try:
            document = json.loads(data.decode("utf-8"))
            if document.get("format") != PLUGIN_PATCH_FORMAT:
                raise ValueError(f"format is not {PLUGIN_PATCH_FORMAT!r}")
            values = {str(k): float(v) for k, v in document["parameters"].items()}
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReaTimbreError(f"not a ReaTimbre plug-in patch: {exc}") from exc
        if document.get("plugin") != self.plugin_path.name:
            raise ReaTimbreError(f"the patch is for {document.get('plugin')!r}, not {self.plugin_path.name!r}")
        self.set_controls(values)

    # --- rendering ------------------------------------------------------------------------------------
    def _render_quiet_tail(self, seconds: float, warm_up_note: int | None = None) -> float:
        """Render ``seconds`` (optionally starting with a short warm-up note); returns the last block's peak."""
        self._processor.clear_midi()
        if warm_up_note is not None:
            self._processor.add_midi_note(warm_up_note, WARM_UP_VELOCITY, 0.0, WARM_UP_NOTE_SECONDS)
        self._engine.render(seconds)
        audio = self._engine.get_audio()[:, -BLOCK_SAMPLES:]
        return float(np.abs(audio).max()) if audio.size else 0.0

    def _settle(self, note: int) -> None:
        # A short note first: a plug-in's first note after new settings differs from later ones (measured on
        # amsynth: 1.1 dB LSD), then silence until the output has died away.
        peak = self._render_quiet_tail(max(self.min_settle_seconds, 2 * WARM_UP_NOTE_SECONDS), warm_up_note=note)
        settled = self.min_settle_seconds
        while peak >= QUIET_PEAK and settled < self.max_settle_seconds:
            peak = self._render_quiet_tail(SETTLE_CHUNK_SECONDS)
            settled += SETTLE_CHUNK_SECONDS

    def _render_note(self, note: int, velocity: float, note_seconds: float, render_seconds: float) -> np.ndarray:
        self._processor.clear_midi()
        self._processor.add_midi_note(note, max(1, round(velocity * 127)), 0.0, note_seconds)
        self._engine.render(render_seconds + BLOCK_SAMPLES / self.sample_rate_hz)  # DawDreamer rounds down
        audio = np.asarray(self._engine.get_audio(), dtype=np.float32)
        if audio.shape[0] == 1:
            audio = np.repeat(audio, 2, axis=0)
        return audio[:2]
