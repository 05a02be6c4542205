"""The options several ``reatimbre`` commands share, defined once: ``--threads``, ``--device`` and ``--bf16``;
and :class:`LazyChoices`, the names an option accepts, looked up only when a command needs them."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
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
