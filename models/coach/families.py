"""Coach training material: effect "families" rendered on Vital.

A family is one preset, one note and one random setting of all five coach effects (SerumRNN's sampling
ranges, :meth:`models.synth.profiles.Effect.sample`), rendered once for each of the 32 subsets of the effects
(subset ``mask``: bit ``i`` set = ``EFFECT_NAMES[i]`` on with the family's values). Because the 32 clips share
their values, any two subsets of a family form a (target, current) pair of the kind the coach meets: the
current sound is the target with some effects not yet applied (SerumRNN's Cartesian product of pairs).
The independent clips of :mod:`models.synth.dataset` cannot give such pairs; rendering, presets and
features are that module's (:class:`~models.synth.vital.VitalSynth`, :mod:`~models.synth.presets`,
:func:`~models.synth.features.clip_features`).

On disk (``DIR``): ``manifest.json`` (the config) and ``chunk-00000.npz`` … holding ``mel_db80`` float16
(F, 32, 128, 88), ``mfcc`` float16 (F, 32, 30, 88), ``values`` float32 (F, n_params) in paper space (columns
of :func:`models.synth.dataset.param_columns`), ``preset_index`` and ``note``. Chunks are written atomically
and a re-run renders only missing chunks.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ReaTimbreError
from models.synth import presets as preset_data
from models.synth.base import write_atomic
from models.synth.dataset import param_columns
from models.synth.features import CLIP_FRAMES, CLIP_SAMPLES, N_MELS, N_MFCC, clip_features
from models.synth.profiles import EFFECT_NAMES, EffectProfile, load_profile

FAMILY_FORMAT = "reatimbre-coach-families/1"
MANIFEST_NAME = "manifest.json"
N_SUBSETS = 1 << len(EFFECT_NAMES)
Settings = dict[str, dict[str, float]]


def subset_mask(effects: Iterable[str]) -> int:
    """Bit mask of a set of effect names (bit i = ``EFFECT_NAMES[i]``)."""
    mask = 0
    for name in effects:
        if name not in EFFECT_NAMES:
            raise ReaTimbreError(f"unknown effect {name!r}; the coach's effects are {', '.join(EFFECT_NAMES)}")
        mask |= 1 << EFFECT_NAMES.index(name)
    return mask


def subset_effects(mask: int) -> tuple[str, ...]:
    """Effect names in a bit mask, in :data:`EFFECT_NAMES` order."""
    return tuple(name for i, name in enumerate(EFFECT_NAMES) if mask >> i & 1)


@dataclass(frozen=True)
class FamilyConfig:
    """Everything that determines a family set (the output folder is not part of it)."""

    families: int
    seed: int = 0
    note: int = 48
    other_note_fraction: float = 0.0
    other_note_range: tuple[int, int] = (36, 67)
    presets: tuple[str, ...] = ()
    chunk_families: int = 8
    profile: str = "vital"
    format: str = field(default=FAMILY_FORMAT)

    def preset_list(self) -> list[str]:
        return list(self.presets) or preset_data.preset_names()

    def validate(self) -> None:
        """Raise :class:`ReaTimbreError` naming the first bad field."""
        if self.families < 1:
            raise ReaTimbreError(f"need at least 1 family, got {self.families}")
        if self.chunk_families < 1:
            raise ReaTimbreError(f"chunk size must be at least 1 family, got {self.chunk_families}")
        if not 0 <= self.note <= 127 or not 0 <= self.other_note_range[0] <= self.other_note_range[1] <= 127:
            raise ReaTimbreError("notes must be MIDI notes 0..127")
        if not 0.0 <= self.other_note_fraction <= 1.0:
            raise ReaTimbreError(f"other-note fraction must be 0..1, got {self.other_note_fraction}")
        for name in self.preset_list():
            preset_data.preset_spec(name)
        if load_profile(self.profile).synth != "vital":
            raise ReaTimbreError("families are rendered on Vital; choose a Vital profile")

    @property
    def n_chunks(self) -> int:
        return -(-self.families // self.chunk_families)

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["other_note_range"] = list(self.other_note_range)
        raw["presets"] = list(self.presets)
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FamilyConfig:
        raw = dict(raw)
        raw["other_note_range"] = tuple(raw["other_note_range"])
        raw["presets"] = tuple(raw["presets"])
        return cls(**raw)


@dataclass(frozen=True)
class FamilyPlan:
    """What family ``index`` renders."""

    index: int
    preset: str
    note: int
    settings: Settings


def plan_family(config: FamilyConfig, index: int, profile: EffectProfile | None = None) -> FamilyPlan:
    """The deterministic plan of family ``index``: preset round-robin, note, values of all five effects."""
    profile = profile or load_profile(config.profile)
    presets = config.preset_list()
    rng = np.random.default_rng([config.seed, index, 0xC0AC])
    note = config.note
    if rng.random() < config.other_note_fraction:
        note = int(rng.integers(config.other_note_range[0], config.other_note_range[1] + 1))
    settings = {effect.name: effect.sample(rng) for effect in profile.effects}
    return FamilyPlan(index, presets[index % len(presets)], note, settings)


class FamilyRenderer:
    """One Vital instance that renders a preset with any subset of a family's effect settings."""

    def __init__(self, profile: EffectProfile) -> None:
        from models.synth.vital import VitalSynth

        self.profile = profile
        self.synth = VitalSynth()
        self._init_patch = self.synth.patch_json()
        self._preset: str | None = None

    def load_preset(self, preset: str) -> None:
        if preset != self._preset:
            self.synth.load_patch_json(preset_data.build_preset_patch(preset, self._init_patch))
            self._preset = preset

    def render(self, settings: Settings, note: int) -> np.ndarray:
        """Stereo clip (2, CLIP_SAMPLES) of the loaded preset with exactly ``settings``' effects on."""
        self.synth.set_controls(self.profile.controls(settings))
        return self.synth.render(note, 1.0, 1.0, CLIP_SAMPLES / self.synth.sample_rate_hz)

    def render_family(self, plan: FamilyPlan) -> tuple[np.ndarray, np.ndarray]:
        """Features of all 32 subsets: mel_db80 (32, 128, 88) and mfcc (32, 30, 88), float16."""
        self.load_preset(plan.preset)
        mel = np.empty((N_SUBSETS, N_MELS, CLIP_FRAMES), dtype=np.float16)
        mfcc = np.empty((N_SUBSETS, N_MFCC, CLIP_FRAMES), dtype=np.float16)
        for mask in range(N_SUBSETS):
            settings = {name: plan.settings[name] for name in subset_effects(mask)}
            features = clip_features(self.render(settings, plan.note))
            mel[mask] = features.mel_db80
            mfcc[mask] = features.mfcc
        return mel, mfcc


_RENDERERS: dict[str, FamilyRenderer] = {}


def _renderer(profile_name: str) -> FamilyRenderer:
    if profile_name not in _RENDERERS:
        _RENDERERS[profile_name] = FamilyRenderer(load_profile(profile_name))
    return _RENDERERS[profile_name]


def profile_checksum(profile_name: str) -> str:
    """SHA-256 of the profile's parsed JSON (families depend on its classes and sampling ranges)."""
    raw = load_profile(profile_name).source
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode("utf-8")).hexdigest()


def chunk_path(out_dir: Path, chunk: int) -> Path:
    return out_dir / f"chunk-{chunk:05d}.npz"


def render_chunk(config: FamilyConfig, chunk: int, out_dir: str) -> int:
    """Render and store one chunk of families (atomically); returns its family count."""
    profile = load_profile(config.profile)
    renderer = _renderer(config.profile)
    columns = param_columns(profile)
    presets = config.preset_list()
    indices = range(chunk * config.chunk_families, min((chunk + 1) * config.chunk_families, config.families))
    plans = [plan_family(config, i, profile) for i in indices]
    plans.sort(key=lambda p: (presets.index(p.preset), p.index))  # one preset load per preset per chunk
    mels, mfccs = zip(*(renderer.render_family(plan) for plan in plans), strict=True)
    values = np.array(
        [[plan.settings[col.split(".")[0]][col.split(".")[1]] for col in columns] for plan in plans], np.float32
    )
    arrays = {
        "mel_db80": np.stack(mels),
        "mfcc": np.stack(mfccs),
        "values": values,
        "preset_index": np.array([presets.index(p.preset) for p in plans], np.int16),
        "note": np.array([p.note for p in plans], np.int16),
        "family_index": np.array([p.index for p in plans], np.int64),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(chunk_path(Path(out_dir), chunk), buffer.getvalue())
    return len(plans)


def _render_chunk_star(args: tuple[FamilyConfig, int, str]) -> int:
    return render_chunk(*args)


def prepare_output(config: FamilyConfig, out_dir: Path) -> list[int]:
    """Create or check ``out_dir`` (refusing one made with other settings); the chunks still to render."""
    manifest = out_dir / MANIFEST_NAME
    if manifest.exists():
        try:
            existing = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ReaTimbreError(f"{manifest} is unreadable: {exc}") from exc
        if existing.get("config") != config.to_json():
            raise ReaTimbreError(f"{out_dir} holds coach families made with other settings; choose another folder")
        if existing.get("profile_sha256") != profile_checksum(config.profile):
            raise ReaTimbreError(f"{out_dir} was rendered with another version of the {config.profile} profile")
    else:
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise ReaTimbreError(f"{out_dir} exists and is not an empty folder or a coach family set")
        profile = load_profile(config.profile)
        body = {
            "format": FAMILY_FORMAT,
            "config": config.to_json(),
            "effects": list(EFFECT_NAMES),
            "presets": config.preset_list(),
            "param_columns": param_columns(profile),
            "profile_sha256": profile_checksum(config.profile),
        }
        write_atomic(manifest, json.dumps(body, indent=1).encode("utf-8"))
    return [c for c in range(config.n_chunks) if not chunk_path(out_dir, c).exists()]


def generate_families(
    config: FamilyConfig, out_dir: str | Path, workers: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Render every missing chunk of ``config`` into ``out_dir`` with ``workers`` processes."""
    from tqdm import tqdm

    config.validate()
    out = Path(out_dir)
    todo = prepare_output(config, out)
    workers = max(1, min(workers or os.cpu_count() or 1, max(1, len(todo))))
    started = time.perf_counter()
    rendered = 0
    jobs = [(config, chunk, str(out)) for chunk in todo]
    with tqdm(total=len(jobs) * config.chunk_families, unit="family", disable=not progress, desc="families") as bar:
        pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
        try:
            results = pool.imap_unordered(_render_chunk_star, jobs) if pool else map(_render_chunk_star, jobs)
            for count in results:
                rendered += count
                bar.update(count)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    seconds = time.perf_counter() - started
    return {"families_rendered": rendered, "seconds": seconds, "clips": rendered * N_SUBSETS, "workers": workers}


@dataclass
class Families:
    """Loaded family arrays (see the module docstring) and their column names."""

    mel_db80: np.ndarray
    mfcc: np.ndarray
    values: np.ndarray
    preset_index: np.ndarray
    note: np.ndarray
    columns: list[str]
    presets: list[str]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def subset(self, rows: np.ndarray) -> Families:
        return Families(
            self.mel_db80[rows],
            self.mfcc[rows],
            self.values[rows],
            self.preset_index[rows],
            self.note[rows],
            self.columns,
            self.presets,
        )


def load_families(directory: str | Path) -> Families:
    """Every complete chunk of a family folder, concatenated in chunk order."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaTimbreError(f"{directory} is not a coach family set: {exc}") from exc
    parts: dict[str, list[np.ndarray]] = {}
    for path in sorted(directory.glob("chunk-*.npz")):
        with np.load(path) as data:
            for key in data.files:
                parts.setdefault(key, []).append(data[key])
    if not parts:
        raise ReaTimbreError(f"{directory} holds no rendered families yet")
    arrays = {key: np.concatenate(value) for key, value in parts.items()}
    return Families(
        arrays["mel_db80"],
        arrays["mfcc"],
        arrays["values"],
        arrays["preset_index"],
        arrays["note"],
        list(manifest["param_columns"]),
        list(manifest["presets"]),
    )
