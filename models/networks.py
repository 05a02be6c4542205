"""The network types a library model's sidecar can name, and the contract each one keeps.

A sidecar's ``architecture`` record is ``{"type": NAME, **settings}``. :data:`NETWORK_TYPES` maps each ``NAME`` to
the class that builds it (imported only when a model of that type is loaded). Every network class keeps one
contract, so rendering, batch, the server and the REAPER actions treat them all alike:

- ``cls.from_settings(settings) -> instance`` and ``instance.settings() -> dict`` (JSON-serialisable; the
  round trip gives the same architecture);
- ``receptive_field`` (int, samples of past input one output sample depends on, itself included) and
  ``latency_samples`` (int, how many samples the output lags the input; renderers compensate it so that the
  output lines up with the input sample for sample);
- ``stream(control) -> stream`` for one fixed control vector (shape ``(knobs,)``), whose
  ``process(block)`` maps (batch, 1, samples) to (batch, 1, samples) and equals one pass over the concatenated
  blocks, whatever their sizes, starting from silence;
- ``forward(x, control)`` for training: (batch, 1, samples) and (batch, knobs).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import torch
from torch import nn

# Type name -> "module:class". One line per network type.
NETWORK_TYPES: dict[str, str] = {
    "ConditionedTCN": "models.tcn:ConditionedTCN",
    "ConditionedWaveshaper": "models.waveshaper:ConditionedWaveshaper",
    "DriveChain": "models.pedals.drive:DriveChain",
    "AfxFrameNetwork": "models.afx.network:AfxFrameNetwork",
    "AfxSlidingNetwork": "models.afx.network:AfxSlidingNetwork",
    "LFOTCN": "models.pedals.lfo_tcn:LFOTCN",
    "Rotors": "models.afx.rotor_network:RotorNetwork",
    "ConditionedBiquads": "models.pedals.biquads:ConditionedBiquads",
    "McCoolCNN": "models.pedals.baselines:McCoolCNN",
    "McCoolLSTM": "models.pedals.baselines:McCoolLSTM",
    "SweptDelay": "models.pedals.swept_delay:SweptDelayNetwork",
    "EchoDelay": "models.pedals.echo:EchoNetwork",
    "ReverbTail": "models.reverb_tail:ReverbTail",
    "OctaveDivider": "models.pedals.divider:OctaveDivider",
}


class BlockStream(Protocol):
    """Renders consecutive blocks of one signal for one fixed control vector."""

    def process(self, x: torch.Tensor) -> torch.Tensor: ...


class EffectNetwork(Protocol):
    """What the library needs of a network (see the module docstring)."""

    network_type: str

    @property
    def receptive_field(self) -> int: ...

    @property
    def latency_samples(self) -> int: ...

    def settings(self) -> dict[str, Any]: ...

    def stream(self, control: torch.Tensor) -> BlockStream: ...


def network_class(type_name: str) -> type[nn.Module]:
    """The class registered under ``type_name`` (ValueError naming the known types otherwise)."""
    if type_name not in NETWORK_TYPES:
        raise ValueError(f"unknown network type {type_name!r} (known: {', '.join(NETWORK_TYPES)})")
    module_name, class_name = NETWORK_TYPES[type_name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"{NETWORK_TYPES[type_name]} is not a torch module class")
    return cls


def build_network(architecture: dict[str, Any]) -> nn.Module:
    """A freshly initialised network from a sidecar's ``architecture`` record (``type`` plus settings)."""
    settings = dict(architecture)
    type_name = settings.pop("type", None)
    if not isinstance(type_name, str):
        raise ValueError("the architecture record has no 'type'")
    cls = network_class(type_name)
    return cls.from_settings(settings)  # type: ignore[attr-defined]


def architecture_record(model: nn.Module) -> dict[str, Any]:
    """The sidecar's ``architecture`` record for ``model``: its type name and settings."""
    return {"type": model.network_type, **model.settings()}  # type: ignore[operator]


def model_device(model: nn.Module) -> torch.device:
    """Where a model's weights are (the CPU for a model without any)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")
