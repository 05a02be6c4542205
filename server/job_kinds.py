"""The registry of job kinds the server offers, one HTTP route each.

A kind is a request model plus a ``prepare(request, env)`` function that validates the request at once (a
:class:`ReaTimbreError` becomes a 400 answer; :class:`InputTooLarge` a 413) and returns the work to queue.
Adding a kind is one such function and one :class:`JobKind` entry in :func:`registered_kinds`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from models.errors import ReaTimbreError
from server.jobs import JobFunction
from server.outputs import OutputReservations


class InputTooLarge(ReaTimbreError):
    """An input file exceeds the server's size limit (answered with 413)."""


@dataclass(frozen=True)
class JobEnv:
    """What a kind's ``prepare`` may use: where outputs go, the server's limits and its torch device."""

    output_dir: Path
    max_input_bytes: int
    reservations: OutputReservations
    device: str = "cpu"  # ``reatimbre serve --device``, resolved: cpu, cuda or cuda:N


@dataclass(frozen=True)
class PreparedJob:
    """Validated work ready to queue, and what to undo when it ends in any state."""

    run: JobFunction
    cleanup: Callable[[], None] | None = None


@dataclass(frozen=True)
class JobKind:
    """One kind of job: its name (also its route, ``POST /v1/<name>``), request model and prepare function."""

    name: str
    request_model: type[BaseModel]
    prepare: Callable[[BaseModel, JobEnv], PreparedJob]
    summary: str


def check_input_file(path_text: str, env: JobEnv, field_name: str = "input") -> Path:
    """Validate that ``path_text`` is an absolute path to an existing regular file within the size limit."""
    path = Path(path_text).expanduser()
    if "\x00" in path_text or not path.is_absolute():
        raise ReaTimbreError(f"{field_name} must be an absolute file path, got {path_text!r}")
    if not path.is_file():
        raise ReaTimbreError(f"{field_name} file not found: {path}")
    size_bytes = path.stat().st_size
    if size_bytes > env.max_input_bytes:
        raise InputTooLarge(f"{field_name} file {path} is {size_bytes} bytes; the limit is {env.max_input_bytes} bytes")
    return path


def registered_kinds() -> list[JobKind]:
    """Every job kind whose implementation is present in this installation."""
    from server.coach_job import COACH_KIND
    from server.explore_job import EXPLORE_KIND
    from server.render_job import RENDER_KIND
    from server.steer_job import STEER_KIND

    return [RENDER_KIND, STEER_KIND, EXPLORE_KIND, COACH_KIND]
