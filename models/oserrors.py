"""One line for whatever the operating system refused, the same on every platform."""

from __future__ import annotations

import errno
import os

#: Plain words for the errors a request can provoke (the OS's own text varies by platform and locale).
_WORDS = {
    errno.ENOENT: "no such file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "a symbolic link is in the way (or too many levels of links)",
    errno.EEXIST: "already exists",
    errno.ENOSPC: "no space left on the disk",
    errno.EROFS: "read-only file system",
    errno.EXDEV: "crosses file systems",
    errno.EINVAL: "invalid argument",
    errno.ENXIO: "no such device",
    errno.EMFILE: "too many open files",
}


def describe_os_error(exc: OSError) -> str:
    """``exc`` as a short single line, e.g. ``file name too long``; never the raw path (it may be huge)."""
    words = _WORDS.get(exc.errno) if exc.errno is not None else None
    if words is None:
        words = (exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)).strip()
    return " ".join(words.split())
