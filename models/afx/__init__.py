"""The effect-modelling architectures of Martínez Ramírez's thesis ("Deep learning for audio effects modeling",
2020): CEQ, CAFx, WaveNet, CRAFx, CWAFx and CSAFx, as trainable and renderable torch models.

:func:`build` makes one from its name and a config (a dict such as a sidecar holds, or nothing for the thesis's
settings); ``TABLE_C1_PARAMETERS`` holds the thesis's parameter counts (Table C.1) for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from models.afx.ceq import CEQ, CAFx, CAFxConfig, CEQConfig
from models.afx.crafx import CRAFx, CRAFxConfig, CWAFx, CWAFxConfig
from models.afx.csafx import CSAFx, CSAFxConfig
from models.afx.framing import AfxModel, FrameModel, SlidingModel
from models.afx.wavenet import WaveNet, WaveNetConfig


@dataclass(frozen=True)
class Architecture:
    """One of the thesis's models: its class, its config class and what Table C.1 counts for it."""

    name: str
    model: type[FrameModel] | type[SlidingModel]
    config: type
    table_c1_parameters: int
    chapter: str


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("ceq", CEQ, CEQConfig, 561_473, "Ch. 4, Table 4.1"),
        Architecture("cafx", CAFx, CAFxConfig, 604_545, "Ch. 5, Table 5.1"),
        Architecture("wavenet", WaveNet, WaveNetConfig, 1_707_585, "Ch. 5, Table 5.2"),
        Architecture("crafx", CRAFx, CRAFxConfig, 275_073, "Ch. 6, Table 6.1"),
        Architecture("cwafx", CWAFx, CWAFxConfig, 205_057, "Ch. 6, Table 6.2"),
        Architecture("csafx", CSAFx, CSAFxConfig, 410_977, "Ch. 8, Tables 8.1-8.2"),
    )
}


def architecture(name: str) -> Architecture:
    """The architecture called ``name`` (a ValueError naming the known ones otherwise)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r} (known: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[name]


def make_config(name: str, settings: dict[str, Any] | None = None) -> Any:
    """The config of architecture ``name``: the thesis's settings, changed by ``settings`` (a TypeError names an
    unknown field)."""
    return architecture(name).config(**(settings or {}))


def build(name: str, settings: dict[str, Any] | None = None) -> AfxModel:
    """A freshly initialised model of architecture ``name`` with ``settings`` over the thesis's."""
    return architecture(name).model(make_config(name, settings))


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (the tied synthesis layer's kernels are the first layer's and count once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
