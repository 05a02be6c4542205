"""Coach weights on disk: ``DIR/<effect>.safetensors`` and ``DIR/next_effect.safetensors`` (float16), each with a JSON
sidecar saying what it is (architecture, profile, step order), how it was trained and how well it did on
held-out families. Loading reads tensors only (safetensors executes no code). The shipped set for Vital lives in
``models/weights/coach/vital``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from models.atomic_files import atomic_path, write_bytes
from models.coach.nets import EffectCNN, HeadSpec, NextEffectRNN
from models.errors import ReaTimbreError
from models.synth.profiles import EFFECT_NAMES, Effect

COACH_FORMAT = "reatimbre-coach-model/1"
SHIPPED_COACH_DIR = Path(__file__).resolve().parent.parent / "weights" / "coach"
NEXT_EFFECT_NAME = "next_effect"


def shipped_dir(profile: str = "vital") -> Path:
    """Folder of the shipped coach weights for a profile."""
    return SHIPPED_COACH_DIR / profile


def heads_for(effect: Effect) -> list[HeadSpec]:
    """The CNN outputs an effect's profile defines: one per parameter, classes for categorical ones."""
    return [HeadSpec(p.name, len(p.classes) if p.is_categorical else 1) for p in effect.parameters]


def save_module(module: torch.nn.Module, sidecar: dict[str, Any], directory: Path, name: str) -> Path:
    """Write ``name.safetensors`` then ``name.json`` atomically; returns the sidecar path."""
    directory.mkdir(parents=True, exist_ok=True)
    # float16 on disk keeps the shipped set small; loading copies the values into the float32 model
    state = {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in module.state_dict().items()
    }
    with atomic_path(directory / f"{name}.safetensors") as partial:
        save_file(state, str(partial))
    body = {"format": COACH_FORMAT, **sidecar, "parameters": sum(v.numel() for v in state.values())}
    return write_bytes(directory / f"{name}.json", json.dumps(body, indent=1).encode("utf-8"), make_parents=True)


def read_sidecar(directory: Path, name: str) -> dict[str, Any]:
    """The sidecar of one coach model (raises :class:`ReaTimbreError` if missing or foreign)."""
    path = directory / f"{name}.json"
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaTimbreError(f"no usable coach model {name!r} in {directory}: {exc}") from exc
    if sidecar.get("format") != COACH_FORMAT:
        raise ReaTimbreError(f"{path} is not a coach model sidecar")
    return sidecar


def record_evaluation(directory: Path, key: str, evaluation: dict[str, Any]) -> list[Path]:
    """Add ``evaluation`` under ``key`` to every coach sidecar in ``directory`` (atomic rewrites); their paths."""
    written = []
    for name in (*EFFECT_NAMES, NEXT_EFFECT_NAME):
        sidecar = read_sidecar(directory, name)
        sidecar[key] = evaluation
        body = json.dumps(sidecar, indent=1).encode("utf-8")
        written.append(write_bytes(directory / f"{name}.json", body, make_parents=True))
    return written


def load_state(module: torch.nn.Module, directory: Path, name: str, may_lack: tuple[str, ...] = ()) -> None:
    """Load ``directory/<name>.safetensors`` into ``module`` (same architecture) and put it in eval mode.

    ``may_lack``: prefixes of ``module``'s weights the file may not have (they keep their initial values),
    e.g. an output added to a model that is being fine-tuned; every other weight must match."""
    path = directory / f"{name}.safetensors"
    try:
        state = load_file(str(path))
        missing, unexpected = module.load_state_dict(state, strict=not may_lack)
        missing = [key for key in missing if not key.startswith(may_lack)]
        if missing or unexpected:
            raise ValueError(f"missing weights {missing}, unexpected weights {unexpected}")
    except (OSError, RuntimeError, ValueError, SafetensorError) as exc:
        raise ReaTimbreError(f"cannot load coach weights {path}: {exc}") from exc
    module.eval()


@dataclass
class CoachModels:
    """A full coach: one CNN per effect, the next-effect RNN, and their sidecars."""

    profile: str
    step_order: tuple[str, ...]
    effect_cnns: dict[str, EffectCNN]
    next_effect: NextEffectRNN
    sidecars: dict[str, dict[str, Any]]
    directory: Path


def load_next_effect(directory: Path, sidecar: dict[str, Any] | None = None) -> NextEffectRNN:
    """The next-effect RNN in ``directory``, built as its sidecar (read unless given) describes."""
    sidecar = sidecar if sidecar is not None else read_sidecar(directory, NEXT_EFFECT_NAME)
    rnn = NextEffectRNN(**sidecar["architecture"])
    load_state(rnn, directory, NEXT_EFFECT_NAME)
    return rnn


def load_coach(directory: str | Path | None = None, profile: str = "vital") -> CoachModels:
    """Load every coach model in ``directory`` (default: the shipped set for ``profile``)."""
    directory = Path(directory) if directory is not None else shipped_dir(profile)
    sidecars = {name: read_sidecar(directory, name) for name in (*EFFECT_NAMES, NEXT_EFFECT_NAME)}
    cnns = {}
    for name in EFFECT_NAMES:
        side = sidecars[name]
        heads = [HeadSpec(h["name"], int(h["classes"])) for h in side["heads"]]
        cnn = EffectCNN(heads, **side["architecture"])
        load_state(cnn, directory, name)
        cnns[name] = cnn
    rnn_side = sidecars[NEXT_EFFECT_NAME]
    rnn = load_next_effect(directory, rnn_side)
    profiles = {side.get("profile") for side in sidecars.values()}
    if len(profiles) != 1:
        raise ReaTimbreError(f"coach models in {directory} disagree on their profile")
    trained_profile = profiles.pop()
    if not isinstance(trained_profile, str):
        raise ReaTimbreError(f"coach models in {directory} name no effect profile in their sidecars")
    # The step order is the RNN's: the order it names effects in. A CNN's sidecar records the order of the
    # canonical half of its training pairs (the other half are any subsets), which may be an earlier one.
    order = tuple(rnn_side.get("step_order", ()))
    if sorted(order) != sorted(EFFECT_NAMES):
        raise ReaTimbreError(f"the next-effect RNN in {directory} has no step order over the coach's effects")
    return CoachModels(trained_profile, order, cnns, rnn, sidecars, directory)
