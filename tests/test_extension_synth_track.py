"""Which synth a matched patch goes into, on the REAPER emulator without a server (extension.synth_track)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dexed_host import dexed_emulated, dexed_parameters, voice_from_host
from reaper_emulator import EmuParam, ReaperEmulator

from extension import reaper_ops as ops
from extension.synth_track import parameter_indices, write_matched_patch
from models.errors import ReaTimbreError
from models.synth.dexed import CONTROLS, DexedSynth


def _entry(synth: str, count: int, value: float) -> dict:
    return {
        "synth": synth,
        "lsd_db": 9.0,
        "note": 48,
        "patch": f"/p/{synth}",
        "host_values": {str(i): value for i in range(count)},
    }


RANKING = [_entry("amsynth", 41, 0.25), _entry("vital", 772, 0.5), _entry("kars", 3, 0.75)]


@pytest.fixture
def emu(tmp_path: Path) -> ReaperEmulator:
    emulator = ReaperEmulator.new(tmp_path / "song.rpp")
    emulator.add_track("vocal")
    emulator.add_track("bass")
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    emulator.add_item(0, wav, 0.0, 1.0)
    return emulator


def _item(emu: ReaperEmulator) -> ops.SelectedItem:
    return ops.describe_item(emu, emu.RPR_GetSelectedMediaItem(0, 0))


def _params(count: int) -> list[EmuParam]:
    return [EmuParam(f"P{i}") for i in range(count)]


def test_the_tracks_own_synth_wins_over_a_better_ranked_one(emu: ReaperEmulator) -> None:
    emu.add_fx(0, "LV2i: amsynth (amsynth)", _params(41))  # another build: its parameter order is not the VST's
    emu.add_fx(0, "VSTi: Vital (Vital Audio)", _params(772))
    emu.install_plugin("VSTi: amsynth (Nick Dowell)", _params(41))
    written = write_matched_patch(emu, _item(emu), RANKING, "match")
    assert written is not None and written.synth == "vital" and not written.new_track and written.track_number == 1
    assert {p.value for p in emu.params(0, 1)} == {0.5} and {p.value for p in emu.params(0, 0)} == {0.0}
    assert emu.undo_history == ["match"] and emu.edits_outside_undo == 0


def test_a_new_track_below_gets_the_best_synth_reaper_can_load(emu: ReaperEmulator) -> None:
    emu.install_plugin("VSTi: Vital (Vital Audio)", _params(772))  # no VST3 Vital, no amsynth: VST2 Vital
    emu.install_plugin("VST3i: Kars (DISTRHO)", _params(3))  # Kars only as VST3: not the build the patch is for
    written = write_matched_patch(emu, _item(emu), RANKING, "match")
    assert written is not None and written.synth == "vital" and written.new_track and written.track_number == 2
    assert [t.name for t in emu.project.tracks()] == ["vocal", "Vital: a.wav", "bass"]
    assert [fx.name for fx in emu.project.fx_chain(1)] == ["VSTi: Vital (Vital Audio)"]
    assert {p.value for p in emu.params(1, 0)} == {0.5}


def _dexed_entry() -> tuple[dict, bytes]:
    """A ranking entry for a random Dexed voice (every value drawn over its whole range), and its 145 VCED values."""
    rng = np.random.default_rng(7)
    synth = DexedSynth()
    synth.set_controls({name: int(rng.integers(0, maximum + 1)) for name, (_, maximum) in CONTROLS.items()})
    entry = {**_entry("dexed", 0, 0.0), "host_values": {}, "host_values_by_name": synth.host_parameter_values()}
    return entry, synth.voice_bytes()[:145]


def test_dexed_gets_the_whole_voice_by_its_parameter_names(emu: ReaperEmulator) -> None:
    emu.add_fx(0, "VST3i: Dexed (Digital Suburban)", dexed_emulated(0.3))
    entry, voice = _dexed_entry()
    written = write_matched_patch(emu, _item(emu), [entry, *RANKING], "match")
    assert written is not None and written.synth == "dexed" and not written.new_track and written.parameters == 153
    values = {p.name: p.value for p in emu.params(0, 0)}
    assert voice_from_host(list(values.values())) == voice  # what Dexed itself would read back
    assert values["Cutoff"] == 1.0 and values["Resonance"] == 0.0
    assert {values[f"OP{op} SWITCH"] for op in range(1, 7)} == {1.0}
    assert values["Output"] == values["MonoMode"] == values["MASTER TUNE ADJ"] == 0.3  # the user's, untouched


def test_an_older_dexed_is_found_by_its_old_and_cut_names() -> None:
    wanted = [p.name for p in dexed_parameters() if p.name not in ("Output", "MonoMode", "MASTER TUNE ADJ")]
    older = ["MIDDLE C" if p.name == "TRANSPOSE" else p.name for p in dexed_parameters()]
    found, missing = parameter_indices(wanted, older)
    assert missing == [] and older[found["TRANSPOSE"]] == "MIDDLE C"
    cut = [name[:16] for name in older]  # a host that cuts VST2 names to 16 characters
    found, missing = parameter_indices(wanted, cut)
    assert missing == [] and cut[found["OP1 L SCALE DEPTH"]] == "OP1 L SCALE DEPT"
    assert all(found[p.name] == i for i, p in enumerate(dexed_parameters()) if p.name in found)
    found, missing = parameter_indices(wanted, [name[:8] for name in older])  # "OP1 EG R" could be any of four
    assert "OP1 EG RATE 1" in missing and "ALGORITHM" not in missing


def test_a_dexed_without_a_parameter_the_voice_sets_is_refused(emu: ReaperEmulator) -> None:
    emu.install_plugin("VST3i: Dexed (Digital Suburban)", [p for p in dexed_emulated() if p.name != "OP4 F FINE"])
    entry, _ = _dexed_entry()
    with pytest.raises(ReaTimbreError, match=r"Dexed \(Digital Suburban\) has no parameter named 'OP4 F FINE'"):
        write_matched_patch(emu, _item(emu), [entry], "match")
    assert [t.name for t in emu.project.tracks()] == ["vocal", "bass"] and emu.open_undo_blocks == 0


def test_no_synth_leaves_the_project_as_it_was(emu: ReaperEmulator) -> None:
    before = emu.project.to_bytes()
    assert write_matched_patch(emu, _item(emu), RANKING, "match") is None
    assert emu.project.to_bytes() == before and emu.open_undo_blocks == 0


def test_too_few_parameters_are_refused_before_anything_is_written(emu: ReaperEmulator) -> None:
    emu.add_fx(0, "VST3i: Vital (Vital Audio)", _params(700))
    with pytest.raises(ReaTimbreError, match="has 700 parameters, but ReaTimbre's vital patch sets parameter 772"):
        write_matched_patch(emu, _item(emu), RANKING[1:], "match")
    assert {p.value for p in emu.params(0, 0)} == {0.0} and emu.open_undo_blocks == 0
