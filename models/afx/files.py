"""Model files for the thesis's architectures: ``NAME.safetensors`` (weights; loading runs no code) and ``NAME.json``
(the sidecar: architecture and its settings, sample rate, framing and look-ahead, parameters, training, metrics).

The sidecar's format is ``reatimbre-afx-model/1``, apart from the conditioned-TCN library's format, so these files
live in a folder of their own until the library learns to render them (issue 28).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from models.afx import architecture, build, parameter_count
from models.afx.framing import AfxModel, FrameModel, lookahead_samples
from models.atomic_files import atomic_path, write_text
from models.errors import ReaTimbreError
from models.library import check_model_name

AFX_FORMAT = "reatimbre-afx-model/1"


@dataclass(frozen=True)
class AfxModelFile:
    """A saved model: where its weights are and what its sidecar says."""

    name: str
    weights_path: Path
    sidecar: dict

    def __str__(self) -> str:
        return f"{self.weights_path.with_suffix('.json')} ({self.sidecar['architecture']['type']})"


def save_afx_model(model: AfxModel, arch: str, directory: Path, name: str, sidecar: dict | None = None) -> AfxModelFile:
    """Write ``NAME.safetensors`` and ``NAME.json`` into ``directory`` atomically (weights first)."""
    check_model_name(name)
    spec = architecture(arch)
    if not isinstance(model, spec.model):
        raise ReaTimbreError(f"model is a {type(model).__name__}, not a {spec.model.__name__} ({arch})")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(model, FrameModel):
        framing, receptive_field = model.framing.to_dict(), None
    else:
        framing, receptive_field = None, model.receptive_field
    full = {
        "format": AFX_FORMAT,
        "name": name,
        **(sidecar or {}),
        "architecture": {"type": arch, **model.config.to_dict()},
        "sample_rate": model.config.sample_rate,
        "parameters": parameter_count(model),
        "table_c1_parameters": spec.table_c1_parameters,
        "framing": framing,
        "receptive_field_samples": receptive_field,
        "lookahead_samples": lookahead_samples(model),
        "latency_samples": 0,  # offline rendering compensates the look-ahead (models.afx.framing.render)
    }
    state = {key: value.detach().contiguous().cpu() for key, value in model.state_dict().items()}
    with atomic_path(directory / f"{name}.safetensors") as tmp:
        save_file(state, str(tmp))
    text = json.dumps(full, indent=2) + "\n"
    write_text(directory / f"{name}.json", text)
    return AfxModelFile(name, directory / f"{name}.safetensors", json.loads(text))  # as a reader will see it


def read_afx_sidecar(sidecar_path: Path) -> AfxModelFile:
    """Read and check a sidecar (and that its weights file is there)."""
    sidecar_path = Path(sidecar_path)
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaTimbreError(f"model sidecar {sidecar_path} is unreadable: {exc}") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != AFX_FORMAT:
        found = sidecar.get("format") if isinstance(sidecar, dict) else None
        raise ReaTimbreError(f"{sidecar_path} is not a {AFX_FORMAT} sidecar (format {found!r})")
    weights = sidecar_path.with_suffix(".safetensors")
    if not weights.is_file():
        raise ReaTimbreError(f"model {sidecar_path.stem!r}: weights file {weights} is missing")
    return AfxModelFile(sidecar_path.stem, weights, sidecar)


def load_afx_model(sidecar_path: Path) -> tuple[AfxModel, AfxModelFile]:
    """The model a sidecar describes, with its weights (safetensors: no code runs), in eval mode."""
    info = read_afx_sidecar(sidecar_path)
    try:
        settings = dict(info.sidecar["architecture"])
        arch = settings.pop("type")
        model = build(arch, settings)
        if lookahead_samples(model) != info.sidecar.get("lookahead_samples"):
            raise ValueError("the look-ahead does not match the architecture")
        model.load_state_dict(load_file(str(info.weights_path)), strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
        raise ReaTimbreError(f"model {info.name!r} ({sidecar_path}) could not be loaded: {exc}") from None
    return model.eval(), info


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models hold identical tensors under the same names."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
