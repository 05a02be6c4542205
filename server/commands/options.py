"""The options several ``reatimbre`` commands share, defined once: ``--threads``, ``--device`` and ``--bf16``; the
check of a training command's ``--out`` folder; and :class:`LazyChoices`, the names an option accepts, looked up
only when a command needs them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from models.device import add_device_argument

if TYPE_CHECKING:
    from models.device import DeviceChoice

COACH_THREADS_HELP = (
    "torch CPU threads (default 1: the coach's models are small, and torch's idle threads spin-wait on the cores "
    "Vital renders on; docs/coach.md has the measurements)"
)


class LazyChoices:
    """An option's ``choices`` that are looked up on first use: when argparse checks a value or prints the command's
    own help. The registries that hold the names (the thesis's torch models, the afx tasks' DSP) take seconds to
    import, which ``reatimbre --help`` and every other command would otherwise pay. Give the option a ``metavar``:
    without one, argparse lists the choices as soon as the option is added."""

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self._names = names
        self._loaded: list[str] | None = None

    def _list(self) -> list[str]:
        if self._loaded is None:
            self._loaded = list(self._names())
        return self._loaded

    def __contains__(self, value: object) -> bool:
        return value in self._list()

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())

    def __len__(self) -> int:
        return len(self._list())


def add_threads(parser: argparse.ArgumentParser, default: int | None = None, help: str | None = None) -> None:
    """``--threads N``: torch's CPU threads (None keeps torch's default)."""
    parser.add_argument("--threads", type=int, default=default, help=help or "torch CPU threads")


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's thread count from ``--threads`` (None leaves torch's default)."""
    import torch

    from models.errors import ReaTimbreError

    if args.threads is None:
        return
    if args.threads < 1:
        raise ReaTimbreError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)


def add_training_device(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` and ``--bf16`` for the commands that train."""
    add_device_argument(parser)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast of the training passes (CUDA only)")


def training_device(args: argparse.Namespace) -> DeviceChoice:
    """The device ``--device`` names (a clear error for ``cuda`` without CUDA, or ``--bf16`` off CUDA)."""
    from models.device import resolve_device
    from models.errors import ReaTimbreError

    device = resolve_device(args.device)
    if args.bf16 and not device.is_cuda:
        raise ReaTimbreError(f"--bf16 needs CUDA; {device.describe()}")
    return device


def check_out_folder(out: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder the command could not write at its end: ``out`` is a file (or
    another non-folder), a part of its path is a file, it or its nearest existing parent is not writable, or one of
    its names is too long. A training command writes its folder only when it has trained; without this check a
    clumsy ``--out`` costs the whole training run. Nothing is created."""
    from models.errors import ReaTimbreError
    from models.oserrors import describe_os_error, shown
    from server.outputs import MAX_NAME_BYTES

    def refuse(words: str) -> ReaTimbreError:
        return ReaTimbreError(f"{option} {shown(out)}: {words}; nothing was trained or written")

    path = Path(out).expanduser()
    for part in path.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise refuse("file name too long")
    probe = path
    while True:
        try:
            if probe.is_dir():
                break
        except OSError as exc:
            raise refuse(describe_os_error(exc)) from None
        if os.path.lexists(probe):
            raise refuse("is a file, not a folder" if probe == path else f"{shown(probe)} is not a folder")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise refuse("permission denied" if probe == path else f"cannot create it in {shown(probe)}: permission denied")
