"""Coach steps out of REAPER's project: live OSC audition and a Standard MIDI File of CC changes."""

from __future__ import annotations

import time
from pathlib import Path

import mido
import pytest
from reaper_emulator import EmuParam, ReaperEmulator
from reaper_emulator.osc_listener import OscListener

from extension.coach_steps import CoachPlan
from extension.midi_file import plan_to_midi, write_midi_file
from extension.osc import OscBridge
from extension.osc_audition import audition_step, step_targets
from models.errors import ReaTimbreError

PLAN = CoachPlan.from_coach_json(
    {
        "profile": "vital",
        "steps": [
            {"changes": [{"fx_name": "Vital", "param_index": 1, "param_name": "Drive", "value": 1.0, "cc": 20}]},
            {
                "changes": [
                    {"fx_name": "Vital", "param_index": 2, "param_name": "Mix", "value": 0.5, "cc": 21, "channel": 3},
                    {"fx_index": 1, "param_index": 0, "param_name": "Gain", "value": 0.25},
                ]
            },
        ],
    }
)


def test_osc_audition_moves_the_emulated_parameters(tmp_path: Path) -> None:
    emu = ReaperEmulator.new(tmp_path / "p.rpp")
    emu.add_track("drums")
    synth = emu.add_track("synth")
    emu.add_fx(synth, "VSTi: Vital (Vital Audio)", [EmuParam("Volume"), EmuParam("Drive"), EmuParam("Mix")])
    emu.add_fx(synth, "JS: gain", [EmuParam("Gain", 0.5)])
    names = ["VSTi: Vital (Vital Audio)", "JS: gain"]
    with OscListener(emu) as listener:
        bridge = OscBridge("127.0.0.1", listener.port)
        sent = audition_step(bridge, synth, PLAN.steps[1], names)
        assert sent == ["/track/2/fx/1/fxparam/3/value", "/track/2/fx/2/fxparam/1/value"]
        deadline = time.monotonic() + 5
        while len(listener.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [p.value for p in emu.params(synth, 0)] == [0.0, 0.0, 0.5]
    assert emu.params(synth, 1)[0].value == 0.25
    with pytest.raises(ReaTimbreError, match="no single FX"):
        step_targets(PLAN.steps[0], ["JS: gain"])


def test_midi_file_has_ccs_at_bar_positions(tmp_path: Path) -> None:
    path = write_midi_file(tmp_path / "coach.mid", PLAN, bpm=100, numerator=3, denominator=4)
    midi = mido.MidiFile(path)
    assert midi.ticks_per_beat == 960
    ticks, ccs, tempo = 0, [], None
    for message in midi.tracks[0]:
        ticks += message.time
        if message.type == "control_change":
            ccs.append((ticks, message.channel, message.control, message.value))
        elif message.type == "set_tempo":
            tempo = mido.tempo2bpm(message.tempo)
    assert tempo == pytest.approx(100)
    assert ccs == [(0, 0, 20, 127), (2880, 3, 21, 64)]  # a 3/4 bar is 3 × 960 ticks
    with pytest.raises(ReaTimbreError, match="already exists"):
        write_midi_file(path, PLAN)
    no_cc = CoachPlan.from_coach_json({"steps": [{"changes": [{"fx_index": 0, "param_index": 0, "value": 1}]}]})
    with pytest.raises(ReaTimbreError, match="MIDI-learned"):
        plan_to_midi(no_cc)
    with pytest.raises(ReaTimbreError, match="invalid tempo"):
        plan_to_midi(PLAN, bpm=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coach.mid"]


def test_osc_audition_leaves_automated_parameters_to_their_envelopes() -> None:
    from extension.coach_steps import CoachStep, ParamChange
    from extension.osc_audition import step_targets

    step = CoachStep((ParamChange(3, "Drive", 0.9, fx_index=0), ParamChange(4, "Mix", 0.2, fx_index=0)))
    assert step_targets(step, ["Vital"]) == [(0, 3, 0.9), (0, 4, 0.2)]
    assert step_targets(step, ["Vital"], automated={(0, 3)}) == [(0, 4, 0.2)]
