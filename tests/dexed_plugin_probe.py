"""Drive a real Dexed plug-in in a process of its own, for the tests that check ReaTimbre against it.

    python tests/dexed_plugin_probe.py REQUEST.json OUT_FOLDER

Tests call :func:`probe`, which runs this file; :func:`installed_dexed` finds the plug-in (a Dexed VST3 in
``/usr/lib/vst3`` or ``/usr/local/lib/vst3``, or the bundle named by ``REATIMBRE_DEXED_VST3``; none ships with
Debian).

A JUCE plug-in loaded in a test process binds JUCE's message thread there, and a plug-in later loaded in the
server's synth thread of the same process can hang (tests/test_reaper_match_action.py); so the real Dexed is
only ever loaded here. REQUEST.json: ``{"bundle": path, "voices": [{name: normalised value}, ...], "note": MIDI,
"velocity": 1-127, "note_seconds": s, "render_seconds": s, "texts": [names]}``. Each voice is written by name, as
the REAPER action writes it (``extension.synth_track.parameter_indices``). Writes OUT_FOLDER/probe.json:
``{"names": all parameter names in host order, "voices": [{"missing": names not found, "values": every
parameter's normalised value read back, "texts": {name: display text}}], "defaults": every parameter's value
as loaded}`` and OUT_FOLDER/voice-N.npy, each voice's rendered note (channels, samples) at 44.1 kHz.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from extension.synth_track import parameter_indices  # noqa: E402

RATE_HZ = 44_100
VST3_FOLDERS = (Path("/usr/lib/vst3"), Path("/usr/local/lib/vst3"))
NOTE, VELOCITY, NOTE_SECONDS, RENDER_SECONDS = 60, 100, 1.0, 1.5


def installed_dexed() -> Path | None:
    """The Dexed VST3 bundle to test against, if one is installed."""
    named = os.environ.get("REATIMBRE_DEXED_VST3")
    candidates = [Path(named)] if named else [folder / "Dexed.vst3" for folder in VST3_FOLDERS]
    return next((path for path in candidates if path.is_dir()), None)


def probe(
    voices: list[dict[str, float]], folder: Path, texts: list[str] | None = None
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Write each voice into the real Dexed by name, read every parameter back, render MIDI :data:`NOTE`."""
    bundle = installed_dexed()
    assert bundle is not None, "no Dexed VST3 installed"
    folder.mkdir(parents=True, exist_ok=True)
    request = {
        "bundle": str(bundle), "voices": voices, "note": NOTE, "velocity": VELOCITY,
        "note_seconds": NOTE_SECONDS, "render_seconds": RENDER_SECONDS, "texts": texts or [],
    }  # fmt: skip
    (folder / "request.json").write_text(json.dumps(request))
    subprocess.run([sys.executable, __file__, str(folder / "request.json"), str(folder)], check=True, timeout=120)
    answer = json.loads((folder / "probe.json").read_text())
    return answer, [np.load(folder / f"voice-{i}.npy") for i in range(len(voices))]


def main(request_path: str, out: str) -> int:
    import dawdreamer as daw

    request = json.loads(Path(request_path).read_text())
    engine = daw.RenderEngine(RATE_HZ, 512)
    plugin = engine.make_plugin_processor("dexed", request["bundle"])
    names = [plugin.get_parameter_name(i) for i in range(plugin.get_plugin_parameter_size())]
    defaults = [float(plugin.get_parameter(i)) for i in range(len(names))]
    voices = []
    for number, values in enumerate(request["voices"]):
        indices, missing = parameter_indices(list(values), names)
        for name, index in indices.items():
            plugin.set_parameter(index, float(values[name]))
        plugin.clear_midi()
        plugin.add_midi_note(int(request["note"]), int(request["velocity"]), 0.0, float(request["note_seconds"]))
        engine.load_graph([(plugin, [])])
        engine.render(float(request["render_seconds"]))
        np.save(Path(out) / f"voice-{number}.npy", np.asarray(engine.get_audio(), np.float32))
        shown = {name: plugin.get_parameter_text(indices[name]) for name in request["texts"] if name in indices}
        values_back = [float(plugin.get_parameter(i)) for i in range(len(names))]
        voices.append({"missing": missing, "values": values_back, "texts": shown})
    (Path(out) / "probe.json").write_text(json.dumps({"names": names, "voices": voices, "defaults": defaults}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
