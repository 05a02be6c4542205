"""Audition coach steps live through REAPER's OSC control surface.

Each change of a step becomes one ``/track/<t>/fx/<f>/fxparam/<p>/value`` message (1-based numbers,
normalised value), sent by the server's :class:`extension.osc.OscBridge`. OSC cannot read the project, so the
FX is found by index or by name in ``fx_names`` (read beforehand from the project file or through reapy),
and the parameter index is trusted as given.

Automation wins: a parameter whose FX envelope the track reads is set by REAPER from the envelope at every
audio block during playback, so an OSC value for it would be overwritten at once. Parameters the coach wrote
as automation are therefore left out (``automated``); the REAPER audition actions play those by moving the
cursor to the step instead.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from extension.coach_steps import CoachStep
from extension.fx_names import resolve_fx_name
from extension.osc import OscBridge
from models.errors import ReaTimbreError


def step_targets(
    step: CoachStep, fx_names: Sequence[str], automated: Collection[tuple[int, int]] = ()
) -> list[tuple[int, int, float]]:
    """(0-based FX index, 0-based parameter index, normalised value) for each change of a step, except the
    (FX, parameter) pairs in ``automated``."""
    out = []
    for change in step.changes:
        if change.fx_index is not None:
            fx = change.fx_index
        else:
            found = resolve_fx_name(change.fx_name or "", list(fx_names), list(fx_names))
            if found is None:
                raise ReaTimbreError(f"no single FX on the track matches {change.fx_name!r}")
            fx = found
        if (fx, change.param_index) not in automated:
            out.append((fx, change.param_index, change.value))
    return out


def audition_step(
    bridge: OscBridge,
    track_index: int,
    step: CoachStep,
    fx_names: Sequence[str],
    automated: Collection[tuple[int, int]] = (),
) -> list[str]:
    """Send one step's values for the track at 0-based ``track_index`` (not for ``automated`` parameters: their
    envelopes win); return the addresses sent."""
    return [
        bridge.send_fx_param(track_index + 1, fx + 1, param + 1, value)
        for fx, param, value in step_targets(step, fx_names, automated)
    ]
