"""Patch-matching weights on disk: ``DIR/<variant>.safetensors`` (float16) with a JSON sidecar ``DIR/<variant>.json``
(architecture, the synths' parameter spaces, data, command, device, held-out metrics). The shipped set lives in
``models/weights/match``. Loading reads tensors only (safetensors executes no code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from models.asp.nets import VARIANTS, Architecture, AspModel
from models.atomic_files import atomic_path, write_bytes
from models.errors import ReaTimbreError

MATCH_MODEL_FORMAT = "reatimbre-match-model/1"
SHIPPED_MATCH_DIR = Path(__file__).resolve().parent.parent / "weights" / "match"


def save_model(model: AspModel, sidecar: dict[str, Any], directory: Path, name: str | None = None) -> Path:
    """Write ``<name>.safetensors`` then ``<name>.json`` (name: the variant); returns the sidecar's path."""
    name = name or model.architecture.variant
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(directory / f"{name}.safetensors") as partial:
        save_file(state, str(partial))
    body = {
        "format": MATCH_MODEL_FORMAT,
        "architecture": model.architecture.to_json(),
        **sidecar,
        "weights": sum(v.numel() for v in state.values()),
    }
    return write_bytes(directory / f"{name}.json", json.dumps(body, indent=1).encode("utf-8"), make_parents=True)


def read_sidecar(directory: Path, name: str) -> dict[str, Any]:
    path = Path(directory) / f"{name}.json"
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaTimbreError(f"no match model {name!r} in {directory}: {exc}") from exc
    if sidecar.get("format") != MATCH_MODEL_FORMAT:
        raise ReaTimbreError(f"{path} is not a match model sidecar")
    return sidecar


def load_model(directory: str | Path | None = None, name: str = "joint_encoder") -> tuple[AspModel, dict[str, Any]]:
    """A stored model (default: the shipped joint-encoder one) in eval mode, and its sidecar."""
    directory = Path(directory) if directory is not None else SHIPPED_MATCH_DIR
    if name not in VARIANTS:
        raise ReaTimbreError(f"unknown variant {name!r}; variants: {', '.join(VARIANTS)}")
    sidecar = read_sidecar(directory, name)
    model = AspModel(Architecture.from_json(sidecar["architecture"]))
    path = directory / f"{name}.safetensors"
    try:
        state = load_file(str(path))
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise ReaTimbreError(f"cannot load match weights {path}: {exc}") from exc
    model.eval()
    return model, sidecar


def stored_variants(directory: str | Path | None = None) -> list[str]:
    """The variants with weights in ``directory`` (default: the shipped set)."""
    directory = Path(directory) if directory is not None else SHIPPED_MATCH_DIR
    return [v for v in VARIANTS if (directory / f"{v}.json").exists() and (directory / f"{v}.safetensors").exists()]
