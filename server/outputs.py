"""Where the server may write: a confined output directory, a staging area, and no-clobber publishing.

Jobs render into ``<output dir>/.staging/`` and the finished file is moved to its final name in one step, so a
server killed mid-job never leaves a partial file under a real name; the staging area is emptied on start.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

from models.errors import ReaTimbreError
from models.userdirs import data_dir

STAGING_DIR_NAME = ".staging"
AUDIO_SUFFIX = ".wav"


def default_output_dir() -> Path:
    """``<user data dir>/renders`` (``REATIMBRE_DATA_DIR`` overrides the data dir)."""
    return data_dir() / "renders"


def prepare_output_dir(output_dir: Path) -> Path:
    """Create ``output_dir`` if needed, empty its staging area, and return its resolved path."""
    resolved = Path(output_dir).expanduser().resolve()
    resolved.mkdir(parents=True, exist_ok=True)
    staging = resolved / STAGING_DIR_NAME
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    return resolved


def staging_path(output_dir: Path, job_id: str, suffix: str = AUDIO_SUFFIX) -> Path:
    """A private path in the staging area for one job's work in progress."""
    return output_dir / STAGING_DIR_NAME / f"{job_id}{suffix}"


def resolve_output(output_dir: Path, requested: str | None, default_stem: str) -> Path:
    """Resolve a request's ``output`` to an absolute path inside ``output_dir``.

    ``None`` picks ``<default_stem>-<short id>.wav``; a relative name resolves inside ``output_dir``; an
    absolute path must already be inside it. Anything that resolves outside (``..``, symlinks), into the
    staging area, or onto an existing file raises :class:`ReaTimbreError`.
    """
    root = output_dir.resolve()
    if requested is None:
        return unique_output_path(root, default_stem, AUDIO_SUFFIX)
    if not requested.strip() or "\x00" in requested:
        raise ReaTimbreError("output must be a non-empty file name or path")
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
    if resolved.exists():
        raise ReaTimbreError(f"output {resolved} already exists; choose another name (files are never overwritten)")
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


def publish_no_clobber(staged: Path, final: Path) -> None:
    """Move ``staged`` to ``final`` atomically, refusing (and keeping ``final``) if it already exists."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(staged, final)
    except FileExistsError as exc:
        raise ReaTimbreError(f"output {final} appeared while rendering; it was left untouched") from exc
    except OSError:
        # Hard links unsupported (some file systems): fall back to a checked rename.
        if final.exists():
            raise ReaTimbreError(f"output {final} appeared while rendering; it was left untouched") from None
        os.replace(staged, final)
        return
    os.unlink(staged)


def _safe_stem(stem: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem).strip("._")
    return cleaned[:80] or "render"
