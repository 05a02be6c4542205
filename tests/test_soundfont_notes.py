"""Single notes of sampled instruments (models.other_origin.soundfont_notes): the targets of the match benchmark on
sounds no synth made."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ReaTimbreError
from models.other_origin import PEAK_DBFS, missing_tools, soundfont_notes

RATE = 44_100
needs_tools = pytest.mark.skipif(
    bool(missing_tools()), reason=f"needs the Debian packages {', '.join(missing_tools())} (CI installs them)"
)


@needs_tools
def test_each_note_is_one_held_note_of_its_instrument_at_its_pitch() -> None:
    clips = soundfont_notes({"flute": 73, "finger bass": 33}, [50, 57])
    assert set(clips) == {("flute", 50), ("flute", 57), ("finger bass", 50), ("finger bass", 57)}
    for key, clip in clips.items():
        assert clip.shape == (int(1.5 * RATE),) and clip.dtype == np.float32, key
        assert 20 * np.log10(np.max(np.abs(clip))) == pytest.approx(PEAK_DBFS, abs=0.01), key
        onset = np.argmax(np.abs(clip) > 0.01) / RATE
        assert 0.03 < onset < 0.1, key  # just after the clip starts
        held = np.abs(clip[int(0.2 * RATE) : int(0.7 * RATE)]).mean()
        assert held > 10 * np.abs(clip[int(1.3 * RATE) :]).mean(), key  # held, then released inside the clip
    for note in (50, 57):
        segment = clips[("flute", note)][int(0.2 * RATE) : int(0.7 * RATE)]
        spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size)))
        peak_hz = np.argmax(spectrum) * RATE / segment.size
        assert peak_hz == pytest.approx(440.0 * 2 ** ((note - 69) / 12), rel=0.03)  # MIDI 69 is 440 Hz
    assert not np.allclose(clips[("flute", 50)], clips[("finger bass", 50)], atol=0.05)


def test_impossible_notes_are_refused() -> None:
    with pytest.raises(ReaTimbreError, match="MIDI numbers"):
        soundfont_notes({"flute": 73}, [200])
    with pytest.raises(ReaTimbreError, match="held_seconds < clip_seconds"):
        soundfont_notes({"flute": 73}, [50], held_seconds=2.0, clip_seconds=1.5)


@needs_tools
def test_sampled_notes_with_a_resonance_below_them_are_heard_at_their_pitch() -> None:
    """The piano's A3 and the string ensemble's notes have a strong peak below the note (the piano's body at 96 Hz,
    the ensemble's beating): a single note all the same, not a chord (they were matched at the default note)."""
    from models.pitch import find_note

    clips = soundfont_notes({"acoustic grand piano": 0, "string ensemble": 48}, [50, 57])
    for key in (("acoustic grand piano", 57), ("string ensemble", 50), ("string ensemble", 57)):
        estimate = find_note(clips[key][None], RATE)
        assert estimate.kind == "pitched" and estimate.midi == key[1], (key, estimate)
