"""The coach's starting point: a Vital instance holding a shipped preset or a user's ``.vital`` patch file."""

from __future__ import annotations

from pathlib import Path

from models.errors import ReaTimbreError
from models.synth import presets as preset_data
from models.synth.vital import VitalSynth


def start_synth(preset: str | None = None, patch: str | Path | None = None) -> VitalSynth:
    """Vital with exactly one of: a shipped preset by name, or a patch file as Vital saves it."""
    if (preset is None) == (patch is None):
        raise ReaTimbreError("give exactly one of --preset NAME or --patch FILE")
    synth = VitalSynth()
    if preset is not None:
        synth.load_patch_json(preset_data.build_preset_patch(preset, synth.patch_json()))
    else:
        assert patch is not None  # exactly one of the two was given (checked above)
        path = Path(patch)
        if not path.is_file():
            raise ReaTimbreError(f"patch file not found: {path}")
        synth.load_patch(path)
    return synth
