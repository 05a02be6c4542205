"""Coach steps as a Standard MIDI File of CC changes (mido), for use outside REAPER.

One track at the given tempo and time signature; step ``k`` sits ``k × bars_apart`` bars after the start.
Only parameters with a MIDI-learned CC (``ParamChange.cc``) are written; values are the 7-bit form of the
normalised value. Outside REAPER the current values are unknown, so no "hold" value is written before a
parameter's first step.
"""

from __future__ import annotations

import os
from pathlib import Path

import mido

from extension.coach_steps import CoachPlan
from models.atomic_files import atomic_path
from models.errors import ReaTimbreError

TICKS_PER_QUARTER = 960


def plan_to_midi(
    plan: CoachPlan, bpm: float = 120.0, numerator: int = 4, denominator: int = 4, bars_apart: float = 1.0
) -> mido.MidiFile:
    """Build the MIDI file in memory."""
    if not plan.steps:
        raise ReaTimbreError("the coach suggested no steps")
    if bpm <= 0 or numerator <= 0 or denominator not in (1, 2, 4, 8, 16, 32) or bars_apart <= 0:
        raise ReaTimbreError(f"invalid tempo/meter: {bpm} bpm, {numerator}/{denominator}, {bars_apart} bars")
    if not any(c.cc is not None for s in plan.steps for c in s.changes):
        raise ReaTimbreError("none of these steps has a MIDI-learned CC (the profile maps no CC)")
    bar_ticks = round(TICKS_PER_QUARTER * numerator * 4 / denominator * bars_apart)
    events: list[tuple[int, mido.Message]] = []
    for number, step in enumerate(plan.steps):
        for change in step.changes:
            if change.cc is not None:
                message = mido.Message(
                    "control_change", channel=change.channel, control=change.cc, value=change.cc_value
                )
                events.append((number * bar_ticks, message))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=f"ReaTimbre coach ({plan.profile or 'synth'})", time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0))
    now = 0
    for tick, message in events:  # already in time order: steps are visited in order
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=bar_ticks))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_QUARTER)
    midi.tracks.append(track)
    return midi


def write_midi_file(
    path: str | os.PathLike[str],
    plan: CoachPlan,
    bpm: float = 120.0,
    numerator: int = 4,
    denominator: int = 4,
    bars_apart: float = 1.0,
) -> Path:
    """Write the plan's CC changes to a new .mid file (atomically; an existing file is never replaced)."""
    target = Path(path)
    if target.exists():
        raise ReaTimbreError(f"{target} already exists; choose a new file name")
    if not target.parent.is_dir():
        raise ReaTimbreError(f"folder {target.parent} does not exist")
    midi = plan_to_midi(plan, bpm, numerator, denominator, bars_apart)
    with atomic_path(target) as tmp:
        midi.save(filename=str(tmp))
    return target
