"""The model library: shipped models in ``models/weights`` and user models in the per-user data directory.

A model is two files side by side: ``NAME.safetensors`` (the weights; loading it executes no code) and
``NAME.json``, the sidecar that says what the model is: architecture, sample rate, receptive field and latency,
knobs, what real effect it emulates, how it was trained and how well it does on held-out audio.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from models.atomic_files import atomic_path, write_text
from models.errors import ReaTimbreError
from models.knobs import Knob, resolve_knobs
from models.networks import BlockStream, architecture_record, build_network, model_device
from models.tcn import TCNConfig
from models.userdirs import SHIPPED_DIR, user_models_dir

SIDECAR_FORMAT = "reatimbre-effect-model/1"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # always used with fullmatch
RENDER_BLOCK_SAMPLES = 16_384  # fastest block size for these widths on a 2-core CPU (benchmarks/render_speed.py)
CUDA_BLOCK_SAMPLES = 131_072  # on CUDA: long blocks, few kernel launches (exact at any size, see TCNStream)


def block_samples_for(device: torch.device) -> int:
    """The block length that renders fastest on ``device``: the CPU's cache-sized blocks, or long ones on CUDA."""
    return CUDA_BLOCK_SAMPLES if device.type == "cuda" else RENDER_BLOCK_SAMPLES


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name (letters, digits, ``-``, ``_``; at most 64), else an error."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ReaTimbreError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class ModelInfo:
    """What a model's sidecar says, plus where it lives."""

    name: str
    kind: str  # "shipped" or "user"
    weights_path: Path
    sidecar: dict

    @property
    def description(self) -> str:
        return self.sidecar.get("description", "")

    @property
    def sample_rate(self) -> int:
        return int(self.sidecar["sample_rate"])

    @property
    def network_type(self) -> str:
        """The sidecar's architecture type (see :mod:`models.networks`)."""
        return str(self.sidecar["architecture"]["type"])

    @property
    def config(self) -> TCNConfig:
        """The TCN settings of a ``ConditionedTCN`` model (a ValueError for other network types)."""
        if self.network_type != "ConditionedTCN":
            raise ValueError(f"model {self.name!r} is a {self.network_type}, not a ConditionedTCN")
        arch = dict(self.sidecar["architecture"])
        arch.pop("type", None)
        return TCNConfig(**arch)

    def build(self) -> torch.nn.Module:
        """A freshly initialised network of this model's architecture."""
        return build_network(self.sidecar["architecture"])

    @property
    def knobs(self) -> list[Knob]:
        return [Knob.from_dict(k) for k in self.sidecar["knobs"]]

    @property
    def receptive_field(self) -> int:
        return int(self.sidecar["receptive_field_samples"])

    @property
    def latency_samples(self) -> int:
        return int(self.sidecar.get("latency_samples", 0))

    @property
    def tail_seconds(self) -> float:
        return float(self.sidecar.get("tail_seconds", 0.0))

    @property
    def quality_warnings(self) -> list[str]:
        """One line per recorded evaluation whose goals this model misses (``meets_goals: false`` in a block of the
        sidecar's ``metrics``, or in its ``summary``): shown wherever the model is listed or rendered, so a model
        below its goals is never handed over silently."""
        warnings = []
        for block_name, block in (self.sidecar.get("metrics") or {}).items():
            if not isinstance(block, dict):
                continue
            summary = block["summary"] if isinstance(block.get("summary"), dict) else block
            if summary.get("meets_goals") is False:
                warnings.append(f"{self.name} misses the goals of its {block_name} evaluation{_goal_details(summary)}")
        return warnings

    def to_dict(self) -> dict:
        """The summary the CLI and the server show."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "sample_rate": self.sample_rate,
            "receptive_field_samples": self.receptive_field,
            "latency_samples": self.latency_samples,
            "network": self.network_type,
            "tail_seconds": self.tail_seconds,
            "knobs": [
                {"name": k.name, "unit": k.unit, "min": k.minimum, "max": k.maximum, "default": k.default}
                for k in self.knobs
            ],
            "heldout": self.sidecar.get("metrics", {}).get("heldout"),
            "quality_warnings": self.quality_warnings,
        }


def _goal_details(summary: dict) -> str:
    """The figures of a goal summary worth quoting in a warning (MR-STFT ratio to dry, loudness error)."""
    parts = []
    if isinstance(summary.get("geometric_mean_ratio"), (int, float)):
        goal = summary.get("goal_ratio")
        goal_text = f", goal {goal:g}" if isinstance(goal, (int, float)) else ""
        parts.append(f"MR-STFT {summary['geometric_mean_ratio']:.2f} of the dry input's{goal_text}")
    if isinstance(summary.get("max_loudness_error_db"), (int, float)):
        parts.append(f"loudness off by up to {summary['max_loudness_error_db']:.1f} dB")
    if isinstance(summary.get("loudness_max_error_lu"), (int, float)):
        parts.append(f"loudness off the real effect's by up to {summary['loudness_max_error_lu']:.1f} LU")
    if isinstance(summary.get("t60_max_relative_error"), (int, float)):
        parts.append(f"decay time off by up to {summary['t60_max_relative_error']:.0%}")
    return f" ({'; '.join(parts)})" if parts else ""


_TIMING_LOCK = threading.Lock()


def _network_timing(architecture_json: str) -> tuple[int, int]:
    """(receptive field, latency) in samples of the network an architecture record describes: built once per
    distinct record and one at a time, since every server job lists the models and some networks (a reverb's
    4-second tail) allocate long buffers when built: sixteen threads building at once grew the server by 300 MiB."""
    with _TIMING_LOCK:
        return _built_network_timing(architecture_json)


@functools.lru_cache(maxsize=256)
def _built_network_timing(architecture_json: str) -> tuple[int, int]:
    network = build_network(json.loads(architecture_json))
    return int(network.receptive_field), int(network.latency_samples)  # type: ignore[arg-type]


def read_info(sidecar_path: Path, kind: str) -> ModelInfo:
    """Read and check one model's sidecar (and that its weights file exists)."""
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaTimbreError(f"model sidecar {sidecar_path} is unreadable: {exc}") from None
    weights = sidecar_path.with_suffix(".safetensors")
    info = ModelInfo(name=sidecar_path.stem, kind=kind, weights_path=weights, sidecar=sidecar)
    try:
        if sidecar.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"format is {sidecar.get('format')!r}, expected {SIDECAR_FORMAT!r}")
        receptive_field, latency = _network_timing(json.dumps(sidecar["architecture"], sort_keys=True))
        if receptive_field != info.receptive_field:
            raise ValueError("receptive field does not match the architecture")
        if latency != info.latency_samples:
            raise ValueError("latency does not match the architecture")
        info.knobs, info.sample_rate  # noqa: B018 - validate that these parse
        if not weights.is_file():
            raise ValueError(f"weights file {weights.name} is missing")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReaTimbreError(f"model {sidecar_path.stem!r} ({sidecar_path}) is damaged: {exc}") from None
    return info


def scan_models() -> tuple[list[ModelInfo], list[str]]:
    """All usable models (shipped first, then user models) and one line per damaged model found."""
    found: dict[str, ModelInfo] = {}
    problems: list[str] = []
    for kind, directory in (("shipped", SHIPPED_DIR), ("user", user_models_dir())):
        if not directory.is_dir():
            continue
        for sidecar in sorted(directory.glob("*.json")):
            try:
                info = read_info(sidecar, kind)
            except ReaTimbreError as exc:
                problems.append(str(exc))
                continue
            if info.name in found:
                problems.append(f"user model {info.name!r} is hidden by a shipped model of the same name")
                continue
            found[info.name] = info
    return list(found.values()), problems


def list_models() -> list[ModelInfo]:
    """All usable models, shipped first."""
    return scan_models()[0]


def find_model(name: str) -> ModelInfo:
    """The model called ``name``, or an error listing the installed ones."""
    models = {m.name: m for m in list_models()}
    if name not in models:
        raise ReaTimbreError(f"unknown effect {name!r} (installed: {', '.join(models) or 'none'})")
    return models[name]


class NeuralEffect:
    """A loaded model with its knobs: turns knob values into renders."""

    def __init__(self, info: ModelInfo, model: torch.nn.Module):
        self.info = info
        self.model = model.eval()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def control_vector(self, knob_values: dict[str, float] | None) -> torch.Tensor:
        """The network's control input for these knob values (checked; defaults fill the rest)."""
        values = resolve_knobs(self.info.knobs, knob_values)
        return torch.tensor([k.control(values[k.name]) for k in self.info.knobs], dtype=torch.float32)

    def stream(self, knob_values: dict[str, float] | None = None) -> BlockStream:
        """A block renderer for these knob values (its output lags by :attr:`latency_samples`)."""
        return self.model.stream(self.control_vector(knob_values))  # type: ignore[operator]

    @property
    def latency_samples(self) -> int:
        """How many samples the network's output lags its input (renderers compensate it)."""
        return self.info.latency_samples

    def process(self, audio: np.ndarray, knob_values: dict[str, float] | None = None) -> np.ndarray:
        """Render ``audio`` (channels, samples) at the model's sample rate, on the model's device; returns the same
        shape (a NumPy array), lined up with the input sample for sample: ``latency_samples`` of silence are fed
        after the input and as many samples are dropped from the start of the output."""
        return render_stream(self.stream(knob_values), audio, self.latency_samples, self.device)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return model_device(self.model)


def render_stream(
    stream: BlockStream, audio: np.ndarray, latency_samples: int, device: torch.device | str = "cpu"
) -> np.ndarray:
    """``audio`` (channels, samples) through a network's block renderer, lined up with the input: ``latency_samples``
    of silence are fed after it and as many samples dropped from the start of the output. Same shape out."""
    signal = np.ascontiguousarray(audio, dtype=np.float32)
    padded = np.pad(signal, ((0, 0), (0, latency_samples))) if latency_samples and signal.shape[-1] else signal
    x = torch.from_numpy(padded)[:, None, :].to(device)
    blocks = [stream.process(x[..., i : i + RENDER_BLOCK_SAMPLES]) for i in range(0, x.shape[-1], RENDER_BLOCK_SAMPLES)]
    if not blocks:
        return np.zeros_like(signal)
    return torch.cat(blocks, dim=-1)[:, 0, latency_samples:].cpu().numpy()


def load_model(name: str, device: torch.device | str = "cpu") -> NeuralEffect:
    """Load the model called ``name`` onto ``device`` (weights via safetensors: no code runs)."""
    return load_info(find_model(name), device)


def load_info(info: ModelInfo, device: torch.device | str = "cpu") -> NeuralEffect:
    """Load the model an info describes onto ``device`` (weights saved on any device load on any other)."""
    try:
        model = info.build()
        state = load_file(str(info.weights_path))  # onto the CPU, whatever device the weights were saved from
        model.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ReaTimbreError(f"model {info.name!r} could not be loaded from {info.weights_path}: {exc}") from None
    return NeuralEffect(info, model.to(device))


def save_model(model: torch.nn.Module, sidecar: dict, directory: Path, name: str) -> ModelInfo:
    """Write ``NAME.safetensors`` and ``NAME.json`` into ``directory`` atomically (weights first)."""
    check_model_name(name)
    directory.mkdir(parents=True, exist_ok=True)
    sidecar = {
        "format": SIDECAR_FORMAT,
        "name": name,
        **sidecar,
        "architecture": architecture_record(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        "receptive_field_samples": model.receptive_field,
        "latency_samples": model.latency_samples,
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(directory / f"{name}.safetensors") as tmp:
        save_file(state, str(tmp))
    write_text(directory / f"{name}.json", json.dumps(sidecar, indent=2) + "\n")
    return read_info(directory / f"{name}.json", "shipped" if directory == SHIPPED_DIR else "user")
