"""The action "Match the selected item with a synth" end to end: REAPER emulator <-> the real server's match job.

The server is test_reaper_scripts' (uvicorn, the real job kinds); the match job runs with the shipped weights on
Vital (``vita``) or Dexed (``dexed-py``), so the patch written into the emulated plug-in can be checked against
the ``.vital`` file or the ``.syx`` cartridge.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dexed_host import dexed_emulated, voice_from_host
from dexed_plugin_probe import NOTE, NOTE_SECONDS, RENDER_SECONDS, VELOCITY, installed_dexed, probe
from reaper_emulator import EmuParam, ReaperEmulator
from test_reaper_scripts import (
    SCRIPTS,
    _free_port,
    _wav,
    run_action,
    server,  # noqa: F401 - the fixture the server tests below use
)

from models.synth.dexed import DexedSynth, voice_from_bytes
from models.synth.vital import VitalSynth

MATCH = SCRIPTS / "ReaTimbre_Match the selected item with a synth.py"
VITAL_VST3 = "VST3i: Vital (Vital Audio)"
DEXED_VST3 = "VST3i: Dexed (Digital Suburban)"
DESCRIPTION = "ReaTimbre: match dry.wav with a synth"


@pytest.fixture(scope="module")
def vital_params() -> list[EmuParam]:
    """Vital's 772 plug-in parameters in a host's order, at its init patch's values."""
    synth = VitalSynth()
    names = sorted(synth.control_names(), key=synth.host_index)
    return [EmuParam(synth.display_name(n), synth.normalized_value(n)) for n in names]


@pytest.fixture
def emu(tmp_path: Path) -> ReaperEmulator:
    """A guitar track with the selected item and a track below it without a synth."""
    emulator = ReaperEmulator.new(tmp_path / "project" / "song.rpp", bpm=120)
    (tmp_path / "project").mkdir()
    guitar = emulator.add_track("guitar")
    emulator.add_item(guitar, _wav(tmp_path / "project" / "Audio" / "dry.wav", seconds=1.2), 0.0, 1.2)
    emulator.add_track("drums")
    return emulator


def _patch_values(patch: Path) -> list[float]:
    """The ``.vital`` patch's parameters, host-normalised, in host order."""
    synth = VitalSynth()
    synth.load_patch_bytes(patch.read_bytes())
    return [synth.normalized_value(n) for n in sorted(synth.control_names(), key=synth.host_index)]


def _written_patch(tmp_path: Path) -> Path:
    """The Vital patch the server's match job wrote (the server fixture's output folder)."""
    (patch,) = sorted((tmp_path / "data" / "renders").glob("dry-vital*.vital"))
    return patch


@pytest.mark.usefixtures("server")
def test_a_new_track_below_gets_vital_with_the_matched_patch(
    emu: ReaperEmulator, vital_params: list[EmuParam], tmp_path: Path
) -> None:
    emu.install_plugin(VITAL_VST3, vital_params)
    run_action(emu, MATCH, ["vital,auto"], timeout_seconds=240)
    assert emu.message_boxes == []
    assert emu.undo_history == [DESCRIPTION] and emu.edits_outside_undo == 0 and emu.open_undo_blocks == 0
    assert [t.name for t in emu.project.tracks()] == ["guitar", "Vital: dry.wav", "drums"]
    assert [fx.name for fx in emu.project.fx_chain(1)] == [VITAL_VST3]
    written = [p.value for p in emu.params(1, 0)]
    expected = _patch_values(_written_patch(tmp_path))
    assert len(written) == 772 and max(abs(a - b) for a, b in zip(written, expected, strict=True)) < 1e-6
    assert any("1. vital: LSD" in line for line in emu.console)
    assert "into VST3i: Vital (Vital Audio) on a new track (track 2)" in emu.console[-1]


@pytest.mark.usefixtures("server")
def test_the_synth_on_the_items_track_gets_the_patch(
    emu: ReaperEmulator, vital_params: list[EmuParam], tmp_path: Path
) -> None:
    emu.add_fx(0, "VSTi: Vital (Vital Audio)", [EmuParam(p.name, 0.0) for p in vital_params])
    emu.install_plugin(VITAL_VST3, vital_params)  # installed, but the track's own instance is the one written
    # Vital only: amsynth and Kars (DawDreamer) hang in the server's synth thread once another test of this
    # process has loaded them in its main thread (the server itself loads them in its synth thread only).
    run_action(emu, MATCH, ["vital,auto"], timeout_seconds=240)
    assert emu.message_boxes == []
    assert emu.undo_history == [DESCRIPTION] and emu.edits_outside_undo == 0
    assert [t.name for t in emu.project.tracks()] == ["guitar", "drums"] and len(emu.project.fx_chain(0)) == 1
    written = [p.value for p in emu.params(0, 0)]
    assert max(abs(a - b) for a, b in zip(written, _patch_values(_written_patch(tmp_path)), strict=True)) < 1e-6
    assert "on the item's track (track 1)" in emu.console[-1]


@pytest.mark.usefixtures("server")
def test_without_a_synth_plug_in_nothing_changes_and_the_patch_files_are_named(
    emu: ReaperEmulator, tmp_path: Path
) -> None:
    before = emu.project.to_bytes()
    run_action(emu, MATCH, ["vital,60"], timeout_seconds=240)
    ((title, message),) = emu.message_boxes
    assert message.startswith("No synth plug-in for the matched patches was found in REAPER (Vital;")
    assert "Nothing was changed" in message and str(_written_patch(tmp_path)) in message
    assert emu.project.to_bytes() == before and emu.open_undo_blocks == 0
    assert "at note 60" in "".join(emu.console)  # the given note, never moved


@pytest.mark.usefixtures("server")
def test_a_new_dexed_track_plays_the_matched_cartridge(emu: ReaperEmulator, tmp_path: Path) -> None:
    emu.install_plugin(DEXED_VST3, dexed_emulated(0.3))
    run_action(emu, MATCH, ["dexed,auto"], timeout_seconds=240)
    assert emu.message_boxes == []
    assert emu.undo_history == [DESCRIPTION] and emu.edits_outside_undo == 0 and emu.open_undo_blocks == 0
    assert [t.name for t in emu.project.tracks()] == ["guitar", "Dexed: dry.wav", "drums"]
    (cartridge,) = sorted((tmp_path / "data" / "renders").glob("dry-dexed*.syx"))
    written = voice_from_host([p.value for p in emu.params(1, 0)])
    assert written == bytes(voice_from_bytes(cartridge.read_bytes()))[:145]  # Dexed reads back voice 1 of the .syx
    assert "wrote the dexed patch (153 parameters) into VST3i: Dexed (Digital Suburban)" in emu.console[-1]
    assert "Dexed plays it about 18 dB quieter than the match heard it" in emu.console[-1]


@pytest.mark.skipif(installed_dexed() is None, reason="no Dexed VST3 installed (none ships with Debian)")
@pytest.mark.usefixtures("server")
def test_the_real_dexed_plays_what_the_action_wrote_as_the_match_rendered_it(
    emu: ReaperEmulator, tmp_path: Path
) -> None:
    # the emulated instance has the real plug-in's 2,238 parameters (JUCE's MIDI CC ones too), at its defaults
    listed, _ = probe([], tmp_path / "list")
    emu.install_plugin(DEXED_VST3, [EmuParam(n, v) for n, v in zip(listed["names"], listed["defaults"], strict=True)])
    run_action(emu, MATCH, ["dexed,auto"], timeout_seconds=240)
    assert emu.message_boxes == [] and emu.undo_history == [DESCRIPTION]
    assert "wrote the dexed patch (153 parameters) into VST3i: Dexed (Digital Suburban)" in emu.console[-1]
    # what the action changed, by name (setting every parameter would also set Program, which loads a preset)
    defaults = dict(zip(listed["names"], listed["defaults"], strict=True))
    written = {p.name: p.value for p in emu.params(1, 0) if p.value != defaults[p.name]}
    played, (real,) = probe([written], tmp_path / "play")
    (cartridge,) = sorted((tmp_path / "data" / "renders").glob("dry-dexed*.syx"))
    synth = DexedSynth()
    synth.load_patch_bytes(cartridge.read_bytes())
    matched = np.asarray(synth.render(NOTE, VELOCITY / 127, NOTE_SECONDS, RENDER_SECONDS), np.float64)[0]
    n = min(real.shape[1], matched.size)
    assert played["voices"][0]["missing"] == []
    assert np.corrcoef(real[0, :n].astype(np.float64), matched[:n])[0, 1] > 0.98  # the matched sound, in Dexed


@pytest.mark.usefixtures("server")
def test_a_plug_in_of_another_version_is_refused_in_a_closed_undo_block(
    emu: ReaperEmulator, vital_params: list[EmuParam]
) -> None:
    emu.install_plugin(VITAL_VST3, vital_params[:100])
    run_action(emu, MATCH, ["vital,auto"], timeout_seconds=240)
    ((title, message),) = emu.message_boxes
    assert "Vital (Vital Audio) has 100 parameters" in message and "another version" in message
    assert emu.open_undo_blocks == 0 and emu.undo_history == [DESCRIPTION]
    assert [t.name for t in emu.project.tracks()] == ["guitar", "drums"]  # the new track went again


def test_no_selection_and_bad_answers_get_one_line(emu: ReaperEmulator) -> None:
    emu.RPR_SetMediaItemSelected(emu.RPR_GetSelectedMediaItem(0, 0), False)
    run_action(emu, MATCH)
    assert emu.message_boxes[-1][1] == "select exactly one audio item: the sound to match with a synth"
    emu.RPR_SetMediaItemSelected(_first_item(emu), True)
    run_action(emu, MATCH, ["serum,auto"])
    assert emu.message_boxes[-1][1] == "unknown synth 'serum' (synths: all, vital, amsynth, kars, dexed)"
    run_action(emu, MATCH, ["vital,high"])
    assert emu.message_boxes[-1][1].startswith("note (auto or a MIDI note) must be a number")
    run_action(emu, MATCH, [None])  # cancelled: nothing at all
    assert len(emu.message_boxes) == 3 and emu.undo_history == [] and emu.undo_blocks_opened == 0


def _first_item(emu: ReaperEmulator) -> str:
    return emu.pointers.pointer("MediaItem*", emu.project.items()[0].block)


def test_server_down_says_how_to_start_it(emu: ReaperEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REATIMBRE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "token").write_text("t" * 32)
    (tmp_path / "config" / "server.json").write_text(json.dumps({"host": "127.0.0.1", "port": _free_port()}))
    run_action(emu, MATCH, ["vital,auto"], timeout_seconds=120)
    ((title, message),) = emu.message_boxes
    assert "not reachable" in message and "Start local server" in message
    assert emu.undo_history == [] and emu.undo_blocks_opened == 0
