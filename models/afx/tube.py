"""The tube distortion task: Debian's ZamTube (zam-plugins, a wave-digital-filter triode preamp with a tone stack),
hosted headless through :mod:`models.plugin_effect`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import ReaTimbreError

ZAMTUBE = Path("/usr/lib/vst/ZamTube-vst.so")
TUBE_DRIVE = 0.6  # the plug-in's normalised "Tube Drive"; bass, mids, treble at their 0.5 defaults


def tube_available() -> bool:
    return ZAMTUBE.is_file()


def tube(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``x`` through ZamTube at :data:`TUBE_DRIVE`, same length."""
    from models.plugin_effect import render_effect

    if not tube_available():
        raise ReaTimbreError(f"the tube task needs Debian's zam-plugins ({ZAMTUBE} is missing)")
    return render_effect(ZAMTUBE, x.astype(np.float32), sample_rate, {"Tube Drive": TUBE_DRIVE})[0].astype(np.float64)
