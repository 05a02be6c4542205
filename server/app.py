"""The HTTP JSON API: ``create_app(config)`` builds the FastAPI application that ``reatimbre serve`` runs.

Routes (all under ``/v1``, all behind :class:`server.guard.RequestGuard`): ``GET /health``, ``GET /models``,
``POST /<kind>`` for every registered job kind (202 with a job id), ``GET``/``DELETE /jobs/{job_id}``, and the
OSC audition routes when an OSC port is configured. Errors are 4xx with ``{"detail": "<one line>"}``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the job routes' request models from real
# annotations built at run time (one route per registered kind).

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import ReaTimbreError
from models.oserrors import describe_os_error
from server.guard import RequestGuard
from server.job_kinds import InputTooLarge, JobEnv, JobKind, registered_kinds
from server.jobs import JobManager, QueueFull, UnknownJob
from server.outputs import OutputReservations, prepare_output_dir
from server.serverconfig import ServerConfig, remove_server_info, write_server_info

log = logging.getLogger("reatimbre.server")

try:
    VERSION = version("reatimbre")
except PackageNotFoundError:  # running from a checkout that was never installed
    VERSION = "0.1.0"


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class JobAccepted(BaseModel):
    job_id: str


class JobStatus(BaseModel):
    job_id: str
    kind: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0.0, le=1.0)
    stage: str
    result: dict[str, Any] | None
    error: str | None


class ModelList(BaseModel):
    models: list[dict[str, Any]]


class ErrorDetail(BaseModel):
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorDetail} for code in (400, 401, 403, 404, 413, 422, 429)
}


def create_app(config: ServerConfig, kinds: Sequence[JobKind] | None = None) -> FastAPI:
    """Build the API for ``config``; ``kinds`` overrides the registered job kinds (tests use this)."""
    output_dir = prepare_output_dir(config.output_dir)
    manager = JobManager(config.workers, config.queue_size, config.max_finished_jobs)
    env = JobEnv(
        output_dir=output_dir,
        max_input_bytes=config.max_input_bytes,
        reservations=OutputReservations(),
        device=config.device,
    )
    osc_bridge = _make_osc_bridge(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if osc_bridge is not None:
            osc_bridge.start()
        if config.write_server_info:
            write_server_info(config.host, config.port)
        try:
            yield
        finally:
            if config.write_server_info:
                remove_server_info()
            if osc_bridge is not None:
                osc_bridge.stop()
            manager.shutdown()

    app = FastAPI(title="ReaTimbre", version=VERSION, lifespan=lifespan, responses=ERROR_RESPONSES)
    app.state.manager = manager
    app.state.output_dir = output_dir
    app.state.osc = osc_bridge
    _install_error_handlers(app)

    @app.get("/v1/health", response_model=Health)
    def health() -> dict[str, str]:
        return {"status": "ok", "version": VERSION}

    @app.get("/v1/models", response_model=ModelList)
    def list_available_models() -> dict[str, Any]:
        from models.library import list_models

        return {"models": [info.to_dict() for info in list_models()]}

    for kind in registered_kinds() if kinds is None else kinds:
        _add_job_route(app, kind, manager, env)

    @app.get("/v1/jobs/{job_id}", response_model=JobStatus)
    def job_status(job_id: str) -> dict[str, Any]:
        return manager.status(job_id)

    @app.delete("/v1/jobs/{job_id}", response_model=JobStatus)
    def cancel_job(job_id: str) -> dict[str, Any]:
        return manager.cancel(job_id)

    if osc_bridge is not None:
        from server.osc_routes import add_osc_routes

        add_osc_routes(app, osc_bridge)

    app.add_middleware(RequestGuard, token=config.token, max_body_bytes=config.max_body_bytes)
    return app


def _add_job_route(app: FastAPI, kind: JobKind, manager: JobManager, env: JobEnv) -> None:
    request_model = kind.request_model

    def submit(body: request_model) -> JSONResponse:  # type: ignore[valid-type]
        prepared = kind.prepare(body, env)
        job = manager.submit(kind.name, prepared.run, prepared.cleanup)
        return JSONResponse({"job_id": job.job_id}, status_code=202)

    app.add_api_route(
        f"/v1/{kind.name}",
        submit,
        methods=["POST"],
        status_code=202,
        response_model=JobAccepted,
        summary=kind.summary,
        name=f"submit_{kind.name}",
    )


def _make_osc_bridge(config: ServerConfig) -> Any:
    if config.osc_reaper_port is None:
        return None
    from extension.osc import OscBridge

    return OscBridge(config.osc_reaper_host, config.osc_reaper_port, listen_port=config.osc_listen_port)


def _install_error_handlers(app: FastAPI) -> None:
    def detail(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": " ".join(text.split())}, status_code=status, headers=headers)

    @app.exception_handler(InputTooLarge)
    async def too_large(_: Request, exc: InputTooLarge) -> JSONResponse:
        return detail(413, str(exc))

    @app.exception_handler(ReaTimbreError)
    async def bad_input(_: Request, exc: ReaTimbreError) -> JSONResponse:
        return detail(400, str(exc))

    @app.exception_handler(QueueFull)
    async def queue_full(_: Request, exc: QueueFull) -> JSONResponse:
        return detail(429, str(exc), headers={"Retry-After": "1"})

    @app.exception_handler(UnknownJob)
    async def unknown_job(_: Request, exc: UnknownJob) -> JSONResponse:
        return detail(404, f"no job {str(exc.args[0])[:80]!r} (unknown, or finished long ago and forgotten)")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return detail(422, _describe_validation_error(exc))

    @app.exception_handler(OSError)
    async def refused_by_the_os(_: Request, exc: OSError) -> JSONResponse:
        # A path in the request that the OS refused (too long, no permission, a link loop...): the client's
        # request, not a server bug, so a 4xx line without the (possibly huge) path or a traceback.
        log.info("request refused by the OS: %s", describe_os_error(exc))
        return detail(400, f"refused by the operating system: {describe_os_error(exc)}")

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        return detail(400, "the request is nested too deeply")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return detail(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return detail(500, f"internal error: {type(exc).__name__}")


def _describe_validation_error(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{location}: {first.get('msg', 'invalid value')}{more}"
