"""The ``coach`` job kind: ``POST /v1/coach`` runs the synth coach on a target file; the job's result is the
coach JSON (:func:`models.coach.suggest.coach_json`) that the REAPER bridge's ``CoachPlan.from_coach_json`` reads.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.errors import ReaTimbreError
from models.input_files import pinned_input
from server.job_kinds import JobEnv, JobKind, PreparedJob, check_input_file
from server.jobs import JobContext

MAX_PATH_CHARS = 4096
#: What "default" (the REAPER action's preset field) starts from: Vital's init sound is a plain saw too.
DEFAULT_PRESET = "saw"


class CoachRequest(BaseModel):
    """``POST /v1/coach``: suggest effect steps from ``preset`` or ``patch`` towards ``target``."""

    model_config = ConfigDict(allow_inf_nan=False)

    target: str = Field(min_length=1, max_length=MAX_PATH_CHARS, description="absolute path of the target audio")
    preset: str | None = Field(default=None, max_length=200, description="shipped preset name, or 'default'")
    patch: str | None = Field(default=None, max_length=MAX_PATH_CHARS, description="absolute path of a .vital patch")
    start_seconds: float | None = Field(
        default=None, ge=0.0, le=24 * 3600.0, description="where the target's note starts (default: found in it)"
    )
    max_steps: int = Field(default=5, ge=1, le=5)
    note: int | None = Field(
        default=None, ge=0, le=127, description="MIDI note the patch plays (default: the note heard in the target)"
    )


def prepare_coach(request: BaseModel, env: JobEnv) -> PreparedJob:
    """Validate paths and the preset now; the job runs the coach and returns its JSON."""
    from models.synth import presets as preset_data

    assert isinstance(request, CoachRequest)
    target = check_input_file(request.target, env, "target")
    patch = check_input_file(request.patch, env, "patch") if request.patch else None
    preset = request.preset
    if patch is not None and preset not in (None, "", "default"):
        raise ReaTimbreError("give either preset or patch, not both")
    if patch is None:
        preset = DEFAULT_PRESET if preset in (None, "", "default") else preset
        preset_data.preset_spec(preset)
    else:
        preset = None

    def run(ctx: JobContext) -> dict[str, Any]:
        return _coach(ctx, request, target, preset, patch)

    return PreparedJob(run=run)


def _coach(
    ctx: JobContext, request: CoachRequest, target: Path, preset: str | None, patch: Path | None
) -> dict[str, Any]:
    from models.coach.pipeline import coach_target_file

    ctx.progress(0.0, "coaching")
    with ExitStack() as files:
        target_file = files.enter_context(pinned_input(target, "target"))
        patch_file = files.enter_context(pinned_input(patch, "patch")) if patch is not None else None
        _, _, body = coach_target_file(
            target_file,
            preset,
            patch_file,
            request.max_steps,
            request.start_seconds,
            request.note,
            should_cancel=ctx.should_cancel,
        )
    body = dict(body)
    if "target" in body:
        body["target"] = str(target)
    if patch is not None and "patch" in body:
        body["patch"] = str(patch)
    return body


COACH_KIND = JobKind(
    name="coach",
    request_model=CoachRequest,
    prepare=prepare_coach,
    summary="Suggest synth effect steps towards a target sound (synth coach)",
)
