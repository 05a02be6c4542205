"""The coach on a target file, start to finish: the one function the CLI, the server's coach job and the demo call.

Read the target (any rate, channels, length), find its note and onset (unless given), load the coach's models,
start the synth from a preset or a patch, play the patch at the note the target sounds, and run the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.audio_io import read_audio
from models.coach.start import start_synth
from models.coach.store import load_coach
from models.coach.suggest import CoachResult, coach_json, run_coach
from models.coach.target import match_patch_note, prepare_target
from models.errors import ReaTimbreError
from models.synth.base import Synth


def coach_target_file(
    target: Path,
    preset: str | None = None,
    patch: Path | None = None,
    max_steps: int = 5,
    start_seconds: float | None = None,
    note: int | None = None,
    models_dir: Path | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> tuple[CoachResult, Synth, dict[str, Any]]:
    """Run the coach on a target file; returns (result, synth holding the suggested patch, coach JSON).

    ``note`` and ``start_seconds`` default to what is found in the target (the JSON's ``target_note`` says what).
    ``should_cancel`` is polled between stages and before every synth render; once true the coach stops with a
    "cancelled" :class:`ReaTimbreError`.
    """

    def check_cancel() -> None:
        if should_cancel is not None and should_cancel():
            raise ReaTimbreError("cancelled")

    audio, rate = read_audio(target)
    prepared = prepare_target(audio, rate, start_seconds, note)
    check_cancel()
    models = load_coach(models_dir)
    check_cancel()
    synth = start_synth(preset, patch)
    if should_cancel is not None:
        synth.render = _cancellable(synth.render, check_cancel)  # type: ignore[method-assign]
    prepared = match_patch_note(prepared, synth)
    result = run_coach(models, synth, prepared.clip, note=prepared.note, max_steps=max_steps)
    context: dict[str, Any] = {"target": str(target), "start_seconds": prepared.start_seconds}
    context["target_note"] = prepared.to_json()
    context["preset" if preset else "patch"] = preset or str(patch)
    return result, synth, coach_json(result, **context)


def _cancellable(render: Callable[..., Any], check_cancel: Callable[[], None]) -> Callable[..., Any]:
    """``render`` that first raises if the job was cancelled (the coach renders several times per step)."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        check_cancel()
        return render(*args, **kwargs)

    return checked
