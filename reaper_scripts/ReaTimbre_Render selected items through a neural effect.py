# @description ReaTimbre: Render selected items through a neural effect
# @version 0.1.0
# @author ReaTimbre
# @about
#   Sends the active take of every selected item to the local ReaTimbre server, renders it through a neural
#   effect with the knobs you choose, and adds the result as a new active take named after the effect.
#   REAPER stays responsive while the server works (progress in the ReaScript console). One undo point.
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


def parse_knobs(text, model):
    """``name=value name=value`` → {name: value}, checked against the model's knobs."""
    knobs = {k["name"]: k for k in model.get("knobs", [])}
    out = {}
    for part in text.split():
        name, sep, value = part.partition("=")
        if not sep or name not in knobs:
            raise ReaTimbreError(f"unknown knob {name!r} for {model['name']} (knobs: {', '.join(knobs) or 'none'})")
        number = reatimbre_action.parse_number(value, f"knob {name}", knobs[name]["min"], knobs[name]["max"])
        out[name] = number
    return out


def main():
    api = reatimbre_action.api()
    items = [i for i in ops.selected_items(api) if i.source_path]
    if not items:
        raise ReaTimbreError("select one or more audio items first (MIDI and empty takes cannot be rendered)")
    project = ops.current_project(api)  # the tab the items belong to, before anything can switch it
    client = Client()
    reatimbre_action.fetch(
        client, "GET", "/models", lambda answer: choose_and_render(api, project, items, client, answer)
    )


def choose_and_render(api, project, items, client, answer):
    """Ask for the effect and its settings (once the server listed its models), then render every item."""
    models = {m["name"]: m for m in (answer or {}).get("models") or []}
    if not models:
        raise ReaTimbreError("the ReaTimbre server has no effect models installed")
    first = next(iter(models.values()))
    default_knobs = " ".join(f"{k['name']}={k['default']:g}" for k in first.get("knobs", []))
    answers = reatimbre_action.ask(
        f"ReaTimbre: render {len(items)} item(s)",
        [
            ("Effect: " + "/".join(models), first["name"]),
            ("Knobs (name=value ...)", default_knobs),
            ("Dry/wet mix 0..1", "1"),
            ("Extra tail seconds (blank: auto)", ""),
        ],
    )
    if answers is None:
        return
    effect_text, knob_text, mix_text, tail_text = answers
    if effect_text not in models:
        raise ReaTimbreError(f"unknown effect {effect_text!r} (installed: {', '.join(models)})")
    model = models[effect_text]
    knobs = parse_knobs(knob_text, model)
    mix = reatimbre_action.parse_number(mix_text, "mix", 0.0, 1.0)
    tail = reatimbre_action.parse_number(tail_text, "tail seconds", 0.0, 60.0) if tail_text else None
    work = [
        (
            "render",
            {
                "input": item.source_path,
                "output": None,
                "effect": effect_text,
                "knobs": knobs,
                "mix": mix,
                "tail_seconds": tail,
            },
        )
        for item in items
    ]

    def finished(results, errors):
        done = []
        for item, result in zip(items, results, strict=True):
            if not result:
                continue
            gone = ops.still_there(api, project, item=item.item, take=item.take, track=item.track)
            if gone:
                errors.append(f"{item.take_name or 'item'}: {gone} (the render is {result['output']})")
            else:
                done.append((item, result))
        if done:
            with ops.undo_block(api, f"ReaTimbre: render {len(done)} item(s) through {effect_text}"):
                for item, result in done:
                    ops.add_rendered_take(api, item, str(result["output"]), effect_text)
        reatimbre_action.report_errors(errors, f"rendered {len(done)} of {len(items)} item(s) through {effect_text}")

    reatimbre_action.run_jobs(client, work, f"rendering {len(items)} item(s) through {effect_text}", finished)


reatimbre_action.run(main)
