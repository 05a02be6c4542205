"""The ``steer`` job kind: train a new user effect from one dry/wet pair of recordings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.input_files import pinned_input
from server.job_kinds import JobEnv, JobKind, PreparedJob, check_input_file, check_name
from server.jobs import JobContext

MAX_PATH_CHARS = 4096
TRAINING_SHARE_OF_PROGRESS = 0.95  # the rest is the held-out evaluation and saving


class SteerRequest(BaseModel):
    """``POST /v1/steer``: steer an effect called ``name`` from ``dry`` → ``wet``."""

    model_config = ConfigDict(allow_inf_nan=False)

    dry: str = Field(min_length=1, max_length=MAX_PATH_CHARS, description="absolute path of the dry recording")
    wet: str = Field(min_length=1, max_length=MAX_PATH_CHARS, description="absolute path of the wet recording")
    name: str = Field(min_length=1, max_length=64, description="name of the new effect (letters, digits, - _)")
    memory: Literal["short", "long", "reverb", "auto"] = "auto"
    minutes: float = Field(default=3.0, ge=0.05, le=240.0, description="training time budget")
    keep_anyway: bool = Field(
        default=False,
        description="save the model even when it is not clearly better than the dry input (the result's "
        "worse_than_dry and message say so either way)",
    )


def prepare_steer(request: BaseModel, env: JobEnv) -> PreparedJob:
    """Check both recordings and the new name now; the job trains, evaluates and saves the model."""
    from models.steer import check_new_model_name

    assert isinstance(request, SteerRequest)
    check_name(request.name)
    dry = check_input_file(request.dry, env, "dry")
    wet = check_input_file(request.wet, env, "wet")
    sidecar = check_new_model_name(request.name) / f"{request.name}.json"
    env.reservations.reserve(sidecar)  # two jobs must not steer the same name at once

    def run(ctx: JobContext) -> dict[str, Any]:
        from models.device import resolve_device
        from models.fit import FitProgress
        from models.steer import steer_model

        def progress(update: FitProgress) -> None:
            ctx.progress(
                TRAINING_SHARE_OF_PROGRESS * update.fraction,
                f"training: step {update.step}, about {update.remaining_seconds:.0f} s left",
            )

        ctx.progress(0.0, "checking the pair")
        with pinned_input(dry, "dry") as dry_file, pinned_input(wet, "wet") as wet_file:
            return steer_model(
                dry_file,
                wet_file,
                request.name,
                memory=request.memory,
                minutes=request.minutes,
                progress=progress,
                should_cancel=ctx.should_cancel,
                report=ctx.stage,
                device=resolve_device(env.device),
                keep_anyway=request.keep_anyway,
            )

    return PreparedJob(run=run, cleanup=lambda: env.reservations.release(sidecar))


STEER_KIND = JobKind(
    name="steer",
    request_model=SteerRequest,
    prepare=prepare_steer,
    summary="Steer a new effect from a dry and a wet recording",
)
