"""The coach-answer structure used for automation and MIDI write-back."""

from __future__ import annotations

import json

import pytest

from extension.coach_steps import CoachPlan
from models.errors import ReaTimbreError

ANSWER = {
    "profile": "vital",
    "steps": [
        {
            "effect": "distortion",
            "changes": [
                {
                    "fx_name": "Vital",
                    "param_index": 97,
                    "param_name": "Distortion Drive",
                    "value": 0.62,
                    "display": "+4.2 dB",
                    "cc": 74,
                    "channel": 1,
                },
            ],
            "metrics": {"mse": 0.012, "note": "ignored"},
        },
        {"effect": "reverb", "params": [{"fx_index": 0, "param_index": 81, "value": 1.0}]},
    ],
}


def test_reads_the_documented_shape() -> None:
    plan = CoachPlan.from_coach_json(json.dumps(ANSWER))
    assert plan.profile == "vital" and len(plan.steps) == 2
    first = plan.steps[0].changes[0]
    assert (first.fx_name, first.param_index, first.value, first.cc, first.channel) == (
        "Vital",
        97,
        0.62,
        74,
        1,
    )
    assert first.cc_value == 79
    assert plan.steps[0].metrics == {"mse": 0.012}
    second = plan.steps[1].changes[0]
    assert second.fx_index == 0 and second.param_name == "parameter 81" and second.cc is None
    assert plan.steps[0].label(1) == "step 1: distortion (Distortion Drive +4.2 dB)"
    assert CoachPlan.from_coach_json(plan.to_json()) == plan


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fx_index": 0, "param_index": 1, "value": 1.5}, "0..1"),
        ({"fx_index": 0, "param_index": 1, "value": "0.5"}, "0..1"),
        ({"param_index": 1, "value": 0.5}, "neither fx_name nor fx_index"),
        ({"fx_index": 0, "param_index": -1, "value": 0.5}, "param_index"),
        ({"fx_index": 0, "param_index": 1, "value": 0.5, "cc": 128}, "cc must be"),
        ({"fx_index": 0, "param_index": 1, "value": 0.5, "channel": 16}, "channel must be"),
    ],
)
def test_bad_changes_are_rejected_with_one_line(change: dict, message: str) -> None:
    with pytest.raises(ReaTimbreError, match=message):
        CoachPlan.from_coach_json({"steps": [{"changes": [change]}]})


def test_bad_documents_are_rejected() -> None:
    with pytest.raises(ReaTimbreError, match="not valid JSON"):
        CoachPlan.from_coach_json("{nope")
    with pytest.raises(ReaTimbreError, match="no 'steps'"):
        CoachPlan.from_coach_json({"result": 1})
    with pytest.raises(ReaTimbreError, match="no parameter changes"):
        CoachPlan.from_coach_json({"steps": [{"changes": []}]})
