"""The thesis's architectures as library networks (:mod:`models.networks`): saved, loaded and rendered like the TCN.

Two adapter classes keep the library's contract, one per family: :class:`AfxFrameNetwork` (CEQ, CAFx, CRAFx, CWAFx,
CSAFx: frames with overlap-add) and :class:`AfxSlidingNetwork` (the feed-forward WaveNet). Each holds one
architecture (``self.model``) and describes it by ``{"arch": NAME, **config}``; the knobs reach it through the
control vector (:mod:`models.afx.conditioning`; ``knobs`` in the config). ``latency_samples`` is the look-ahead:
the stream's output lags its input by it, and the renderers (``models.render``, ``models.multi_render``,
``NeuralEffect.process``) compensate it. ``receptive_field`` counts, in the stream's time, the input samples one
output sample depends on: the look-ahead's worth after the sample it lines up with, and as many before it
(frames) or the window's first half (WaveNet), plus itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.afx import ARCHITECTURES, build, parameter_count
from models.afx.framing import AfxModel, FrameModel, SlidingModel, lookahead_samples, render_rows
from models.afx.stream import FrameStream, SlidingStream, stream_latency


class AfxNetwork(nn.Module):
    """One of the thesis's architectures behind the library's network contract."""

    network_type = ""
    family: type[FrameModel] | type[SlidingModel] = FrameModel

    def __init__(self, arch: str, model: AfxModel):
        super().__init__()
        if not isinstance(model, self.family):
            raise ValueError(f"{arch} is not a {self.family.__name__}: use {network_for(model).__name__}")
        self.arch = arch
        self.model = model

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> AfxNetwork:
        settings = dict(settings)
        arch = settings.pop("arch", None)
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown afx architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
        return cls(arch, build(arch, settings))

    def settings(self) -> dict[str, Any]:
        return {"arch": self.arch, **self.model.config.to_dict()}

    @property
    def knobs(self) -> int:
        return int(self.model.config.knobs)  # type: ignore[attr-defined]

    @property
    def latency_samples(self) -> int:
        return stream_latency(self.model)

    @property
    def receptive_field(self) -> int:
        return 2 * self.latency_samples + 1

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) signals and (B, knobs) controls to the aligned (B, 1, T) outputs (the offline render, which
        the stream equals delayed by ``latency_samples``)."""
        return render_rows(self.model, x[:, 0], control if self.knobs else None)[:, None]

    def stream(self, control: torch.Tensor) -> FrameStream | SlidingStream:
        if control.numel() != self.knobs:
            raise ValueError(f"{self.arch} has {self.knobs} knobs, got a control of {control.numel()}")
        knobs = control.reshape(-1).float() if self.knobs else None
        if isinstance(self.model, FrameModel):
            return FrameStream(self.model, knobs)
        assert isinstance(self.model, SlidingModel), "the family was checked in __init__"
        return SlidingStream(self.model, knobs)

    def describe(self) -> dict[str, Any]:
        """What a sidecar adds about the architecture: the thesis's count beside ours, framing, look-ahead."""
        spec = ARCHITECTURES[self.arch]
        model = self.model
        return {
            "thesis": {
                "architecture": self.arch,
                "chapter": spec.chapter,
                "table_c1_parameters": spec.table_c1_parameters,
                "trainable_parameters": parameter_count(model),
            },
            "framing": model.framing.to_dict() if isinstance(model, FrameModel) else None,
            "lookahead_samples": lookahead_samples(model),
        }


class AfxFrameNetwork(AfxNetwork):
    """CEQ, CAFx, CRAFx, CWAFx or CSAFx as a library network."""

    network_type = "AfxFrameNetwork"
    family = FrameModel


class AfxSlidingNetwork(AfxNetwork):
    """The thesis's feed-forward WaveNet as a library network."""

    network_type = "AfxSlidingNetwork"
    family = SlidingModel


def network_for(model: AfxModel) -> type[AfxNetwork]:
    """The adapter class for ``model``'s family."""
    return AfxFrameNetwork if isinstance(model, FrameModel) else AfxSlidingNetwork


def wrap(arch: str, model: AfxModel) -> AfxNetwork:
    """``model`` (of architecture ``arch``) as a library network."""
    return network_for(model)(arch, model)


def build_network(arch: str, settings: dict[str, Any] | None = None) -> AfxNetwork:
    """A freshly initialised library network of architecture ``arch`` with ``settings`` over the thesis's."""
    return wrap(arch, build(arch, settings))
