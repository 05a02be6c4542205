"""Stepping through the last coach suggestion inside REAPER (shared by the two audition actions).

Automation wins. When the coach wrote its steps as FX envelopes, REAPER's envelopes (tracks read them in the
default Trim/Read mode) would overwrite any value the audition set, at the next audio block during playback
or when the cursor moves. So auditioning step k then moves the edit cursor (and playback) to step k's bar and
lets the envelopes set the sound; only "the original sound" (before step 1) is set directly, and it lasts until
playback or the cursor reaches the envelopes again. Without automation the steps' values are set directly.
"""

from __future__ import annotations

import json

import reatimbre_action

from extension import reaper_ops as ops
from extension.coach_steps import CoachPlan
from models.errors import ReaTimbreError


def audition(delta: int) -> int:
    """Move ``delta`` steps through the plan (−1 = the original sound) and apply that state; return it."""
    text = reatimbre_action.get_state("coach_plan")
    if not text:
        raise ReaTimbreError("no coach suggestion yet: run 'ReaTimbre: Synth coach' first")
    plan = CoachPlan.from_coach_json(text)
    original = CoachPlan.from_coach_json(reatimbre_action.get_state("coach_original"))
    api = reatimbre_action.api()
    track = ops.ret(api.call("GetTrack", 0, int(reatimbre_action.get_state("coach_track") or 0)))
    if ops.is_null(track):
        raise ReaTimbreError("the coached track no longer exists")
    current = int(reatimbre_action.get_state("coach_step") or -1)
    step = max(-1, min(len(plan.steps) - 1, current + delta))
    times = json.loads(reatimbre_action.get_state("coach_automation_times") or "[]")
    if step < 0:
        ops.apply_step(api, track, original.steps[0], "ReaTimbre: audition the original sound")
        note = " (the coach's automation takes over again from its first step)" if times else ""
        reatimbre_action.status("auditioning the original sound" + note)
    elif len(times) == len(plan.steps):
        api.call("SetEditCurPos", float(times[step]), True, True)
        reatimbre_action.status("auditioning " + plan.steps[step].label(step + 1) + " (its automation, at the cursor)")
    else:
        state = ops.cumulative_step(plan, step)
        ops.apply_step(api, track, state, f"ReaTimbre: audition coach step {step + 1}")
        reatimbre_action.status("auditioning " + plan.steps[step].label(step + 1))
    reatimbre_action.set_state("coach_step", json.dumps(step))
    return step
