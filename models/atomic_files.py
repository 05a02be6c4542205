"""Write files all at once or not at all: a temporary file beside the target, renamed into place when complete.

The temporary file is synced to the disk before the rename, and the folder after it, so a crash or power loss
leaves either the old file or the complete new one.

Standard library only, so the installer can use it before anything else is installed.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _default_mode() -> int:
    """The permissions an ordinary ``open(path, "w")`` would give (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_DEFAULT_MODE = _default_mode()
#: Every temporary file :func:`atomic_path` makes is named ``.<stem>.<random>.partial<suffix>``.
PARTIAL_MARK = ".partial"


def leftover_partials(folder: str | os.PathLike, stem_prefix: str = "") -> list[Path]:
    """Temporary files in ``folder`` that an atomic write of a ``<stem_prefix>*`` file left behind when its process
    was killed before it could clean up (a write that fails normally leaves none)."""
    return sorted(Path(folder).glob(f".{stem_prefix}*{PARTIAL_MARK}*"))


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; when the block succeeds it becomes ``path`` (with ``mode``, by
    default the usual permissions), and when it fails it is deleted, leaving any existing ``path`` untouched."""
    path = Path(path)
    if path.is_dir():  # else the error would name the temporary file
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{PARTIAL_MARK}{path.suffix}", dir=path.parent)
    except OSError as exc:  # name the file asked for, not the temporary one (a name too long, a missing folder)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, _DEFAULT_MODE if mode is None else mode)
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush ``path``'s contents to the disk, so a rename after it never publishes an empty or partial file."""
    # POSIX syncs through any descriptor; Windows' _commit needs one open for writing.
    fd = os.open(path, (os.O_RDWR if os.name == "nt" else os.O_RDONLY) | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(path: str | os.PathLike) -> None:
    """Make a rename in folder ``path`` durable, where the platform can sync a folder (not Windows)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None, make_parents: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (creating missing folders if ``make_parents``); returns the path."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: str | os.PathLike, text: str, mode: int | None = None, newline: str | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; ``newline`` as for :func:`open`."""
    with atomic_path(path, mode) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as handle:
        handle.write(text)
