"""The real Dexed plug-in against what ReaTimbre believes about it: its parameter names and order, how it reads the
values the REAPER action writes by name, and that it then plays the voice ``dexed-py`` rendered for the match.

These run where a Dexed VST3 is installed in a standard place (``/usr/lib/vst3``, ``/usr/local/lib/vst3``, or the
bundle named by ``REATIMBRE_DEXED_VST3``) and are skipped elsewhere: Debian ships no Dexed. Dexed 1.0.1 built from
its source (asb2m10/dexed 2e182b3, JUCE 7.0.11, as docs/match.md says) passes them. The plug-in is driven in a
process of its own (tests/dexed_plugin_probe.py); the REAPER action's own writes into it are checked in
tests/test_reaper_match_action.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from dexed_host import dexed_parameters, voice_from_host
from dexed_plugin_probe import NOTE, NOTE_SECONDS, RENDER_SECONDS, VELOCITY, installed_dexed, probe

from models.synth.dexed import CONTROLS, DexedSynth
from models.synth.match_synths import DexedMatch

SHOWN = ["ALGORITHM", "OP3 OSC DETUNE", "TRANSPOSE"]
pytestmark = [
    pytest.mark.skipif(installed_dexed() is None, reason="no Dexed VST3 installed (none ships with Debian)"),
    pytest.mark.skipif(importlib.util.find_spec("dawdreamer") is None, reason="needs dawdreamer (the dev extras)"),
]


def test_every_voice_value_written_by_name_reads_back_as_the_dx7_value(tmp_path: Path) -> None:
    adapter = DexedMatch()
    synth = adapter.synth
    assert isinstance(synth, DexedSynth)
    rng = np.random.default_rng(3)
    voices, written = [], []
    for _ in range(12):  # every value over its whole range, not only what random voices use
        synth.set_controls({name: float(rng.integers(0, maximum + 1)) for name, (_, maximum) in CONTROLS.items()})
        voices.append(adapter.host_values_by_name())
        written.append(synth.voice_bytes()[:145])
    answer, _ = probe(voices, tmp_path, SHOWN)
    transcribed = dexed_parameters()
    assert answer["names"][: len(transcribed)] == [p.name for p in transcribed]  # the emulator's Dexed is this one
    for voice, values, expected in zip(answer["voices"], voices, written, strict=True):
        assert voice["missing"] == [] and len(values) == len(CONTROLS) + 8  # Cutoff, Resonance, six switches
        assert voice_from_host(voice["values"][: len(transcribed)]) == expected
        # Dexed shows the DX7's own readings: algorithm 1-32, detune -7..7, transpose in semitones
        assert voice["texts"]["ALGORITHM"] == str(expected[134] + 1)
        assert voice["texts"]["OP3 OSC DETUNE"] == str(expected[3 * 21 + 20] - 7)  # OP3 at (6 - 3) * 21: OP6 first
        assert voice["texts"]["TRANSPOSE"] == str(expected[144] - 24)


def test_the_real_dexed_plays_the_matched_voice_as_dexed_py_rendered_it(tmp_path: Path) -> None:
    adapter = DexedMatch()
    rng = np.random.default_rng(0)
    voices, ours = [], []
    for _ in range(5):
        adapter.apply(adapter.random_patch(rng))  # a voice as `match` makes them
        voices.append(adapter.host_values_by_name())
        ours.append(np.asarray(adapter.synth.render(NOTE, VELOCITY / 127, NOTE_SECONDS, RENDER_SECONDS))[0])
    answer, real = probe(voices, tmp_path)
    ratios = []
    for voice, theirs, mine in zip(answer["voices"], real, ours, strict=True):
        assert voice["missing"] == []
        n = min(theirs.shape[1], mine.size)
        a, b = theirs[0, :n].astype(np.float64), mine[:n].astype(np.float64)
        # the same waveform, sample for sample (the same engine); Dexed's output stage only scales it
        assert np.corrcoef(a, b)[0, 1] > 0.98
        ratios.append(float(np.sqrt(np.mean(a**2)) / np.sqrt(np.mean(b**2))))
    assert max(ratios) / min(ratios) < 1.05, ratios  # one fixed level step (about 1/8, -18 dB, measured)
