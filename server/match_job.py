"""The ``match`` job kind: the closest patch on each synth for a target sound, written under the output directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.asp.time_budget import DEFAULT_SECONDS_PER_SYNTH
from models.errors import ReaTimbreError
from models.input_files import pinned_input
from server.job_kinds import JobEnv, JobKind, PreparedJob, check_input_file
from server.jobs import JobContext
from server.outputs import publish, staged_file, unique_output_path
from server.synth_thread import SYNTHS

MAX_PATH_CHARS = 4096
SynthName = Literal["vital", "amsynth", "kars", "dexed"]


class MatchRequest(BaseModel):
    """``POST /v1/match``: infer a patch per synth for the target, rank the synths, write the patches."""

    model_config = ConfigDict(allow_inf_nan=False)

    input: str = Field(min_length=1, max_length=MAX_PATH_CHARS, description="absolute path of the target sound")
    synths: list[SynthName] | None = Field(default=None, min_length=1, description="synths to match (null: all)")
    note: int | None = Field(default=None, ge=0, le=127, description="MIDI note to render (null: detect it)")
    start_seconds: float = Field(default=0.0, ge=0.0, description="where the target begins in the file (seconds)")
    variant: Literal["separate", "joint_encoder", "joint_decoder"] = "joint_encoder"
    candidates: int = Field(default=12, ge=1, le=64, description="guesses rendered per synth, the closest kept")
    refine: int | None = Field(
        default=None, ge=0, le=2000, description="renders refining each patch by ear (null: each synth's default)"
    )
    seconds_per_synth: float | None = Field(
        default=DEFAULT_SECONDS_PER_SYNTH,
        gt=0.0,
        le=60.0,
        description="answer each synth within this many seconds, cutting its further guesses and refinement short "
        "(default 1, as `reatimbre match`; null: no limit, every render spent)",
    )


def prepare_match(request: BaseModel, env: JobEnv) -> PreparedJob:
    """Check the target and the shipped weights now; the job infers, renders, ranks and writes the patches."""
    from models.asp.store import SHIPPED_MATCH_DIR, read_sidecar
    from models.synth.match_synths import PATCH_SUFFIXES

    assert isinstance(request, MatchRequest)
    input_path = check_input_file(request.input, env)
    known = read_sidecar(SHIPPED_MATCH_DIR, request.variant)["architecture"]["synths"]
    synths = list(dict.fromkeys(request.synths)) if request.synths else list(known)
    missing = [s for s in synths if s not in known]
    if missing:
        raise ReaTimbreError(f"the shipped match models know {', '.join(known)}, not {', '.join(missing)}")
    finals = {s: unique_output_path(env.output_dir, f"{input_path.stem}-{s}", PATCH_SUFFIXES[s]) for s in synths}
    for path in finals.values():
        env.reservations.reserve(path)

    def run(ctx: JobContext) -> dict[str, Any]:
        return _match(ctx, request, input_path, synths, finals, env.output_dir)

    def cleanup() -> None:
        for path in finals.values():
            env.reservations.release(path)

    return PreparedJob(run=run, cleanup=cleanup)


def _match(
    ctx: JobContext, request: MatchRequest, input_path: Path, synths: list[str], finals: dict[str, Path], out: Path
) -> dict[str, Any]:
    from models.asp.infer import match_target, prepare_target, summary
    from models.asp.store import load_model
    from models.audio_io import read_audio

    ctx.progress(0.0, "finding the note")
    with pinned_input(input_path) as source:
        audio, rate = read_audio(source)
    model, _sidecar = load_model(None, request.variant)
    target = prepare_target(audio, rate, request.note, request.start_seconds)
    if ctx.should_cancel():
        raise ReaTimbreError("cancelled")
    ctx.progress(0.1, f"inferring and rendering {len(synths)} synth(s)")
    # One instance of each synth per server process, made, used and destroyed in the synth thread only (a hosted
    # plug-in loaded in two threads, or destroyed outside its thread at exit, hangs: server/synth_thread.py).
    results = SYNTHS.call(
        lambda state: match_target(
            model,
            target,
            synths,
            state.setdefault("match", {}),
            name=input_path.stem,
            candidates=request.candidates,
            refine=request.refine,
            seconds_per_synth=request.seconds_per_synth,
        )
    )
    ctx.stage("writing")
    for result in results:
        with staged_file(out, f"{ctx.job_id}-{result.synth}{result.patch_suffix}") as staged:
            staged.write(result.patch_bytes)
            publish(out, staged, finals[result.synth])
    body = summary(results, target)
    for entry in body["ranking"]:
        entry["patch"] = str(finals[entry["synth"]])
    return body


MATCH_KIND = JobKind(
    name="match",
    request_model=MatchRequest,
    prepare=prepare_match,
    summary="Match a target sound with a patch on each synth",
)
