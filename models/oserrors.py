"""One line for whatever the operating system refused, the same on every platform."""

from __future__ import annotations

import errno
import os
from pathlib import Path

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


#: A path in an error line is cut to this many characters (a name can be thousands long).
MAX_SHOWN_PATH_CHARS = 200


def shown(path: Path | str) -> str:
    """``path`` for an error line, shortened if it is very long."""
    text = str(path)
    return text if len(text) <= MAX_SHOWN_PATH_CHARS else text[: MAX_SHOWN_PATH_CHARS - 3] + "..."


def os_error_line(exc: OSError) -> str:
    """``exc`` as one line that names its file (:func:`shown`, on one line), e.g. ``out/x.wav: a part of the path is
    not a folder``; just the words when the error names no file."""
    words = describe_os_error(exc)
    if exc.filename is None:
        return words
    name = os.fsdecode(exc.filename) if isinstance(exc.filename, bytes | str) else str(exc.filename)
    return f"{shown(' '.join(name.split()) or repr(name))}: {words}"
