"""The ``explore`` job kind: map an effect's first two knobs to loudness (and T60) as a PNG and a JSON file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.errors import ReaTimbreError
from models.input_files import pinned_input
from server.job_kinds import JobEnv, JobKind, PreparedJob, check_input_file, check_name
from server.jobs import JobContext
from server.outputs import publish, staged_file, unique_output_path

MAX_PATH_CHARS = 4096


class ExploreRequest(BaseModel):
    """``POST /v1/explore``: render ``input`` through model ``name`` on a ``grid`` x ``grid`` knob grid."""

    model_config = ConfigDict(allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=64, description="model name from GET /v1/models")
    input: str = Field(min_length=1, max_length=MAX_PATH_CHARS, description="absolute path of the audio file")
    grid: int = Field(default=9, description="points per knob axis (the model library says how many are allowed)")
    compare_real: bool = Field(default=False, description="also map the real effect the model emulates, and compare")


def prepare_explore(request: BaseModel, env: JobEnv) -> PreparedJob:
    """Check the model and the input now; the job writes ``<model>-explore-<id>.png`` and ``.json``."""
    from models.explore import MAX_GRID, MIN_GRID  # imported here: it loads torch, which the server defers
    from models.library import find_model

    assert isinstance(request, ExploreRequest)
    if not MIN_GRID <= request.grid <= MAX_GRID:
        raise ReaTimbreError(f"grid must be a whole number from {MIN_GRID} to {MAX_GRID}, got {request.grid}")
    check_name(request.name)
    source = check_input_file(request.input, env)
    info = find_model(request.name)
    if request.compare_real:
        from models.effects import emulated_effect

        emulated_effect(request.name, info.sidecar)
    stem = unique_output_path(env.output_dir, f"{request.name}-explore", "").name
    finals = {suffix: env.output_dir / f"{stem}{suffix}" for suffix in (".png", ".json")}

    def run(ctx: JobContext) -> dict[str, Any]:
        from models.explore import explore, plot, write_json

        ctx.progress(0.0, f"rendering a {request.grid}x{request.grid} knob grid")
        with pinned_input(source) as pinned:
            result = explore(
                request.name,
                pinned,
                request.grid,
                compare_real=request.compare_real,
                progress=lambda fraction: ctx.progress(0.98 * fraction),
                should_cancel=ctx.should_cancel,
            )
        ctx.stage("writing the map")
        # The two small files are drawn in a private temporary folder, then copied into the output directory
        # through its descriptors (server.outputs), so nothing is written through a link planted there.
        with tempfile.TemporaryDirectory(prefix="reatimbre-explore-") as private:
            drafts = {".png": Path(private) / "map.png", ".json": Path(private) / "map.json"}
            plot(result, drafts[".png"])
            write_json(result, drafts[".json"])
            for suffix, final in finals.items():
                if ctx.should_cancel():
                    raise ReaTimbreError("cancelled")
                with staged_file(env.output_dir, f"{ctx.job_id}-map{suffix}") as staged:
                    staged.write(drafts[suffix].read_bytes())
                    publish(env.output_dir, staged, final)
        return {"png": str(finals[".png"]), "json": str(finals[".json"]), **result}

    return PreparedJob(run=run)


EXPLORE_KIND = JobKind(
    name="explore",
    request_model=ExploreRequest,
    prepare=prepare_explore,
    summary="Map an effect's first two knobs to loudness (and T60 for reverbs)",
)
