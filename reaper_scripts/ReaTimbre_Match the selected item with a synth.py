# @description ReaTimbre: Match the selected item with a synth
# @version 0.1.0
# @author ReaTimbre
# @about
#   Select one audio item: the sound to match. The local ReaTimbre server infers the closest patch on each synth
#   it knows (Vital, amsynth, Kars, Dexed), ranks them, and writes the patch files. The best patch is then written
#   into the synth on the item's track, or onto a new track below it with the synth (Vital and Dexed as VST3 or
#   VST, amsynth and Kars as VST), in one undo point. Without any of these plug-ins nothing changes and the patch
#   files are listed.
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
from extension.synth_track import SYNTH_PLUGINS, write_matched_patch  # noqa: E402
from models.errors import ReaTimbreError  # noqa: E402


def parse_synths(text):
    """``all`` → None (every synth); else the named synths, separated by spaces or slashes."""
    words = text.replace("/", " ").lower().split()
    if words in ([], ["all"]):
        return None
    known = list(SYNTH_PLUGINS)
    unknown = [w for w in words if w not in known]
    if unknown:
        raise ReaTimbreError(f"unknown synth {unknown[0]!r} (synths: all, {', '.join(known)})")
    return list(dict.fromkeys(words))


def parse_note(text):
    if text.strip().lower() in ("", "auto"):
        return None
    return int(reatimbre_action.parse_number(text, "note (auto or a MIDI note)", 0, 127))


def main():
    api = reatimbre_action.api()
    items = [i for i in ops.selected_items(api) if i.source_path]
    if len(items) != 1:
        raise ReaTimbreError("select exactly one audio item: the sound to match with a synth")
    item = items[0]
    answers = reatimbre_action.ask(
        "ReaTimbre: match with a synth",
        [("Synths: all or vital/amsynth/kars/dexed", "all"), ("Note: auto or MIDI 0-127", "auto")],
    )
    if answers is None:
        return
    synths, note = parse_synths(answers[0]), parse_note(answers[1])
    project = ops.current_project(api)
    request = {"input": item.source_path, "start_seconds": item.start_offset_seconds, "synths": synths, "note": note}
    name = item.take_name or os.path.basename(item.source_path)

    def finished(results, errors):
        if errors:
            reatimbre_action.show_error("the match failed: " + "; ".join(errors))
            return
        ranking = results[0]["ranking"]
        lines = [
            f"{rank}. {entry['synth']}: LSD {entry['lsd_db']:.2f} dB at note {entry['note']}  ({entry['patch']})"
            + ("  far: a rough start, expect a different sound" if entry.get("far") else "")
            for rank, entry in enumerate(ranking, 1)
        ]
        reatimbre_action.status(f"match for {name}:\n  " + "\n  ".join(lines))
        gone = ops.still_there(api, project, item=item.item, track=item.track)
        if gone:
            reatimbre_action.show_error(f"the matched patch was not written into REAPER: {gone}")
            return
        written = write_matched_patch(api, item, ranking, f"ReaTimbre: match {name} with a synth")
        if written is None:
            titles = ", ".join(SYNTH_PLUGINS[e["synth"]].title for e in ranking if e["synth"] in SYNTH_PLUGINS)
            paths = "\n".join(f"  {entry['synth']}: {entry['patch']}" for entry in ranking)
            reatimbre_action.show_info(
                f"No synth plug-in for the matched patches was found in REAPER ({titles}; Vital and Dexed as VST3 "
                f"or VST, amsynth and Kars as VST). Nothing was changed in the project. The patch files are:\n{paths}"
            )
            return
        where = "a new track" if written.new_track else "the item's track"
        level_note = SYNTH_PLUGINS[written.synth].level_note
        reatimbre_action.status(
            f"wrote the {written.synth} patch ({written.parameters} parameters) into {written.fx_name} on "
            f"{where} (track {written.track_number})" + (f"; {level_note}" if level_note else "")
        )

    client = Client()
    reatimbre_action.fetch(  # a server that is not running is reported at once, not after the job's grace time
        client,
        "GET",
        "/health",
        lambda _answer: reatimbre_action.run_jobs(client, [("match", request)], f"matching {name}", finished),
    )


reatimbre_action.run(main)
