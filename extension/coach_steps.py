"""The synth coach's suggestions in the shape REAPER write-back needs (standard library only).

The coach (``POST /v1/coach``) returns JSON of this shape; :func:`CoachPlan.from_coach_json` reads it::

    {
      "profile": "vital",                      # synth profile the parameter names come from (optional)
      "steps": [                               # in the order the coach suggests applying them
        {
          "effect": "distortion",              # what the step changes (optional, shown to the user)
          "changes": [
            {
              "fx_name": "Vital",              # the plug-in on the track (matched by name) ...
              "fx_index": null,                # ... or its 0-based index in the track's FX chain
              "param_index": 97,               # 0-based plug-in parameter index (as REAPER's TrackFX_* use)
              "param_name": "Distortion Drive",
              "value": 0.62,                   # normalised 0..1 (TrackFX_SetParamNormalized)
              "display": "+4.2 dB",            # human-readable value
              "cc": 74,                        # optional: MIDI CC the user MIDI-learned for this parameter
              "channel": 0                     # optional: 0-based MIDI channel of that CC (default 0)
            }
          ],
          "metrics": {"mse": 0.0123}           # optional numbers the coach reports for the step
        }
      ]
    }

A step may use the key ``"params"`` instead of ``"changes"``. Values outside 0..1, a CC outside 0..127 or a
change that names neither an FX name nor an FX index is rejected with one clear line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from models.errors import ReaTimbreError


@dataclass(frozen=True)
class ParamChange:
    """Set one plug-in parameter to a normalised value (and optionally its MIDI-learned CC)."""

    param_index: int
    param_name: str
    value: float
    """Normalised 0..1."""
    display: str = ""
    fx_name: str | None = None
    fx_index: int | None = None
    cc: int | None = None
    channel: int = 0

    @property
    def cc_value(self) -> int:
        """The value as a 7-bit MIDI CC value (0..127)."""
        return max(0, min(127, round(self.value * 127)))


@dataclass(frozen=True)
class CoachStep:
    """One suggested programming step: several parameter changes applied together."""

    changes: tuple[ParamChange, ...]
    effect: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    def label(self, number: int) -> str:
        """A one-line description, e.g. ``step 2: distortion (Distortion Drive +4.2 dB)``."""
        parts = ", ".join(f"{c.param_name} {c.display or format(c.value, '.2f')}" for c in self.changes)
        return f"step {number}: {self.effect or 'parameters'} ({parts})"


@dataclass(frozen=True)
class CoachPlan:
    """The ordered steps of one coach answer."""

    steps: tuple[CoachStep, ...]
    profile: str = ""

    @classmethod
    def from_coach_json(cls, data: str | bytes | dict[str, Any]) -> CoachPlan:
        """Read the coach JSON (text or already-decoded) described in the module docstring."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ReaTimbreError(f"coach answer is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise ReaTimbreError("coach answer has no 'steps' list")
        steps = tuple(_read_step(n, raw) for n, raw in enumerate(data["steps"], 1))
        return cls(steps, str(data.get("profile") or ""))

    def to_json(self) -> dict[str, Any]:
        """The plan in the documented JSON shape (round-trips through :meth:`from_coach_json`)."""
        return {
            "profile": self.profile,
            "steps": [
                {
                    "effect": s.effect,
                    "metrics": dict(s.metrics),
                    "changes": [
                        {
                            "fx_name": c.fx_name,
                            "fx_index": c.fx_index,
                            "param_index": c.param_index,
                            "param_name": c.param_name,
                            "value": c.value,
                            "display": c.display,
                            "cc": c.cc,
                            "channel": c.channel,
                        }
                        for c in s.changes
                    ],
                }
                for s in self.steps
            ],
        }


def _int_or_none(raw: Any, what: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or int(raw) != raw:
        raise ReaTimbreError(f"coach answer: {what} must be an integer, got {raw!r}")
    return int(raw)


def _read_change(where: str, raw: Any) -> ParamChange:
    if not isinstance(raw, dict):
        raise ReaTimbreError(f"coach answer: {where} is not an object")
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ReaTimbreError(f"coach answer: {where} value must be a number in 0..1, got {value!r}")
    param_index = _int_or_none(raw.get("param_index"), f"{where} param_index")
    if param_index is None or param_index < 0:
        raise ReaTimbreError(f"coach answer: {where} needs a param_index >= 0")
    fx_index = _int_or_none(raw.get("fx_index"), f"{where} fx_index")
    fx_name = raw.get("fx_name") or None
    if fx_index is None and not isinstance(fx_name, str):
        raise ReaTimbreError(f"coach answer: {where} names neither fx_name nor fx_index")
    cc = _int_or_none(raw.get("cc"), f"{where} cc")
    if cc is not None and not 0 <= cc <= 127:
        raise ReaTimbreError(f"coach answer: {where} cc must be 0..127, got {cc}")
    channel = _int_or_none(raw.get("channel", 0), f"{where} channel") or 0
    if not 0 <= channel <= 15:
        raise ReaTimbreError(f"coach answer: {where} channel must be 0..15, got {channel}")
    return ParamChange(
        param_index=param_index,
        param_name=str(raw.get("param_name") or f"parameter {param_index}"),
        value=float(value),
        display=str(raw.get("display") or ""),
        fx_name=fx_name,
        fx_index=fx_index,
        cc=cc,
        channel=channel,
    )


def _read_step(number: int, raw: Any) -> CoachStep:
    if not isinstance(raw, dict):
        raise ReaTimbreError(f"coach answer: step {number} is not an object")
    changes = raw.get("changes", raw.get("params"))
    if not isinstance(changes, list) or not changes:
        raise ReaTimbreError(f"coach answer: step {number} has no parameter changes")
    metrics_raw = raw.get("metrics") or {}
    metrics = {
        str(k): float(v)
        for k, v in (metrics_raw.items() if isinstance(metrics_raw, dict) else [])
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return CoachStep(
        tuple(_read_change(f"step {number} change {i}", c) for i, c in enumerate(changes, 1)),
        str(raw.get("effect") or ""),
        metrics,
    )
