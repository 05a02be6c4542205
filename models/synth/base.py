"""The synth interface every coach component renders through.

A :class:`Synth` is one instrument instance with a current patch. Controls are addressed by the synth's own
names (Vital's ``distortion_drive``; a hosted plug-in's parameter name) and set in the synth's native values
(Vital: the value Vital stores, e.g. dB for ``distortion_drive``; a hosted plug-in: its normalised 0..1 value).
Effect profiles (:mod:`models.synth.profiles`) translate the coach's effect parameters into these controls.

Renders are repeatable: :meth:`Synth.render` first brings the instrument to a known state (voices released,
effect tails gone, parameter smoothing settled), so the same patch and note give the same audio whatever was
rendered before. The remaining differences are measured in ``tests/test_synth_repeatability.py`` and docs/synth.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from models.atomic_files import write_bytes
from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ

BLOCK_SAMPLES = 512


class Synth(ABC):
    """One synth instance: controls by name, patch load/save, repeatable note renders."""

    #: Short identifier of the implementation ("vital", "plugin").
    kind: str = ""

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        if sample_rate_hz <= 0:
            raise ReaTimbreError(f"sample rate must be positive, got {sample_rate_hz}")
        self.sample_rate_hz = int(sample_rate_hz)

    # --- controls -------------------------------------------------------------------------------------
    @abstractmethod
    def control_names(self) -> list[str]:
        """Names of every control this synth exposes."""

    def host_index(self, name: str) -> int:
        """0-based index of control ``name`` among the plug-in's parameters as a host (REAPER) numbers them.
        By default the order of :meth:`control_names`; synths whose host order differs override it."""
        return self.control_names().index(name)

    @abstractmethod
    def get_control(self, name: str) -> float:
        """Current native value of control ``name``."""

    @abstractmethod
    def _set_control(self, name: str, value: float) -> None:
        """Set one control (name already validated)."""

    @abstractmethod
    def control_text(self, name: str) -> str:
        """The value of control ``name`` as the synth displays it (e.g. ``"12.5 dB"``)."""

    @abstractmethod
    def normalized_value(self, name: str) -> float:
        """Control ``name``'s current value as a host (e.g. REAPER) sees it, in 0..1."""

    def set_controls(self, values: Mapping[str, float]) -> None:
        """Set controls by name to native values; unknown names raise :class:`ReaTimbreError`, nothing set."""
        known = set(self.control_names())
        unknown = sorted(name for name in values if name not in known)
        if unknown:
            raise ReaTimbreError(f"{self.kind} synth has no control named {', '.join(map(repr, unknown))}")
        numbers = np.fromiter((float(value) for value in values.values()), dtype=np.float64, count=len(values))
        bad = ~np.isfinite(numbers)
        if bad.any():
            index = int(np.argmax(bad))
            raise ReaTimbreError(f"control {list(values)[index]!r} needs a finite value, got {numbers[index]}")
        self._set_checked(list(values), numbers)

    def _set_checked(self, names: list[str], numbers: np.ndarray) -> None:
        """Set controls already checked (known names, finite values): one by one, unless a synth can do better."""
        for name, value in zip(names, numbers, strict=True):
            self._set_control(name, float(value))

    # --- patches --------------------------------------------------------------------------------------
    @abstractmethod
    def patch_bytes(self) -> bytes:
        """The current patch, serialised as the synth itself saves it."""

    @abstractmethod
    def load_patch_bytes(self, data: bytes) -> None:
        """Replace the current patch with a serialised one (raises :class:`ReaTimbreError` if malformed)."""

    def save_patch(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the current patch to ``path`` atomically; never replaces an existing file unless asked."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise ReaTimbreError(f"{path} already exists; not overwriting it")
        return write_bytes(path, self.patch_bytes(), make_parents=True)

    def load_patch(self, path: str | Path) -> None:
        """Load a patch file saved by this synth (Vital: ``.vital`` JSON)."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ReaTimbreError(f"cannot read patch {path}: {exc.strerror or exc}") from exc
        self.load_patch_bytes(data)

    # --- rendering ------------------------------------------------------------------------------------
    @abstractmethod
    def _settle(self, note: int) -> None:
        """Bring the instrument to a known state before a note (implementation-specific)."""

    @abstractmethod
    def _render_note(self, note: int, velocity: float, note_seconds: float, render_seconds: float) -> np.ndarray:
        """Render one note from the current state; returns float32 (2, samples)."""

    def render(
        self, note: int = 48, velocity: float = 1.0, note_seconds: float = 1.0, render_seconds: float = 1.0
    ) -> np.ndarray:
        """Render MIDI ``note`` (0..127) at ``velocity`` (0..1), held ``note_seconds``, for ``render_seconds``.

        Returns float32 stereo audio shaped (2, round(render_seconds · sample_rate_hz)). The result does not
        depend on what was rendered before (see the module docstring).
        """
        if not 0 <= int(note) <= 127 or int(note) != note:
            raise ReaTimbreError(f"MIDI note must be an integer 0..127, got {note}")
        if not 0.0 < velocity <= 1.0:
            raise ReaTimbreError(f"velocity must be in (0, 1], got {velocity}")
        if not (0.0 < note_seconds <= 60.0 and 0.0 < render_seconds <= 60.0):
            raise ReaTimbreError("note and render lengths must be in (0, 60] seconds")
        n_samples = int(round(render_seconds * self.sample_rate_hz))
        self._settle(int(note))
        audio = self._render_note(int(note), float(velocity), float(note_seconds), n_samples / self.sample_rate_hz)
        audio = np.ascontiguousarray(audio[:, :n_samples], dtype=np.float32)
        if audio.shape != (2, n_samples):
            raise ReaTimbreError(f"{self.kind} synth rendered {audio.shape}, expected (2, {n_samples})")
        return audio
