"""``reatimbre match-data``: rendered clips of one synth's patches, for the multi-task VAE.

The paper's recipe, shortened to the coach's 1.01 s clips: each patch plays ``notes_per_patch`` notes drawn from
``low_note..high_note`` (C4–B4 in this project's numbering, MIDI 48–59), held ``note_seconds`` (0.75 s) and then
released inside the clip; a clip keeps its dB-mel/80 spectrogram (128 mels × 88 frames,
:mod:`models.synth.features`), its encoded parameter vector (:mod:`models.synth.spaces`), its RMS level and the
harmonic share of its HPSS split (for the timbre-group study). Clips quieter than ``min_rms_dbfs`` are dropped
(the paper drops below −20 dBFS RMS; many human amsynth presets are quieter than that at full velocity, so the
default is −40 dBFS).

Patches are the synth's human presets where it has them (amsynth), duplicates removed (identical parameter
vectors), else random patches around its defaults (:mod:`models.synth.match_synths`). Each patch goes to train,
validation or test (80/10/10 %) by a hash of its encoded parameter vector, so every clip of a patch — and any
duplicate of it — is in the same split: no preset leaks between splits. ``variations`` adds that many random
variations of each training preset (:meth:`~models.synth.spaces.ParameterSpace.varied_patch`), all in the training
split, after the presets: validation and test stay human presets, untouched.

On disk: ``manifest.json`` (config, parameter space, shards) and per shard of ``shard_patches`` patches
``shard-00000.npz`` (``mel_db80`` float16 (n, 128, 88), ``params`` float32 (n, k), ``note`` int16,
``patch_index`` int32, ``split`` uint8 (0 train, 1 validation, 2 test), ``rms_dbfs``, ``harmonic_share``) and
``shard-00000.json`` (provenance per patch, dropped clips); the JSON is written last, so a shard is complete when it
exists, and re-running the command renders only the missing shards. :func:`run_shard` is the unit of work for
local worker processes or Ray (``models.scaleout.map_tasks``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic_files import leftover_partials, write_bytes
from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.scaleout import map_tasks
from models.synth.features import CLIP_FRAMES, CLIP_SAMPLES, N_MELS, clip_features, to_mono
from models.synth.match_synths import MATCH_SYNTHS, MatchSynth, match_synth
from models.synth.spaces import ParameterSpace

MATCH_DATA_FORMAT = "reatimbre-match-data/1"
MANIFEST_NAME = "manifest.json"
SPLIT_NAMES = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class MatchDataConfig:
    """Everything that determines a match dataset's content."""

    synth: str
    patches: int = 0  # random patches to draw; for a synth with presets, at most this many (0: all)
    notes_per_patch: int = 1
    low_note: int = 48
    high_note: int = 59
    velocity: float = 1.0
    note_seconds: float = 0.75
    min_rms_dbfs: float = -40.0
    seed: int = 0
    variations: int = 0  # random variations of each training-split preset (synths with presets only)
    variation_spread: float = 0.08  # see models.synth.spaces.ParameterSpace.varied_patch
    shard_patches: int = 64
    sample_rate_hz: int = SAMPLE_RATE_HZ
    format: str = field(default=MATCH_DATA_FORMAT)

    def validate(self) -> None:
        if self.synth not in MATCH_SYNTHS:
            raise ReaTimbreError(f"unknown synth {self.synth!r}; synths: {', '.join(MATCH_SYNTHS)}")
        if self.patches < 0:
            raise ReaTimbreError(f"--patches must be 0 or more, got {self.patches}")
        if not 1 <= self.notes_per_patch <= self.high_note - self.low_note + 1:
            raise ReaTimbreError("--notes-per-patch must be 1..the number of notes in the range")
        if not 0 <= self.low_note <= self.high_note <= 127:
            raise ReaTimbreError("the note range must be MIDI notes with low <= high")
        if not 0.0 < self.note_seconds < CLIP_SAMPLES / self.sample_rate_hz:
            raise ReaTimbreError("the note must be released inside the 1.01 s clip")
        if self.shard_patches < 1:
            raise ReaTimbreError("shards need at least one patch")
        if self.variations < 0 or not 0.0 < self.variation_spread <= 1.0:
            raise ReaTimbreError("--variations must be 0 or more and --variation-spread in (0, 1]")
        if self.sample_rate_hz != SAMPLE_RATE_HZ:
            raise ReaTimbreError(f"match features are defined at {SAMPLE_RATE_HZ} Hz")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PatchPlan:
    index: int
    name: str
    values: dict[str, float]
    split: int
    notes: tuple[int, ...]


def patch_key(space: ParameterSpace, values: dict[str, float]) -> bytes:
    """What identifies a patch: its encoded vector, rounded (duplicates share it)."""
    return np.round(space.encode(values).astype(np.float64), 5).tobytes()


def split_of(key: bytes, seed: int) -> int:
    """0 train, 1 validation, 2 test: a hash of the patch key, 80/10/10."""
    u = int.from_bytes(hashlib.sha256(seed.to_bytes(8, "little", signed=True) + key).digest()[:8], "little") / 2**64
    return 0 if u < SPLIT_FRACTIONS[0] else 1 if u < SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1] else 2


def plan_patches(config: MatchDataConfig, synth: MatchSynth | None = None) -> list[PatchPlan]:
    """Every patch of the dataset, in order (deterministic)."""
    synth = synth or match_synth(config.synth)
    space = synth.space
    presets = synth.presets()
    named: list[tuple[str, dict[str, float], int]]  # name, native values, split
    if presets:
        named, seen = [], set()
        for preset in presets:
            values = space.complete(preset.values)
            key = patch_key(space, values)
            if key not in seen:
                seen.add(key)
                named.append((preset.name, values, split_of(key, config.seed)))
        if config.patches:
            named = named[: config.patches]
        named += preset_variations(config, space, named)
    else:
        if config.variations:
            raise ReaTimbreError(f"{config.synth} has no presets here to vary: --variations needs a preset synth")
        if config.patches < 1:
            raise ReaTimbreError(f"{config.synth} has no presets here: give --patches N random patches")
        named = []
        for i in range(config.patches):
            values = synth.random_patch(np.random.default_rng([config.seed, i]))
            named.append((f"random-{i}", values, split_of(patch_key(space, values), config.seed)))
    notes = np.arange(config.low_note, config.high_note + 1)
    plans = []
    for i, (name, values, split) in enumerate(named):
        rng = np.random.default_rng([config.seed, i, 1])
        chosen = tuple(int(n) for n in sorted(rng.choice(notes, config.notes_per_patch, replace=False)))
        plans.append(PatchPlan(i, name, values, split, chosen))
    return plans


def preset_variations(
    config: MatchDataConfig, space: ParameterSpace, presets: list[tuple[str, dict[str, float], int]]
) -> list[tuple[str, dict[str, float], int]]:
    """``config.variations`` random variations of each training-split preset, after all the presets (so the
    presets keep their indices and shards). A variation is in its preset's split, training, whatever its own
    hash says: validation and test hold human presets only, and nothing made from them."""
    out = []
    for i, (name, values, split) in enumerate(presets):
        if split != 0:
            continue
        for j in range(config.variations):
            rng = np.random.default_rng([config.seed, i, 2, j])
            out.append((f"{name} ~{j + 1}", space.varied_patch(values, rng, config.variation_spread), 0))
    return out


HPSS_KERNEL = 17  # median filter length in frames (harmonic) and mel bins (percussive)


def harmonic_share(mel_db80: np.ndarray) -> float:
    """Share of a clip's mel power in the harmonic part of a median-filter HPSS (Fitzgerald's, with librosa's
    soft masks of power 2), computed on the 128-band mel spectrogram: 2 ms where the STFT version takes 250."""
    from scipy.ndimage import median_filter

    power = np.power(10.0, np.asarray(mel_db80, dtype=np.float64) * 8.0)  # dB/80 → power
    harmonic = median_filter(power, size=(1, HPSS_KERNEL), mode="reflect")
    percussive = median_filter(power, size=(HPSS_KERNEL, 1), mode="reflect")
    total = harmonic**2 + percussive**2
    mask = np.divide(harmonic**2, total, out=np.full_like(total, 0.5), where=total > 0)
    return float(np.sum(power * mask) / np.sum(power)) if np.sum(power) > 0 else 0.0


def rms_dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(to_mono(audio), dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-12))


_WORKER_SYNTHS: dict[str, MatchSynth] = {}
_WORKER_PLANS: dict[MatchDataConfig, list[PatchPlan]] = {}


def worker_synth(name: str) -> MatchSynth:
    """This process's adapter of synth ``name``, made once (worker processes render many shards or clips)."""
    if name not in _WORKER_SYNTHS:
        _WORKER_SYNTHS[name] = match_synth(name)
    return _WORKER_SYNTHS[name]


def n_shards(config: MatchDataConfig, n_patches: int) -> int:
    return -(-n_patches // config.shard_patches)


def render_shard(config: MatchDataConfig, shard_index: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and provenance of one shard (depends only on the arguments, up to synths' own randomness)."""
    started = time.perf_counter()
    synth = worker_synth(config.synth)
    if config not in _WORKER_PLANS:
        _WORKER_PLANS[config] = plan_patches(config, synth)
    plans = _WORKER_PLANS[config]
    chunk = plans[shard_index * config.shard_patches : (shard_index + 1) * config.shard_patches]
    if not chunk:
        raise ReaTimbreError(f"shard {shard_index} is outside the dataset")
    rows: dict[str, list[Any]] = {
        k: [] for k in ("mel_db80", "params", "note", "patch_index", "split", "rms_dbfs", "harmonic_share")
    }
    records, dropped = [], 0
    render_seconds = CLIP_SAMPLES / config.sample_rate_hz
    for plan in chunk:
        vector = synth.space.encode(plan.values)
        record: dict[str, Any] = {"patch": plan.index, "name": plan.name, "split": SPLIT_NAMES[plan.split], "clips": []}
        for note in plan.notes:
            audio = synth.render(plan.values, note, config.velocity, config.note_seconds, render_seconds)
            level = rms_dbfs(audio)
            kept = bool(np.isfinite(audio).all() and level >= config.min_rms_dbfs)
            record["clips"].append({"note": note, "rms_dbfs": round(level, 2), "kept": kept})
            if not kept:
                dropped += 1
                continue
            mel = clip_features(audio, config.sample_rate_hz).mel_db80
            rows["mel_db80"].append(mel.astype(np.float16))
            rows["params"].append(vector)
            rows["note"].append(note)
            rows["patch_index"].append(plan.index)
            rows["split"].append(plan.split)
            rows["rms_dbfs"].append(level)
            rows["harmonic_share"].append(harmonic_share(mel))
        record["values"] = plan.values
        records.append(record)
    dtypes = {
        "mel_db80": np.float16,
        "params": np.float32,
        "note": np.int16,
        "patch_index": np.int32,
        "split": np.uint8,
        "rms_dbfs": np.float32,
        "harmonic_share": np.float32,
    }
    empty_shapes = {"mel_db80": (0, N_MELS, CLIP_FRAMES), "params": (0, synth.space.size)}
    arrays = {
        key: np.asarray(values, dtype=dtypes[key])
        if values
        else np.zeros(empty_shapes.get(key, (0,)), dtype=dtypes[key])
        for key, values in rows.items()
    }
    provenance = {
        "format": MATCH_DATA_FORMAT,
        "shard": shard_index,
        "config": config.to_json(),
        "clips_kept": int(len(arrays["note"])),
        "clips_dropped_quiet": dropped,
        "render_seconds": round(time.perf_counter() - started, 3),
        "patches": records,
    }
    return arrays, provenance


def shard_paths(out_dir: Path, shard_index: int) -> tuple[Path, Path]:
    stem = out_dir / f"shard-{shard_index:05d}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def run_shard(config: MatchDataConfig, shard_index: int, out_dir: str) -> int:
    """Render and store one shard (npz, then the JSON that marks it complete); returns its patch count."""
    arrays, provenance = render_shard(config, shard_index)
    npz_path, json_path = shard_paths(Path(out_dir), shard_index)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    write_bytes(npz_path, buffer.getvalue(), make_parents=True)
    write_bytes(json_path, json.dumps(provenance, indent=1).encode("utf-8"), make_parents=True)
    return len(provenance["patches"])


def _run_shard_star(args: tuple[MatchDataConfig, int, str]) -> int:
    return run_shard(*args)


def _manifest(config: MatchDataConfig, synth: MatchSynth, n_patches: int) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": MATCH_DATA_FORMAT,
        "config": config.to_json(),
        "synth": synth.name,
        "method": synth.method,
        "space": synth.space.to_json(),
        "patches": n_patches,
        "source": "presets" if synth.presets() else "random patches",
        "n_shards": n_shards(config, n_patches),
        "split_fractions": list(SPLIT_FRACTIONS),
        "features": {"mel_db80": [N_MELS, CLIP_FRAMES], "clip_samples": CLIP_SAMPLES},
    }
    render = synth.render_settings()
    if render:  # only where there are any, so that folders of the other synths made before it still resume
        manifest["render"] = render
    return manifest


def prepare_output(config: MatchDataConfig, out_dir: Path, manifest: dict[str, Any]) -> list[int]:
    """Create or check ``out_dir``; the shard indices still to render (a folder of other data is refused)."""
    manifest_path = out_dir / MANIFEST_NAME
    if manifest_path.exists():
        try:
            existing = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ReaTimbreError(f"{manifest_path} is unreadable: {exc}") from exc
        if existing != manifest:
            raise ReaTimbreError(f"{out_dir} holds match data made with other settings; choose another --out folder")
    else:
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise ReaTimbreError(f"{out_dir} exists and is not an empty folder or a match dataset")
        write_bytes(manifest_path, json.dumps(manifest, indent=1).encode("utf-8"), make_parents=True)
    for stale in leftover_partials(out_dir, "shard-"):
        stale.unlink(missing_ok=True)
    return [i for i in range(manifest["n_shards"]) if not all(p.exists() for p in shard_paths(out_dir, i))]


def generate(
    config: MatchDataConfig,
    out_dir: str | Path,
    workers: int | None = None,
    progress: bool = True,
    run_elsewhere: Callable[..., list[int]] | None = None,
) -> dict[str, Any]:
    """Render every missing shard into ``out_dir`` (worker processes, or ``run_elsewhere`` such as Ray)."""
    from tqdm import tqdm

    config.validate()
    synth = match_synth(config.synth)
    n_patches = len(plan_patches(config, synth))
    out = Path(out_dir)
    todo = prepare_output(config, out, _manifest(config, synth, n_patches))
    workers = max(1, min(workers or os.cpu_count() or 1, max(1, len(todo))))
    done_before = n_patches - sum(
        len(range(i * config.shard_patches, min((i + 1) * config.shard_patches, n_patches))) for i in todo
    )
    started = time.perf_counter()
    desc = f"match-data {config.synth}"
    with tqdm(total=n_patches, initial=done_before, unit="patch", disable=not progress, desc=desc) as bar:
        jobs = [(config, i, str(out)) for i in todo]

        def shard_done(_index: int, count: int) -> None:
            bar.update(count)

        if run_elsewhere is not None:
            rendered = sum(run_elsewhere(_run_shard_star, jobs, on_result=shard_done))
        else:
            rendered = sum(map_tasks(_run_shard_star, jobs, workers=workers, on_result=shard_done))
    seconds = time.perf_counter() - started
    return {
        "patches_rendered": rendered,
        "patches_present_before": done_before,
        "shards": n_shards(config, n_patches),
        "seconds": seconds,
        "workers": "Ray" if run_elsewhere is not None else workers,
    }


@dataclass
class MatchData:
    """One synth's stored clips (every complete shard), as arrays."""

    synth: str
    space: dict[str, Any]
    mel_db80: np.ndarray  # float16 (n, 128, 88)
    params: np.ndarray  # float32 (n, k)
    note: np.ndarray
    patch_index: np.ndarray
    split: np.ndarray
    harmonic_share: np.ndarray
    patch_values: dict[int, dict[str, float]]
    folder: str

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == SPLIT_NAMES.index(split))


def load_match_data(folder: str | Path) -> MatchData:
    """Read a match-data folder (complete shards only)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaTimbreError(f"{folder} is not a match-data folder: {exc}") from exc
    if manifest.get("format") != MATCH_DATA_FORMAT:
        raise ReaTimbreError(f"{folder} is not a match-data folder")
    parts: dict[str, list[np.ndarray]] = {}
    values: dict[int, dict[str, float]] = {}
    for i in range(int(manifest["n_shards"])):
        npz_path, json_path = shard_paths(folder, i)
        if not json_path.exists():
            continue
        try:
            provenance = json.loads(json_path.read_text(encoding="utf-8"))
            with np.load(npz_path) as data:
                for key in data.files:
                    parts.setdefault(key, []).append(data[key])
        except (OSError, ValueError) as exc:
            raise ReaTimbreError(f"cannot read shard {i} of {folder}: {exc}") from exc
        for record in provenance["patches"]:
            values[int(record["patch"])] = {str(k): float(v) for k, v in record["values"].items()}
    if not parts or not sum(len(p) for p in parts["note"]):
        raise ReaTimbreError(f"{folder} holds no rendered clips yet")
    joined = {key: np.concatenate(arrays) for key, arrays in parts.items()}
    return MatchData(
        synth=str(manifest["synth"]),
        space=manifest["space"],
        mel_db80=joined["mel_db80"],
        params=joined["params"],
        note=joined["note"],
        patch_index=joined["patch_index"],
        split=joined["split"],
        harmonic_share=joined["harmonic_share"],
        patch_values=values,
        folder=str(folder),
    )
