# @description ReaTimbre: Steer an effect from two selected items (dry, wet)
# @version 0.1.0
# @author ReaTimbre
# @about
#   Select two items: the dry recording and the same performance through the effect you want (the wet one).
#   ReaTimbre trains a new neural effect from the pair on the local server and reports its held-out error;
#   the new effect then appears in "Render selected items through a neural effect".
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
from models.errors import ReaTimbreError  # noqa: E402


def main():
    api = reatimbre_action.api()
    items = ops.selected_items(api)
    if len(items) != 2 or not all(i.source_path for i in items):
        raise ReaTimbreError("select exactly two audio items: the dry one and the wet (processed) one")
    dry, wet = sorted(items, key=lambda i: (i.track_index, i.position_seconds))
    answers = reatimbre_action.ask(
        "ReaTimbre: steer an effect",
        [
            ("New effect name", "my-effect"),
            ("Memory: short/long/auto", "auto"),
            ("Training minutes", "3"),
            ("Dry item: upper/lower", "upper"),
        ],
    )
    if answers is None:
        return
    name, memory_text, minutes_text, dry_text = answers
    memory = reatimbre_action.parse_choice(memory_text, "memory", ["short", "long", "auto"])
    minutes = reatimbre_action.parse_number(minutes_text, "training minutes", 0.1, 120.0)
    if reatimbre_action.parse_choice(dry_text, "dry item", ["upper", "lower"]) == "lower":
        dry, wet = wet, dry
    client = Client()
    work = [
        ("steer", {"dry": dry.source_path, "wet": wet.source_path, "name": name, "memory": memory, "minutes": minutes})
    ]

    def finished(results, errors):
        if errors:
            reatimbre_action.show_error("steering failed: " + "; ".join(errors))
            return
        result = results[0]
        if result.get("saved") is False:  # not clearly better than the dry input: the server kept nothing
            reatimbre_action.show_error(result.get("message") or f"{name!r} was not saved: no better than dry")
            return
        error = result.get("heldout_mrstft")
        detail = f" (held-out MR-STFT error {error:.3f})" if isinstance(error, (int, float)) else ""
        reatimbre_action.show_info(f"new effect {result.get('model', name)!r} is ready{detail}")

    reatimbre_action.run_jobs(client, work, f"steering {name}", finished)


reatimbre_action.run(main)
