"""Opening a request's input files so that nothing but a regular file is ever read, and nothing blocks.

A path is opened with ``O_NONBLOCK`` (a FIFO opens at once instead of waiting for a writer) and checked with
``fstat``: a FIFO, device, socket or folder, directly or through a symlink, is refused with one line. While a job
runs, :func:`pinned_input` keeps the checked file open and hands the job a path to that very open file
(``/proc/self/fd/<n>`` on Linux), so swapping the original path for a FIFO after the check changes nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.errors import ReaTimbreError
from models.oserrors import describe_os_error, shown

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_FD_DIR = Path("/proc/self/fd")  # Linux: opening an entry re-opens the same file, whatever its path now names


def open_regular_file(path: Path, field_name: str = "input") -> tuple[int, int]:
    """Open ``path`` for reading without blocking; returns ``(fd, size in bytes)`` of a regular file, else raises
    a one-line :class:`ReaTimbreError` that starts with ``field_name`` and the path (the caller closes ``fd``)."""
    label = f"{field_name} {shown(path)}" if field_name else shown(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise ReaTimbreError(f"{label}: {describe_os_error(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReaTimbreError(f"{label}: is {_kind(info.st_mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except OSError as exc:
        os.close(fd)
        raise ReaTimbreError(f"{label}: {describe_os_error(exc)}") from None
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def check_regular_file(path: Path, field_name: str = "input") -> int:
    """The size in bytes of ``path`` if it is a readable regular file (see :func:`open_regular_file`)."""
    fd, size_bytes = open_regular_file(path, field_name)
    os.close(fd)
    return size_bytes


@contextmanager
def pinned_input(path: Path, field_name: str = "input") -> Iterator[Path]:
    """Check ``path`` again and yield a path that reads the checked file however ``path`` changes meanwhile.

    Errors raised inside the block name ``path``, not the pinned path.
    """
    fd, _ = open_regular_file(path, field_name)
    pinned = _FD_DIR / str(fd) if _FD_DIR.is_dir() else path
    try:
        yield pinned
    except ReaTimbreError as exc:
        if pinned != path:
            exc.args = tuple(str(arg).replace(str(pinned), str(path)) for arg in exc.args)
        raise
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
