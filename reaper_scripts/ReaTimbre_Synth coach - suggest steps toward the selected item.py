# @description ReaTimbre: Synth coach - suggest steps toward the selected item
# @version 0.1.0
# @author ReaTimbre
# @about
#   Select the target sound (an audio item) and the track holding your synth. The coach suggests up to N
#   effect-programming steps that bring the synth closer to the target and writes them as FX-parameter
#   automation (square points, one bar apart from the edit cursor or from the item's start) and/or as MIDI CC
#   in a new MIDI item for parameters you have MIDI-learned. Audition them with "Audition next/previous".
import os
import sys

from reaper_python import *  # noqa: F403

try:
    _HERE = os.path.dirname(os.path.abspath(__file__))
except NameError:  # REAPER need not define __file__ for the script it runs; sys.path[0] is its folder
    _HERE = os.path.abspath(sys.path[0])
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import reatimbre_action  # noqa: E402
from reatimbre_client import Client  # noqa: E402

from extension import reaper_ops as ops  # noqa: E402
from extension.coach_steps import CoachPlan  # noqa: E402
from models.errors import ReaTimbreError  # noqa: E402


def main():
    api = reatimbre_action.api()
    items = [i for i in ops.selected_items(api) if i.source_path]
    if len(items) != 1:
        raise ReaTimbreError("select exactly one audio item: the target sound")
    target = items[0]
    track = ops.ret(api.call("GetSelectedTrack", 0, 0))
    if ops.is_null(track) or not ops.fx_names(api, track):
        raise ReaTimbreError("select the track whose synth should be programmed (it needs the synth plug-in)")
    answers = reatimbre_action.ask(
        "ReaTimbre: synth coach",
        [
            ("Starting preset", "default"),
            ("Target start (s into the item)", "0"),
            ("Maximum steps", "5"),
            ("Write as: automation/midi/both", "automation"),
            ("Place steps from: cursor/item", "cursor"),
        ],
    )
    if answers is None:
        return
    preset, start_text, steps_text, mode_text, anchor_text = answers
    start = reatimbre_action.parse_number(start_text, "target start", 0.0, None)
    max_steps = int(reatimbre_action.parse_number(steps_text, "maximum steps", 1, 10))
    mode = reatimbre_action.parse_choice(mode_text, "write mode", ["automation", "midi", "both"])
    anchor = reatimbre_action.parse_choice(anchor_text, "placement", ["cursor", "item"])
    client = Client()
    project = ops.current_project(api)
    request = {
        "target": target.source_path,
        "start_seconds": target.start_offset_seconds + start,
        "preset": preset,
        "max_steps": max_steps,
    }

    def finished(results, errors):
        if errors:
            reatimbre_action.show_error("the coach failed: " + "; ".join(errors))
            return
        gone = ops.still_there(api, project, track=track)
        if gone:
            reatimbre_action.show_error(f"the coach's suggestion was not written: {gone}")
            return
        plan = CoachPlan.from_coach_json(results[0])
        times = ops.step_times(api, plan, anchor)
        original = ops.current_values(api, track, plan)
        with ops.undo_block(api, f"ReaTimbre: coach wrote {len(plan.steps)} steps"):
            if mode in ("automation", "both"):
                ops.write_automation(api, track, plan, times)
            if mode in ("midi", "both"):
                ops.write_midi_cc(api, track, plan, times)
        reatimbre_action.set_state("coach_plan", plan.to_json())
        reatimbre_action.set_state("coach_original", CoachPlan((original,)).to_json())
        reatimbre_action.set_state("coach_track", str(ops.track_index(api, track)))
        reatimbre_action.set_state("coach_step", "-1")
        automated = [round(t, 9) for t in times] if mode in ("automation", "both") else []
        reatimbre_action.set_state("coach_automation_times", automated)
        lines = [step.label(n) for n, step in enumerate(plan.steps, 1)]
        reatimbre_action.status("coach suggestions:\n  " + "\n  ".join(lines))

    reatimbre_action.run_jobs(client, [("coach", request)], "synth coach", finished)


reatimbre_action.run(main)
