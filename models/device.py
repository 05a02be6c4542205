"""Which torch device a command runs on: ``--device auto|cpu|cuda`` or ``$REATIMBRE_DEVICE``, CPU by default.

The flag wins over the environment variable; with neither, the CPU is used (CI and laptops never need a GPU).
``auto`` takes CUDA when torch sees a CUDA device and the CPU otherwise; ``cuda`` (or ``cuda:N``) without one is a
one-line :class:`ReaTimbreError`. :meth:`DeviceChoice.describe` is the line a command prints (or a server job shows
as its stage) to say which device was taken and why. Torch is imported only when a device is resolved, so the
command line can add ``--device`` without loading it.

Choosing CUDA also turns off cuDNN's TF32 convolutions (on by default in torch): TF32 keeps 10 bits of mantissa,
an error near -60 dB on every layer, and renders on the GPU should match the CPU's to float32 precision. Lower
precision is the explicit ``--bf16`` of training instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from models.errors import ReaTimbreError

if TYPE_CHECKING:
    import torch
    from torch import nn

DEVICE_ENV = "REATIMBRE_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEFAULT_DEVICE = "cpu"


@dataclass(frozen=True)
class DeviceChoice:
    """The device resolved from a request, with what was asked for and where the request came from."""

    device: torch.device
    requested: str  # auto, cpu, cuda or cuda:N
    source: str  # "--device", "$REATIMBRE_DEVICE" or "default"

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def name(self) -> str:
        """``cpu``, or ``cuda:0 (NVIDIA H200)``."""
        if not self.is_cuda:
            return "cpu"
        import torch

        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"

    def describe(self) -> str:
        """One line: the device taken, and why (e.g. ``device: cpu (auto: torch sees no CUDA device)``)."""
        if self.requested == "auto":
            why = "auto: torch sees CUDA" if self.is_cuda else "auto: torch sees no CUDA device"
        else:
            why = self.source if self.source != "default" else "the default"
        return f"device: {self.name()} ({why})"

    def record(self) -> dict[str, str]:
        """What a sidecar records: the device used and what was requested."""
        return {"device": self.name(), "requested": self.requested, "source": self.source}


def resolve_device(
    requested: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cuda_available: Callable[[], bool] | None = None,
) -> DeviceChoice:
    """The device for ``requested`` (a ``--device`` value; None: ``$REATIMBRE_DEVICE``, else the CPU).
    ``cuda_available`` replaces ``torch.cuda.is_available`` (for tests)."""
    import torch

    env = os.environ if environ is None else environ
    source = "--device"
    if requested is None or requested == "":
        requested, source = env.get(DEVICE_ENV, "").strip().lower(), f"${DEVICE_ENV}"
        if not requested:
            requested, source = DEFAULT_DEVICE, "default"
    text = requested.strip().lower()
    base, colon, index_text = text.partition(":")
    if base not in DEVICE_CHOICES or (colon and (base != "cuda" or not index_text.isdigit())):
        raise ReaTimbreError(f"{source} must be auto, cpu, cuda or cuda:N, got {requested!r}")
    if base == "cpu":
        return DeviceChoice(torch.device("cpu"), text, source)
    available = (cuda_available or torch.cuda.is_available)()
    if base == "auto" and not available:
        return DeviceChoice(torch.device("cpu"), text, source)
    if not available:
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", built without CUDA")
        raise ReaTimbreError(f"{source} {text}: torch sees no CUDA device ({build}); use --device cpu or --device auto")
    index = int(index_text) if colon else None
    if index is not None and index >= torch.cuda.device_count():
        raise ReaTimbreError(f"{source} {text}: torch sees only {torch.cuda.device_count()} CUDA device(s)")
    torch.backends.cudnn.allow_tf32 = False  # full float32 convolutions (see the module's docstring)
    return DeviceChoice(torch.device("cuda", index) if index is not None else torch.device("cuda"), text, source)


def default_device() -> DeviceChoice:
    """The CPU, as the default (what library calls without a device get, whatever the environment says)."""
    return resolve_device(None, environ={})


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` (default: ``$REATIMBRE_DEVICE``, else cpu)."""
    parser.add_argument(
        "--device",
        default=None,
        metavar="auto|cpu|cuda",
        help=f"torch device: auto takes CUDA when torch sees it (default: ${DEVICE_ENV}, else cpu)",
    )


def announce(choice: DeviceChoice, stream: TextIO | None = None) -> None:
    """Print :meth:`DeviceChoice.describe` on one line (stderr by default)."""
    print(choice.describe(), file=stream if stream is not None else sys.stderr, flush=True)


def module_device(module: nn.Module) -> torch.device:
    """The device a module's weights are on (the CPU for a module without any)."""
    import torch

    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")
