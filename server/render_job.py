"""The ``render`` job kind: one audio file through one neural effect, written under the output directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.errors import ReaTimbreError
from models.input_files import pinned_input
from server.job_kinds import JobEnv, JobKind, PreparedJob, check_input_file, check_name
from server.jobs import JobContext
from server.outputs import publish, resolve_output, staged_file

MAX_PATH_CHARS = 4096
MAX_TAIL_SECONDS = 60.0


class RenderRequest(BaseModel):
    """``POST /v1/render``: render ``input`` through ``effect`` with ``knobs``."""

    model_config = ConfigDict(allow_inf_nan=False)

    input: str = Field(min_length=1, max_length=MAX_PATH_CHARS, description="absolute path of the audio file")
    output: str | None = Field(
        default=None,
        max_length=MAX_PATH_CHARS,
        description="file name or path inside the output directory; null picks a unique name",
    )
    effect: str = Field(min_length=1, max_length=200, description="model name from GET /v1/models")
    knobs: dict[str, float] = Field(default_factory=dict, max_length=64)
    mix: float = Field(default=1.0, ge=0.0, le=1.0, description="wet/dry mix, 0..1")
    tail_seconds: float | None = Field(default=None, ge=0.0, le=MAX_TAIL_SECONDS)


def check_effect_and_knobs(effect: str, knobs: dict[str, float]) -> None:
    """Refuse an unknown effect, an unknown knob name or a knob value outside the model's range."""
    from models.knobs import resolve_knobs
    from models.library import find_model

    resolve_knobs(find_model(effect).knobs, knobs)


def prepare_render(request: BaseModel, env: JobEnv) -> PreparedJob:
    """Validate a render request now; the returned job renders into staging and then publishes the file."""
    assert isinstance(request, RenderRequest)
    input_path = check_input_file(request.input, env)
    check_name(request.effect, "effect")
    check_effect_and_knobs(request.effect, request.knobs)
    final_path = resolve_output(env.output_dir, request.output, f"{input_path.stem}-{request.effect}")
    env.reservations.reserve(final_path)

    def run(ctx: JobContext) -> dict[str, Any]:
        return _render(ctx, request, input_path, final_path, env.output_dir, env.device)

    return PreparedJob(run=run, cleanup=lambda: env.reservations.release(final_path))


def _render(
    ctx: JobContext, request: RenderRequest, input_path: Path, final_path: Path, output_dir: Path, device: str
) -> dict[str, Any]:
    from models.render import render_to_fd

    ctx.progress(0.0, f"rendering on {device}")
    with pinned_input(input_path) as source, staged_file(output_dir, f"{ctx.job_id}{final_path.suffix}") as staged:
        result = render_to_fd(
            source,
            staged.fd,
            final_path,
            request.effect,
            knobs=dict(request.knobs),
            mix=request.mix,
            tail_seconds=request.tail_seconds,
            progress=lambda fraction: ctx.progress(0.99 * fraction),
            should_cancel=ctx.should_cancel,
            device=device,
        )
        if ctx.should_cancel():
            raise ReaTimbreError("cancelled")
        ctx.stage("writing")
        publish(output_dir, staged, final_path)
    return {
        "output": str(final_path),
        "effect": result.effect,
        "knobs": dict(result.knobs),
        "duration_seconds": float(result.duration_seconds),
        "realtime_factor": float(result.realtime_factor),
    }


RENDER_KIND = JobKind(
    name="render",
    request_model=RenderRequest,
    prepare=prepare_render,
    summary="Render an audio file through a neural effect",
)
