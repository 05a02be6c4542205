"""The REAPER operations run offline on a real project file through the emulator's RppApi."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from reaper_emulator.rpp_api import RppApi

from extension import reaper_ops as ops
from extension.coach_steps import CoachPlan
from extension.rpp import RppProject

FIXTURE = Path(__file__).parent / "fixtures" / "rpp" / "05_parmenv_automation_win.rpp"

PLAN = CoachPlan.from_coach_json(
    {
        "steps": [
            {
                "changes": [
                    {"fx_name": "Cheap Radio HPF", "param_index": 2, "param_name": "Band 1 Frequency", "value": 0.3}
                ]
            },
            {
                "changes": [
                    {"fx_name": "Cheap Radio HPF", "param_index": 5, "param_name": "Band 2 Gain", "value": 0.7},
                    {"fx_name": "Cheap Radio HPF", "param_index": 2, "param_name": "Band 1 Frequency", "value": 0.6},
                ]
            },
        ]
    }
)


def test_coach_steps_written_offline_into_a_real_project(tmp_path: Path) -> None:
    src = tmp_path / FIXTURE.name
    src.write_bytes(FIXTURE.read_bytes())
    project = RppProject.load(src)
    api = RppApi(project)
    api.declare_plan(3, PLAN)
    track = ops.ret(api.call("GetTrack", 0, 3))
    assert ops.fx_names(api, track)[2] == "Cheap Radio HPF"
    # the envelope's first point stands in for the plug-in's (unknown) stored value
    assert ops.ret(api.call("TrackFX_GetParamNormalized", track, 2, 2)) == pytest.approx(0.76930552)
    times = ops.bar_times(api, 40.0, 2)
    assert times == pytest.approx([40.0, 40.0 + 4 * 60 / 76])
    written = ops.write_automation(api, track, PLAN, times)
    assert written == 4 and api.undo_history == ["ReaTimbre: write 2 coach steps as automation"]
    out = project.save(tmp_path / "coached.rpp")

    before = src.read_text().splitlines(keepends=True)
    after = out.read_text().splitlines(keepends=True)
    removed = [line for line in difflib.ndiff(before, after) if line.startswith("- ")]
    assert removed == []  # only additions: everything REAPER wrote is still there, byte for byte
    reread = RppApi(RppProject.load(out))
    points = [(t, round(v, 6)) for t, v, _ in reread.envelope_points(3, 2, 2) if 39 < t < 45]
    assert points == [(40.0, 0.3), (pytest.approx(times[1]), 0.6)]
    assert [(round(t, 6), v) for t, v, _ in reread.envelope_points(3, 2, 5)] == [(40.0, 0.7), (round(times[1], 6), 0.7)]
    assert reread.params(3, 2)[5].name == "Band 2 Gain"


def test_offline_backend_names_what_it_cannot_do(tmp_path: Path) -> None:
    from models.errors import ReaTimbreError

    api = RppApi(RppProject.load(FIXTURE))
    with pytest.raises(ReaTimbreError, match="does not implement GetUserInputs"):
        api.call("GetUserInputs", "t", 1, "a", "", 64)
    assert api.call("GetProjectPath", "", 4096) == (str(FIXTURE.parent), 4096)
