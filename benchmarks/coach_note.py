"""Does the coach hear the right note? Every shipped preset at eight notes, plus a major and a minor chord.

    python benchmarks/coach_note.py

Each preset renders MIDI 36..84 (1 s held, 1.5 s rendered) through Vital; ``models.pitch.find_note`` must return
the note played (a patch built with an oscillator an octave down is heard there: the sound's pitch is what is
reported, and ``--note`` is the way to say otherwise). The chords (C major, A minor) must not come back as one
pitched note. Prints a row per preset: each note as ``kind`` and the offset of the heard note from the played
one, and, where it is not the note played, the note the coach's start patch plays when it is the same preset
(``match_patch_note``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.coach.start import start_synth  # noqa: E402
from models.coach.target import match_patch_note, prepare_target  # noqa: E402
from models.pitch import find_note  # noqa: E402
from models.synth import presets  # noqa: E402

NOTES = (36, 43, 50, 57, 64, 71, 78, 84)
CHORDS = {"C major": (60, 64, 67), "A minor": (57, 60, 64)}


def main() -> int:
    exact = total = chords_ok = chords = played = 0
    seconds = []
    for preset in presets.preset_names():
        synth = start_synth(preset, None)
        rate = synth.sample_rate_hz
        cells = []
        for midi in NOTES:
            audio = synth.render(midi, 1.0, 1.0, 1.5)
            start = time.monotonic()
            heard = find_note(audio, rate)
            seconds.append(time.monotonic() - start)
            total += 1
            exact += heard.midi == midi
            offset = "" if heard.midi is None else f"{heard.midi - midi:+d}"
            coached = match_patch_note(prepare_target(audio, rate), synth).note
            played += coached == midi
            cells.append(f"{midi}:{heard.kind}{offset}{'' if coached == midi else f'(plays {coached})'}")
        chord_cells = []
        for name, notes in CHORDS.items():
            mix = sum(synth.render(n, 1.0, 1.0, 1.5) for n in notes)
            heard = find_note(mix, rate)
            chords += 1
            chords_ok += heard.kind != "pitched"
            chord_cells.append(f"{name}: {heard.kind}")
        print(f"{preset}: {' '.join(cells)} | {', '.join(chord_cells)}", flush=True)
    print(f"\nnotes heard exactly: {exact} of {total}; chords not taken for one note: {chords_ok} of {chords}")
    print(f"coached from the same preset, the patch plays the target's note: {played} of {total}")
    print(f"find_note: median {1000 * sorted(seconds)[len(seconds) // 2]:.0f} ms (first call {seconds[0]:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
