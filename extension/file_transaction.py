"""Change several files all at once or not at all, keeping symlinks and permissions (standard library only).

:func:`commit` first checks every target and writes every new content to a temporary file beside the file it
will replace (following symlinks, so a link keeps pointing where it pointed and the file it names is what
changes), then renames them into place one after the other. If anything fails, the files already replaced
get their old bytes back, new files and folders are removed, and the error is raised: every file is as it was.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from models.atomic_files import _DEFAULT_MODE


class FileTransactionError(Exception):
    """A target cannot be changed (read-only, not a regular file, folder not writable); nothing was changed."""


@dataclass
class _Staged:
    target: Path
    """The real file (symlinks resolved)."""
    new: bytes | None
    """None: delete the file."""
    old: bytes | None
    """None: the file did not exist."""
    mode: int
    temp: Path | None = None


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _write_temp(folder: Path, data: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(prefix=".reatimbre-", suffix=".partial", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, mode)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _make_folders(folder: Path, created: list[Path]) -> None:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        created.append(path)


def _stage(path: Path, data: bytes | None, created_folders: list[Path]) -> _Staged:
    target = _real(path)
    if target.exists() or target.is_symlink():
        if not target.is_file():
            raise FileTransactionError(f"{path} is not a regular file")
        if not os.access(target, os.W_OK) or not target.stat().st_mode & stat.S_IWUSR:
            raise FileTransactionError(f"{path} is read-only; make it writable (or close what locks it) and retry")
        try:
            old = target.read_bytes()
        except OSError as exc:
            raise FileTransactionError(f"cannot read {path}: {exc.strerror or exc}") from exc
        mode = stat.S_IMODE(target.stat().st_mode)
    else:
        old, mode = None, _DEFAULT_MODE
    staged = _Staged(target, data, old, mode)
    if data is not None:
        _make_folders(target.parent, created_folders)
        staged.temp = _write_temp(target.parent, data, mode)
    return staged


def _restore(item: _Staged) -> None:
    if item.old is None:
        item.target.unlink(missing_ok=True)
    else:
        temp = _write_temp(item.target.parent, item.old, item.mode)
        os.replace(temp, item.target)


def commit(changes: dict[Path, bytes | None]) -> None:
    """Give every path in ``changes`` its new bytes (None: delete it), or change nothing and raise."""
    staged: list[_Staged] = []
    created_folders: list[Path] = []
    done: list[_Staged] = []
    try:
        for path, data in changes.items():
            staged.append(_stage(Path(path), data, created_folders))
        for item in staged:
            if item.new is None:
                if item.old is not None:
                    item.target.unlink()
            else:
                assert item.temp is not None
                os.replace(item.temp, item.target)
                item.temp = None
            done.append(item)
    except BaseException:
        for item in reversed(done):
            try:
                _restore(item)
            except OSError:
                pass  # best effort; the original error is the one to report
        for item in staged:
            if item.temp is not None:
                item.temp.unlink(missing_ok=True)
        for folder in reversed(created_folders):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
