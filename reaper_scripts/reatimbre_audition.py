# @noindex
"""Stepping through the last coach suggestion inside REAPER (shared by the two audition actions)."""

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
    if step < 0:
        ops.apply_step(api, track, original.steps[0], "ReaTimbre: audition the original sound")
        reatimbre_action.status("auditioning the original sound")
    else:
        state = ops.cumulative_step(plan, step)
        ops.apply_step(api, track, state, f"ReaTimbre: audition coach step {step + 1}")
        reatimbre_action.status("auditioning " + plan.steps[step].label(step + 1))
    reatimbre_action.set_state("coach_step", json.dumps(step))
    return step
