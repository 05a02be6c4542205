"""The registry of job kinds the server offers, one HTTP route each.

A kind is a request model plus a ``prepare(request, env)`` function that validates the request at once (a
:class:`ReaTimbreError` becomes a 400 answer; :class:`InputTooLarge` a 413) and returns the work to queue.
Adding a kind is one such function and one :class:`JobKind` entry in :func:`registered_kinds`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from models.errors import ReaTimbreError
from models.input_files import check_regular_file
from models.oserrors import shown
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
    """Validate that ``path_text`` is an absolute path to a readable regular file within the size limit.

    A FIFO, device, socket or folder (also behind a symlink) is refused without blocking (see
    :mod:`models.input_files`); jobs open the file again through :func:`models.input_files.pinned_input`.
    """
    if "\x00" in path_text:
        raise ReaTimbreError(f"{field_name} must be an absolute file path without NUL characters")
    try:
        path = Path(path_text).expanduser()
    except RuntimeError:  # "~someone" with no such user
        raise ReaTimbreError(f"{field_name}: cannot expand {shown(path_text)!r}; give an absolute path") from None
    if not path.is_absolute():
        raise ReaTimbreError(f"{field_name} must be an absolute file path, got {shown(path_text)!r}")
    if not os.path.lexists(path):
        raise ReaTimbreError(f"{field_name} file not found: {shown(path)}")
    size_bytes = check_regular_file(path, field_name)
    if size_bytes > env.max_input_bytes:
        raise InputTooLarge(
            f"{field_name} file {shown(path)} is {size_bytes} bytes; the limit is {env.max_input_bytes} bytes"
        )
    return path


def check_name(name: str, field_name: str = "name") -> str:
    """``name`` if it is a valid model or effect name, matched in full (a trailing newline is refused)."""
    from models.library import check_model_name

    try:
        return check_model_name(name)
    except ReaTimbreError as exc:
        raise ReaTimbreError(f"{field_name}: {exc}") from None


def registered_kinds() -> list[JobKind]:
    """Every job kind whose implementation is present in this installation."""
    from server.coach_job import COACH_KIND
    from server.explore_job import EXPLORE_KIND
    from server.match_job import MATCH_KIND
    from server.render_job import RENDER_KIND
    from server.steer_job import STEER_KIND

    return [RENDER_KIND, STEER_KIND, EXPLORE_KIND, COACH_KIND, MATCH_KIND]
