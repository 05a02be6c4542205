"""Any VST2/VST3 instrument, hosted through DawDreamer's plug-in processor.

This is how a user's own Serum (or any other instrument) is rendered on their machine; here amsynth
(Debian's ``amsynth`` package, ``/usr/lib/vst/amsynth_vst.so``) proves it. Controls are the plug-in's parameter
names and take host-normalised values in 0..1, exactly what REAPER reads and writes.

Repeatability. A hosted plug-in keeps its state between renders (held voices, reverb and delay tails), so
before every note :class:`PluginSynth` renders silence — at least ``min_settle_seconds``, then in further
0.25 s chunks until the output's peak is below -100 dBFS or ``max_settle_seconds`` have passed. This also lets
the plug-in's parameter smoothing reach newly set values.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models.errors import ReaTimbreError
from models.synth.base import BLOCK_SAMPLES, DEFAULT_SAMPLE_RATE_HZ, Synth

AMSYNTH_VST_PATH = Path("/usr/lib/vst/amsynth_vst.so")
QUIET_PEAK = 1e-5  # -100 dBFS
SETTLE_CHUNK_SECONDS = 0.25


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence what the native host library prints on the process's stdout while loading a plug-in."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class PluginSynth(Synth):
    """A VST2/VST3 instrument rendered by DawDreamer; controls are its parameter names (values 0..1)."""

    kind = "plugin"

    def __init__(
        self,
        plugin_path: str | Path,
        sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ,
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
            with _quiet_stdout():
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
        """The plug-in's own state chunk, as DawDreamer saves it."""
        with tempfile.TemporaryDirectory(prefix="reatimbre-state-") as folder:
            state = Path(folder) / "state.bin"
            self._processor.save_state(str(state))
            return state.read_bytes()

    def load_patch_bytes(self, data: bytes) -> None:
        if not data:
            raise ReaTimbreError("empty plug-in state")
        with tempfile.TemporaryDirectory(prefix="reatimbre-state-") as folder:
            state = Path(folder) / "state.bin"
            state.write_bytes(data)
            try:
                self._processor.load_state(str(state))
            except Exception as exc:
                raise ReaTimbreError(f"the plug-in rejected the saved state: {exc}") from exc

    # --- rendering ------------------------------------------------------------------------------------
    def _render_silence(self, seconds: float) -> float:
        """Render ``seconds`` without notes; returns the peak of the last block (how loud it still is)."""
        self._processor.clear_midi()
        self._engine.render(seconds)
        audio = self._engine.get_audio()[:, -BLOCK_SAMPLES:]
        return float(np.abs(audio).max()) if audio.size else 0.0

    def _settle(self, note: int) -> None:
        settled = 0.0
        if self.min_settle_seconds > 0:
            peak = self._render_silence(self.min_settle_seconds)
            settled = self.min_settle_seconds
        else:
            peak = 0.0
        while peak >= QUIET_PEAK and settled < self.max_settle_seconds:
            peak = self._render_silence(SETTLE_CHUNK_SECONDS)
            settled += SETTLE_CHUNK_SECONDS

    def _render_note(self, note: int, velocity: float, note_seconds: float, render_seconds: float) -> np.ndarray:
        self._processor.clear_midi()
        self._processor.add_midi_note(note, max(1, round(velocity * 127)), 0.0, note_seconds)
        self._engine.render(render_seconds)
        audio = np.asarray(self._engine.get_audio(), dtype=np.float32)
        if audio.shape[0] == 1:
            audio = np.repeat(audio, 2, axis=0)
        return audio[:2]
