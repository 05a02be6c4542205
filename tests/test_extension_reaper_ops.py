"""REAPER operations (extension.reaper_ops) run in-process against the REAPER emulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from reaper_emulator import EmuParam, ReaperEmulator

from extension import reaper_ops as ops
from extension.coach_steps import CoachPlan
from extension.rpp import RppProject
from models.errors import ReaTimbreError

PLAN = CoachPlan.from_coach_json(
    {
        "profile": "vital",
        "steps": [
            {
                "effect": "distortion",
                "changes": [
                    {"fx_name": "Vital", "param_index": 1, "param_name": "Distortion Drive", "value": 0.8, "cc": 20},
                ],
            },
            {
                "effect": "reverb",
                "changes": [
                    {"fx_name": "Vital", "param_index": 2, "param_name": "Reverb Mix", "value": 0.4, "cc": 21},
                    {"fx_name": "Vital", "param_index": 1, "param_name": "Distortion Drive", "value": 0.6, "cc": 20},
                ],
            },
            {
                "effect": "eq",
                "changes": [
                    {"fx_index": 0, "param_index": 0, "param_name": "Volume", "value": 0.25},
                ],
            },
        ],
    }
)


def _wav(path: Path, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(44100 * seconds), dtype=np.float32), 44100)
    return path


@pytest.fixture
def emu(tmp_path: Path) -> ReaperEmulator:
    emulator = ReaperEmulator.new(tmp_path / "song.rpp", bpm=120)
    dry = emulator.add_track("dry")
    emulator.add_item(dry, _wav(tmp_path / "Audio" / "dry.wav"), position_seconds=4.0, length_seconds=1.0)
    synth = emulator.add_track("synth", selected=True)
    emulator.add_fx(
        synth,
        "VSTi: Vital (Vital Audio)",
        [
            EmuParam("Volume", 0.7, -80, 6, "dB"),
            EmuParam("Distortion Drive", 0.5, -30, 30, "dB"),
            EmuParam("Reverb Mix", 0.1),
        ],
    )
    emulator.RPR_SetEditCurPos(2.0, False, False)
    return emulator


def _synth(api: ops.ReaperApi) -> str:
    return ops.ret(api.call("GetSelectedTrack", 0, 0))


def test_selected_items_and_rendered_take(emu: ReaperEmulator, tmp_path: Path) -> None:
    api = ops.InProcessApi(emu.module())
    (item,) = ops.selected_items(api)
    assert item.track_index == 0 and item.position_seconds == 4.0 and item.length_seconds == 1.0
    assert item.source_path == str(tmp_path / "Audio" / "dry.wav") and item.take_name == "dry.wav"
    assert item.start_offset_seconds == 0.0 and item.playrate == 1.0

    rendered = _wav(tmp_path / "renders" / "dry-compressor.wav")
    ops.add_rendered_take(api, item, str(rendered), "compressor")
    assert emu.undo_history == ["ReaTimbre: render through compressor"] and emu.edits_outside_undo == 0
    (again,) = ops.selected_items(api)
    assert again.take_name == "dry.wav (neural: compressor)" and again.source_path == str(rendered)

    saved = RppProject.load(emu.save(tmp_path / "song.rpp"))
    takes = saved.items()[0].takes
    assert [t.active for t in takes] == [False, True] and takes[1].path == rendered
    assert takes[1].file == "renders/dry-compressor.wav"

    with pytest.raises(ReaTimbreError, match="cannot open"):
        ops.add_rendered_take(api, again, str(tmp_path / "missing.wav"), "x")


def test_track_fx_lists_parameters_with_display_text(emu: ReaperEmulator) -> None:
    api = ops.InProcessApi(emu.module())
    (fx,) = ops.track_fx(api, _synth(api))
    assert fx.name == "VSTi: Vital (Vital Audio)"
    assert [(p.index, p.name) for p in fx.params] == [(0, "Volume"), (1, "Distortion Drive"), (2, "Reverb Mix")]
    assert fx.params[1].value == 0.5 and fx.params[1].formatted == "0.00 dB"


def test_automation_at_successive_bars_from_the_cursor(emu: ReaperEmulator, tmp_path: Path) -> None:
    api = ops.InProcessApi(emu.module())
    track = _synth(api)
    times = ops.step_times(api, PLAN, "cursor")
    assert times == pytest.approx([2.0, 4.0, 6.0])  # 120 bpm, 4/4: one bar is 2 s
    written = ops.write_automation(api, track, PLAN, times)
    assert written == 6
    assert emu.undo_history == ["ReaTimbre: write 3 coach steps as automation"] and emu.edits_outside_undo == 0
    drive = emu.envelope_points(1, 0, 1)
    assert drive == [(2.0, 0.8, 1), (4.0, 0.6, 1)]
    # first changed at step 2: holds its current value from step 1 so it does not jump early
    assert emu.envelope_points(1, 0, 2) == [(2.0, 0.1, 1), (4.0, 0.4, 1)]
    assert emu.envelope_points(1, 0, 0) == [(2.0, 0.7, 1), (6.0, 0.25, 1)]

    ops.write_automation(api, track, PLAN, times)  # writing again replaces, never duplicates
    assert emu.envelope_points(1, 0, 1) == drive
    saved = RppProject.load(emu.save(tmp_path / "song.rpp"))
    assert saved.fx_chain(1)[0].envelope_params == [
        (1, "Distortion Drive / VSTi: Vital (Vital Audio)"),
        (2, "Reverb Mix / VSTi: Vital (Vital Audio)"),
        (0, "Volume / VSTi: Vital (Vital Audio)"),
    ]


def test_automation_from_the_selected_item_start(emu: ReaperEmulator) -> None:
    api = ops.InProcessApi(emu.module())
    assert ops.step_times(api, PLAN, "item", bars_apart=0.5) == pytest.approx([4.0, 5.0, 6.0])
    with pytest.raises(ReaTimbreError, match="unknown placement"):
        ops.step_times(api, PLAN, "marker")


def test_midi_cc_for_learned_parameters(emu: ReaperEmulator, tmp_path: Path) -> None:
    api = ops.InProcessApi(emu.module())
    track = _synth(api)
    item, count = ops.write_midi_cc(api, track, PLAN, [2.0, 4.0, 6.0])
    assert count == 4  # step 3 has no CC; CC 21 gets its current value at step 1
    take = ops.ret(api.call("GetActiveTake", item))
    ccs = []
    for i in range(api.call("MIDI_CountEvts", take, 0, 0, 0)[3]):
        _, _, _, _, _, ppq, status, chan, cc, value = api.call("MIDI_GetCC", take, i, 0, 0, 0, 0, 0, 0, 0)
        ccs.append((ppq, status, chan, cc, value))
    assert ccs == [
        (0.0, 0xB0, 0, 20, 102),
        (0.0, 0xB0, 0, 21, 13),
        (3840.0, 0xB0, 0, 21, 51),
        (3840.0, 0xB0, 0, 20, 76),
    ]
    assert ops.ret(api.call("GetMediaItemInfo_Value", item, "D_LENGTH")) == pytest.approx(6.0)
    assert emu.undo_history == ["ReaTimbre: write 3 coach steps as MIDI CC"]
    saved = RppProject.load(emu.save(tmp_path / "song.rpp"))
    midi = saved.items(track=1)[0]
    assert [(e.ppq, e.data1, e.data2) for e in saved.midi_events(midi)][:4] == [
        (0, 20, 102),
        (0, 21, 13),
        (3840, 21, 51),
        (3840, 20, 76),
    ]

    no_cc = CoachPlan.from_coach_json({"steps": [{"changes": [{"fx_index": 0, "param_index": 0, "value": 1}]}]})
    with pytest.raises(ReaTimbreError, match="MIDI-learned"):
        ops.write_midi_cc(api, track, no_cc, [0.0])


def test_apply_step_and_parameter_lookup_by_name(emu: ReaperEmulator) -> None:
    api = ops.InProcessApi(emu.module())
    track = _synth(api)
    ops.apply_step(api, track, PLAN.steps[1], "ReaTimbre: audition step 2")
    assert [p.value for p in emu.params(1, 0)] == [0.7, 0.6, 0.4]
    assert emu.undo_history == ["ReaTimbre: audition step 2"]
    shifted = CoachPlan.from_coach_json(
        {"steps": [{"changes": [{"fx_name": "vital", "param_index": 7, "param_name": "reverb mix", "value": 0.9}]}]}
    )
    ops.apply_step(api, track, shifted.steps[0], "x")
    assert emu.params(1, 0)[2].value == 0.9
    unknown = CoachPlan.from_coach_json(
        {"steps": [{"changes": [{"fx_name": "Vital", "param_index": 1, "param_name": "Chorus Depth", "value": 0.9}]}]}
    )
    with pytest.raises(ReaTimbreError, match="no parameter 'Chorus Depth'"):
        ops.apply_step(api, track, unknown.steps[0], "x")
    missing_fx = CoachPlan.from_coach_json(
        {"steps": [{"changes": [{"fx_name": "Serum", "param_index": 1, "value": 0.9}]}]}
    )
    with pytest.raises(ReaTimbreError, match="no single FX"):
        ops.apply_step(api, track, missing_fx.steps[0], "x")


def test_emulator_follows_reaper_conventions(emu: ReaperEmulator) -> None:
    api = ops.InProcessApi(emu.module())
    assert ops.is_null(ops.ret(api.call("GetTrack", 0, 5)))
    track = ops.ret(api.call("GetTrack", 0, 1))
    assert api.call("GetMediaTrackInfo_Value", track, "IP_TRACKNUMBER") == 2.0  # 1-based
    name = api.call("TrackFX_GetParamName", track, 0, 1, "", 64)
    assert name == (1, track, 0, 1, "Distortion Drive", 64)  # a tuple: bool as 0/1, out-parameters with the args
    env = ops.ret(api.call("GetFXEnvelope", track, 0, 1, True))
    for t in (3.0, 1.0, 2.0):
        api.call("InsertEnvelopePoint", env, t, 0.5, 0, 0.0, False, True)  # noSort
    unsorted = [api.call("GetEnvelopePoint", env, i, 0, 0, 0, 0, 0)[3] for i in range(3)]
    assert unsorted == [3.0, 1.0, 2.0]
    api.call("Envelope_SortPoints", env)
    assert [api.call("GetEnvelopePoint", env, i, 0, 0, 0, 0, 0)[3] for i in range(3)] == [1.0, 2.0, 3.0]
    emu.set_param_from_osc(2, 1, 3, 0.75)  # OSC numbers tracks, FX and parameters from 1
    assert ops.ret(api.call("TrackFX_GetParamNormalized", track, 0, 2)) == 0.75


def test_bar_times_read_the_time_signature_at_the_right_positions(tmp_path: Path) -> None:
    """TimeMap_GetTimeSigAtTime is void: (proj, time, numerator, denominator, tempo), no leading value."""
    emu = ReaperEmulator.new(tmp_path / "waltz.rpp", bpm=90, numerator=3, denominator=4)
    api = ops.InProcessApi(emu.module())
    assert ops.bar_times(api, 0.0, 3) == pytest.approx([0.0, 2.0, 4.0])  # 3 beats of 2/3 s
    six_eight = ReaperEmulator.new(tmp_path / "jig.rpp", bpm=120, numerator=6, denominator=8)
    assert ops.bar_times(ops.InProcessApi(six_eight.module()), 1.0, 2) == pytest.approx([1.0, 2.5])


@pytest.mark.parametrize("refused", ["SetMediaItemTake_Source", "PCM_Source_CreateFromFile"])
def test_rendered_take_falls_back_to_insert_media(emu: ReaperEmulator, tmp_path: Path, refused: str) -> None:
    """If REAPER does not take the file as the new take's source, the empty take goes and InsertMedia adds it."""
    api = ops.InProcessApi(emu.module())
    other = emu.add_item(0, _wav(tmp_path / "Audio" / "other.wav"), 8.0, 1.0, selected=True)
    item = ops.selected_items(api)[0]
    emu.failing = {refused}
    rendered = _wav(tmp_path / "renders" / "dry-fuzz.wav")
    ops.add_rendered_take(api, item, str(rendered), "fuzz")
    takes = emu.project.items()[0].takes
    assert [t.path for t in takes] == [tmp_path / "Audio" / "dry.wav", rendered]  # no empty take left behind
    assert takes[1].active and takes[1].name == "dry.wav (neural: fuzz)"
    assert emu.undo_history == ["ReaTimbre: render through fuzz"] and emu.edits_outside_undo == 0
    assert [ops.ret(emu.RPR_GetSelectedMediaItem(0, i)) for i in range(2)] == [item.item, other]  # restored


def test_unusable_render_leaves_the_item_as_it_was(emu: ReaperEmulator, tmp_path: Path) -> None:
    api = ops.InProcessApi(emu.module())
    (item,) = ops.selected_items(api)
    emu.failing = {"SetMediaItemTake_Source"}
    with pytest.raises(ReaTimbreError, match="cannot open the rendered file .*missing.wav"):
        ops.add_rendered_take(api, item, str(tmp_path / "missing.wav"), "fuzz")
    assert len(emu.project.items()[0].takes) == 1


def test_nested_undo_blocks_make_one_undo_point(emu: ReaperEmulator, tmp_path: Path) -> None:
    api = ops.InProcessApi(emu.module())
    (item,) = ops.selected_items(api)
    with ops.undo_block(api, "ReaTimbre: render 2 items"):
        ops.add_rendered_take(api, item, str(_wav(tmp_path / "r1.wav")), "a")
        ops.add_rendered_take(api, item, str(_wav(tmp_path / "r2.wav")), "b")
    assert emu.undo_blocks_opened == 1 and emu.undo_history == ["ReaTimbre: render 2 items"]


def test_pointer_checks_survive_a_validateptr2_that_always_says_no(emu: ReaperEmulator) -> None:
    api = ops.InProcessApi(emu.module())
    (item,) = ops.selected_items(api)
    project = ops.current_project(api)
    emu.validate_ptr2_works = False
    assert ops.still_there(api, project, item=item.item, take=item.take, track=item.track) is None
    emu.delete_item(item.item)
    assert "item was deleted" in ops.still_there(api, project, item=item.item, take=item.take, track=item.track)
    emu.RPR_Main_OnCommand(40859, 0)  # File: new project tab
    assert "tab was switched" in ops.still_there(api, project, track=item.track)
