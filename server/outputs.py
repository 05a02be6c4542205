"""Where the server may write: a confined output directory, a staging area, and no-clobber publishing.

Jobs render into ``<output dir>/.staging/`` and the finished file is moved to its final name in one step, so a
server killed mid-job never leaves a partial file under a real name; the staging area is emptied on start.

No step follows a symbolic link. Folders are opened one component at a time from the output directory with
``O_DIRECTORY | O_NOFOLLOW``; staged files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` relative to the
staging folder's descriptor; publishing links (or renames) between the two folder descriptors. A folder swapped for
a symlink at any moment therefore makes the job fail with a one-line error instead of writing outside the output
directory. (On platforms without ``dir_fd`` support, i.e. Windows, the same checks run on paths.)
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from models.errors import ReaTimbreError
from models.oserrors import describe_os_error
from models.userdirs import data_dir

STAGING_DIR_NAME = ".staging"
AUDIO_SUFFIX = ".wav"
MAX_NAME_BYTES = 255  # one path component, as every common file system allows
_FILE_MODE = 0o666  # less the umask, like an ordinary open()
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
_NEW_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | getattr(os, "O_BINARY", 0)
#: Whether folders can be walked through descriptors here (POSIX); elsewhere the checks run on paths.
USE_DIR_FDS = {os.open, os.mkdir, os.link, os.rename, os.unlink, os.stat} <= os.supports_dir_fd and bool(_O_NOFOLLOW)


def default_output_dir() -> Path:
    """``<user data dir>/renders`` (``REATIMBRE_DATA_DIR`` overrides the data dir)."""
    return data_dir() / "renders"


def prepare_output_dir(output_dir: Path) -> Path:
    """Create ``output_dir`` if needed, empty its staging area, and return its resolved path."""
    resolved = Path(output_dir).expanduser().resolve()
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        staging = resolved / STAGING_DIR_NAME
        if staging.is_symlink() or staging.is_file():
            staging.unlink()
        elif staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=0o700)
    except OSError as exc:
        raise ReaTimbreError(f"cannot prepare the output directory {resolved}: {describe_os_error(exc)}") from None
    return resolved


def resolve_output(output_dir: Path, requested: str | None, default_stem: str) -> Path:
    """Resolve a request's ``output`` to an absolute path inside ``output_dir``.

    ``None`` picks ``<default_stem>-<short id>.wav``; a relative name resolves inside ``output_dir``; an
    absolute path must already be inside it. Anything that resolves outside (``..``, symlinks), into the
    staging area, onto an existing file, or that the OS refuses (a name too long...) raises
    :class:`ReaTimbreError`. Publishing checks again without following links (see :func:`publish`).
    """
    root = output_dir.resolve()
    if requested is None:
        return unique_output_path(root, default_stem, AUDIO_SUFFIX)
    if not requested.strip() or "\x00" in requested:
        raise ReaTimbreError("output must be a non-empty file name or path")
    try:
        candidate = Path(requested).expanduser()
        if not candidate.is_absolute():
            candidate = root / candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(root) or resolved == root:
            raise ReaTimbreError(f"output {requested!r} is outside the server's output directory {root}")
        if resolved.is_relative_to(root / STAGING_DIR_NAME):
            raise ReaTimbreError(f"output {requested!r} is inside the server's staging area")
        if resolved.suffix.lower() != AUDIO_SUFFIX:
            raise ReaTimbreError(f"output {requested!r} must end in {AUDIO_SUFFIX}")
        for part in resolved.relative_to(root).parts:
            _check_name_length(part)
        if os.path.lexists(resolved):
            raise ReaTimbreError(f"output {resolved} already exists; choose another name (files are never overwritten)")
    except OSError as exc:
        raise ReaTimbreError(f"output {requested[:200]!r}: {describe_os_error(exc)}") from None
    return resolved


def unique_output_path(output_dir: Path, stem: str, suffix: str) -> Path:
    """A fresh ``<output dir>/<stem>-<short id><suffix>`` (the stem cleaned of path separators and oddities)."""
    return output_dir.resolve() / f"{_safe_stem(stem)}-{uuid.uuid4().hex[:8]}{suffix}"


class OutputReservations:
    """Output paths promised to queued or running jobs, so two jobs never target the same file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[Path] = set()

    def reserve(self, path: Path) -> None:
        """Claim ``path``; raises :class:`ReaTimbreError` if another job already has it."""
        with self._lock:
            if path in self._paths:
                raise ReaTimbreError(f"output {path} is already the target of another job")
            self._paths.add(path)

    def release(self, path: Path) -> None:
        with self._lock:
            self._paths.discard(path)


@dataclass
class StagedFile:
    """A new file in the staging area, open for writing through ``fd`` (an ``os`` file descriptor)."""

    fd: int
    name: str
    staging_fd: int | None  # the staging folder's descriptor (None where folders are handled by path)
    staging_path: Path
    published: bool = False

    def write(self, data: bytes) -> None:
        """Append ``data`` to the file."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]


@contextmanager
def staged_file(output_dir: Path, name: str) -> Iterator[StagedFile]:
    """Create ``<output dir>/.staging/<name>`` (never through a symlink, never over an existing file) and yield it;
    on leaving the block the descriptor is closed and the file removed unless :func:`publish` moved it."""
    _check_name_length(name)
    staging_path = output_dir / STAGING_DIR_NAME
    with _os_errors(f"cannot create a file in the staging area {staging_path}"):
        staging_fd = _open_dir_chain(output_dir, (STAGING_DIR_NAME,), create=False) if USE_DIR_FDS else None
        try:
            if staging_fd is not None:
                fd = os.open(name, _NEW_FILE_FLAGS, _FILE_MODE, dir_fd=staging_fd)
            else:
                _refuse_linked_folders(output_dir, (STAGING_DIR_NAME,))
                fd = os.open(staging_path / name, _NEW_FILE_FLAGS, _FILE_MODE)
        except BaseException:
            if staging_fd is not None:
                os.close(staging_fd)
            raise
    staged = StagedFile(fd=fd, name=name, staging_fd=staging_fd, staging_path=staging_path)
    try:
        yield staged
    finally:
        if staged.fd >= 0:
            os.close(staged.fd)
        try:
            if not staged.published:
                if staging_fd is not None:
                    os.unlink(name, dir_fd=staging_fd)
                else:
                    (staging_path / name).unlink()
        except FileNotFoundError:
            pass
        finally:
            if staging_fd is not None:
                os.close(staging_fd)


def publish(output_dir: Path, staged: StagedFile, final: Path) -> None:
    """Sync ``staged`` to disk and give it the name ``final`` (inside ``output_dir``) in one step.

    Never overwrites: if ``final`` appeared meanwhile it is left untouched and this raises. Folders on the way are
    created as needed and entered without following symlinks, so ``final`` is always inside ``output_dir``.
    """
    try:
        parts = final.relative_to(output_dir).parts
    except ValueError:
        raise ReaTimbreError(f"output {final} is outside the server's output directory {output_dir}") from None
    if not parts or parts[0] == STAGING_DIR_NAME or ".." in parts:
        raise ReaTimbreError(f"output {final} is not a file name inside the server's output directory")
    folders, name = parts[:-1], parts[-1]
    with _os_errors(f"cannot publish {final}"):
        os.fsync(staged.fd)
        if staged.staging_fd is None:
            _publish_by_path(output_dir, staged, folders, name, final)
            return
        parent_fd = _open_dir_chain(output_dir, folders, create=True)
        try:
            try:
                os.link(staged.name, name, src_dir_fd=staged.staging_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
            except FileExistsError:
                raise _appeared(final) from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                # Hard links unsupported here: a rename, after checking (without following links) that the
                # name is free. rename never writes through a symlink; at worst it replaces a link planted there.
                if _exists_at(name, parent_fd):
                    raise _appeared(final) from None
                os.rename(staged.name, name, src_dir_fd=staged.staging_fd, dst_dir_fd=parent_fd)
            else:
                os.unlink(staged.name, dir_fd=staged.staging_fd)
            staged.published = True
            _fsync_dir(parent_fd)
        finally:
            os.close(parent_fd)


def _publish_by_path(output_dir: Path, staged: StagedFile, folders: tuple[str, ...], name: str, final: Path) -> None:
    """Publishing where ``dir_fd`` is unavailable: every folder is checked to be a real folder, not a link."""
    parent = output_dir.joinpath(*folders)
    parent.mkdir(parents=True, exist_ok=True)
    _refuse_linked_folders(output_dir, folders)
    if os.path.lexists(final):
        raise _appeared(final)
    os.close(staged.fd)  # Windows cannot rename a file that is still open
    staged.fd = -1
    os.rename(staged.staging_path / staged.name, final)
    staged.published = True


def _open_dir_chain(root: Path, folders: tuple[str, ...], create: bool) -> int:
    """A descriptor of ``root/folders...``, each component opened with ``O_NOFOLLOW`` from the one before."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for folder in folders:
            if folder in ("", ".", ".."):
                raise ReaTimbreError(f"output folder name {folder!r} is not allowed")
            if create:
                try:
                    os.mkdir(folder, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                next_fd = os.open(folder, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise ReaTimbreError(
                        f"output folder {folder!r} in {root} is a symbolic link or not a folder; nothing was written"
                    ) from None
                raise
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refuse_linked_folders(root: Path, folders: tuple[str, ...]) -> None:
    current = root
    for folder in folders:
        current = current / folder
        if current.is_symlink() or not current.is_dir():
            raise ReaTimbreError(f"output folder {current} is a symbolic link or not a folder; nothing was written")


def _exists_at(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _fsync_dir(fd: int) -> None:
    """Make a rename or link in this folder durable (where the OS can sync folders)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise


def _appeared(final: Path) -> ReaTimbreError:
    return ReaTimbreError(f"output {final} appeared while rendering; it was left untouched")


def _check_name_length(name: str) -> None:
    if len(os.fsencode(name)) > MAX_NAME_BYTES:
        raise ReaTimbreError(f"output name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Turn whatever the OS says into one :class:`ReaTimbreError` line."""
    try:
        yield
    except OSError as exc:
        raise ReaTimbreError(f"{what}: {describe_os_error(exc)}") from None


def _safe_stem(stem: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem).strip("._")
    return cleaned[:80] or "render"
