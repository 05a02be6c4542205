"""The coach's own paths through coach-data draws, as next-effect RNN training material (``coach-chains``).

In a family every current holds the *target's* values of the effects it has. In the loop a current holds what
the effect CNNs predicted, so an effect that is on can still sound partly missing, and an RNN that never heard
that names a wrong next effect (shipped RNN: 0.84–0.87 in the loop against 0.956 teacher-forced). A *chain*
replays the loop on a draw: from the dry preset it turns effects on one at a time, each set by its CNN from
(target, current), and renders after each step. Most chains follow the target's own effects in step order; a
share (off the path) add effects in a random order, the target's or not, as the loop does after a wrong pick.

A chain after ``k`` ≥ 1 steps is one RNN example: the target, the currents after 0..k steps (0 = the draw's dry
render) and the effects used, labelled like a family example (:func:`models.coach.steps.rnn_label`). A chain
stops before the step that would leave the target nothing to add, so every stored prefix has a label.

A chains folder holds shards (``chains-00000.npz``, atomic) and a manifest naming the coach-data folder(s),
the coach models that set the effects and the draws used; ``coach-train --rnn-chains`` mixes the chains of its
own training draws into the RNN's batches and reports accuracy on the chains of its test draws.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic_files import write_bytes
from models.coach.families import N_SUBSETS, Families, FamilyRenderer
from models.coach.steps import DEFAULT_STEP_ORDER, ordered_effects
from models.coach.store import CoachModels, load_coach
from models.coach.suggest import DEFAULT_CANDIDATES, predict_settings
from models.errors import ReaTimbreError
from models.metrics import spectral_mse
from models.scaleout import map_tasks
from models.synth.features import CLIP_FRAMES, N_MELS, ClipFeatures, clip_features
from models.synth.profiles import EFFECT_NAMES, load_profile

CHAINS_FORMAT = "reatimbre-coach-chains/1"
MANIFEST_NAME = "chains.json"
MAX_STEPS = len(EFFECT_NAMES) - 1  # a chain never turns on the fifth effect: nothing would be left to name


@dataclass(frozen=True)
class ChainPlan:
    """One chain to render: a draw's target subset and the order its effects are tried in."""

    row: int  # family row in the Families the plans were made from
    target_mask: int
    order: tuple[int, ...]  # effect indices (EFFECT_NAMES) to apply, in order


def plan_chains(
    n_families: int,
    count: int,
    rng: np.random.Generator,
    off_path_fraction: float = 0.25,
    step_order: tuple[str, ...] = DEFAULT_STEP_ORDER,
) -> list[ChainPlan]:
    """``count`` chains over random family rows (0..``n_families``-1) and random targets with at least two effects (a
    one-effect target has no step after which anything is left to name on the path)."""
    targets = [m for m in range(1, N_SUBSETS) if bin(m).count("1") >= 2]
    plans = []
    for _ in range(count):
        row, target = int(rng.integers(n_families)), int(targets[rng.integers(len(targets))])
        if rng.random() < off_path_fraction:
            order = tuple(int(i) for i in rng.permutation(len(EFFECT_NAMES)))
        else:
            order = tuple(EFFECT_NAMES.index(name) for name in ordered_effects(target, step_order))
        plans.append(ChainPlan(row, target, order))
    return plans


def steps_with_labels(target_mask: int, order: tuple[int, ...]) -> tuple[int, ...]:
    """The prefix of ``order`` a chain applies: each step must leave the target an effect the current lacks."""
    used, applied = 0, []
    for index in order[:MAX_STEPS]:
        if not target_mask & ~(used | 1 << index):
            break
        used |= 1 << index
        applied.append(index)
    return tuple(applied)


def render_chain(
    models: CoachModels,
    renderer: FamilyRenderer,
    preset: str,
    note: int,
    target: ClipFeatures,
    dry: ClipFeatures,
    plan: ChainPlan,
) -> tuple[tuple[int, ...], np.ndarray]:
    """Apply ``plan``'s steps with CNN settings; returns the applied effect indices and the dB-mel/80 of the
    current after each of them (k, 128, 88)."""
    applied = steps_with_labels(plan.target_mask, plan.order)
    renderer.load_preset(preset)
    settings: dict[str, dict[str, float]] = {}
    current, mels = dry, []
    for index in applied:
        name = EFFECT_NAMES[index]
        best: tuple[float, dict[str, float], ClipFeatures] | None = None
        # as run_coach: the CNN's settings, and its runner-up class where it has one; the closer render stays
        for candidate in predict_settings(models, name, target, current, count=DEFAULT_CANDIDATES):
            rendered = clip_features(renderer.render({**settings, name: candidate}, note))
            error = float(spectral_mse(rendered.mel_db80, target.mel_db80))
            if best is None or error < best[0]:
                best = (error, candidate, rendered)
        if best is None:
            raise ReaTimbreError(f"the {name} CNN predicted no settings")
        _, settings[name], current = best
        mels.append(current.mel_db80)
    return applied, np.stack(mels).astype(np.float16) if mels else np.zeros((0, N_MELS, CLIP_FRAMES), np.float16)


_WORKER: dict[str, Any] = {}


def _set_worker(models: CoachModels) -> None:
    _WORKER.update(models=models, renderer=FamilyRenderer(load_profile(models.profile)))


def _render_shard_with(models_dir: str, job: dict[str, Any]) -> int:
    """:func:`_render_shard` in a worker process, which loads the coach's models on its first shard."""
    if not _WORKER:
        _set_worker(load_coach(models_dir))
    return _render_shard(job)


def _render_shard(job: dict[str, Any]) -> int:
    """Render one shard of chains and store it; returns the number of chains."""
    models, renderer = _WORKER["models"], _WORKER["renderer"]
    n = len(job["plans"])
    applied_out = np.full((n, MAX_STEPS), -1, dtype=np.int8)
    mels_out = np.zeros((n, MAX_STEPS, N_MELS, CLIP_FRAMES), dtype=np.float16)
    for i, plan in enumerate(job["plans"]):
        target = ClipFeatures(job["target_mel"][i].astype(np.float32), job["target_mfcc"][i].astype(np.float32))
        dry = ClipFeatures(job["dry_mel"][i].astype(np.float32), job["dry_mfcc"][i].astype(np.float32))
        applied, mels = render_chain(models, renderer, job["presets"][i], int(job["notes"][i]), target, dry, plan)
        applied_out[i, : len(applied)] = applied
        mels_out[i, : len(applied)] = mels
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        draw_index=np.asarray(job["draws"], dtype=np.int64),
        target_mask=np.array([p.target_mask for p in job["plans"]], dtype=np.uint8),
        applied=applied_out,
        mel_db80=mels_out,
    )
    write_bytes(job["path"], buffer.getvalue())
    return n


def shard_path(out_dir: Path, shard: int) -> Path:
    return out_dir / f"chains-{shard:05d}.npz"


def generate_chains(
    families: Families,
    models_dir: str | Path,
    out_dir: str | Path,
    count: int,
    seed: int = 0,
    off_path_fraction: float = 0.25,
    shard_chains: int = 64,
    workers: int = 1,
    manifest_extra: dict[str, Any] | None = None,
    progress: bool = True,
    step_order: tuple[str, ...] = DEFAULT_STEP_ORDER,
) -> dict[str, Any]:
    """Render ``count`` chains over ``families`` into ``out_dir`` (resumable: present shards are kept). On the
    path, chains add the target's effects in ``step_order``: the order of the RNN they will train (coach-train's),
    which may differ from the order the RNN beside ``models_dir``'s CNNs was trained in."""
    from tqdm import tqdm

    out = Path(out_dir)
    models = load_coach(models_dir)  # fail here, not in a worker, on a bad models folder
    config = {
        "count": count,
        "seed": seed,
        "off_path_fraction": off_path_fraction,
        "shard_chains": shard_chains,
        "draws": [int(d) for d in families.draw_index],
        "step_order": list(step_order),
    }
    manifest_path = out / MANIFEST_NAME
    if manifest_path.exists():
        existing = json.loads(manifest_path.read_text(encoding="utf-8"))
        if existing.get("config") != config:
            raise ReaTimbreError(f"{out} holds chains made with other settings or draws; choose another --out")
    elif out.exists() and any(out.iterdir()):
        raise ReaTimbreError(f"{out} exists and is not an empty folder or a chains folder")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"format": CHAINS_FORMAT, "config": config, "models": str(models_dir), **(manifest_extra or {})}
    write_bytes(manifest_path, json.dumps(manifest, indent=1).encode("utf-8"))
    plans = plan_chains(len(families), count, np.random.default_rng(seed), off_path_fraction, step_order)
    jobs = []
    for shard, start in enumerate(range(0, count, shard_chains)):
        path = shard_path(out, shard)
        if path.exists():
            continue
        chunk = plans[start : start + shard_chains]
        rows = np.array([p.row for p in chunk])
        masks = np.array([p.target_mask for p in chunk])
        jobs.append(
            {
                "path": str(path),
                "plans": chunk,
                "draws": families.draw_index[rows],
                "presets": [families.presets[int(i)] for i in families.preset_index[rows]],
                "notes": families.note[rows],
                "target_mel": families.mel_db80[rows, masks],
                "target_mfcc": families.mfcc[rows, masks],
                "dry_mel": families.mel_db80[rows, 0],
                "dry_mfcc": families.mfcc[rows, 0],
            }
        )
    started = time.perf_counter()
    if workers <= 1:
        _set_worker(models)  # a run in this process uses the loaded models; worker processes load models_dir once
    with tqdm(total=len(jobs) * shard_chains, unit="chain", disable=not progress, desc="coach-chains") as bar:
        counts = map_tasks(
            partial(_render_shard_with, str(models_dir)), jobs, workers=workers, on_result=lambda _i, n: bar.update(n)
        )
        done = sum(counts)
    seconds = time.perf_counter() - started
    return {"chains_rendered": done, "seconds": seconds, "chains_per_second": done / seconds if seconds else 0.0}


@dataclass
class Chains:
    """Rendered chains: ``draw_index``, ``target_mask`` (N,), ``applied`` (N, 4) effect indices (−1 = none),
    ``mel_db80`` (N, 4, 128, 88) currents after each applied step."""

    draw_index: np.ndarray
    target_mask: np.ndarray
    applied: np.ndarray
    mel_db80: np.ndarray

    def __len__(self) -> int:
        return int(self.draw_index.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return (self.applied >= 0).sum(axis=1)

    def subset(self, rows: np.ndarray) -> Chains:
        return Chains(self.draw_index[rows], self.target_mask[rows], self.applied[rows], self.mel_db80[rows])

    def on_draws(self, draws: np.ndarray) -> Chains:
        """The chains of the given draws (e.g. one split's), with at least one step (itself if that is all)."""
        keep = _on_draws(self.draw_index, self.applied, draws)
        return self if keep.all() else self.subset(np.flatnonzero(keep))


def _on_draws(draw_index: np.ndarray, applied: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Mask of the chains on ``draws`` that have at least one step."""
    return np.isin(draw_index, draws) & (applied >= 0).any(axis=1)


def load_chains(directories: str | Path | list[str | Path], draws: np.ndarray | None = None) -> Chains:
    """Every complete shard of one or more chains folders; with ``draws``, only the chains on those draws that
    have at least one step."""
    return load_chain_groups(directories, {"": draws})[""]


def load_chain_groups(
    directories: str | Path | list[str | Path], groups: dict[str, np.ndarray | None]
) -> dict[str, Chains]:
    """The chains on each group's draws (``None``: every chain), e.g. one group per train/validation/test split,
    in one pass over the shards; the spectrograms go straight into one array per group, so loading needs no
    second copy of them."""
    if isinstance(directories, (str, Path)):
        directories = [directories]
    paths: list[Path] = []
    for directory in map(Path, directories):
        try:
            manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ReaTimbreError(f"{directory} is not a coach-chains folder: {exc}") from exc
        if manifest.get("format") != CHAINS_FORMAT:
            raise ReaTimbreError(f"{directory} holds {manifest.get('format')!r}, not {CHAINS_FORMAT}")
        paths.extend(sorted(directory.glob("chains-*.npz")))
    if not paths:
        raise ReaTimbreError(f"no chains rendered yet in {', '.join(map(str, directories))}")
    small: dict[str, list[np.ndarray]] = {"draw_index": [], "target_mask": [], "applied": []}
    for path in paths:
        with np.load(path) as shard:
            for key, parts in small.items():
                parts.append(shard[key])
    keeps = {
        name: [np.ones(len(d), bool) if draws is None else _on_draws(d, a, draws)
               for d, a in zip(small["draw_index"], small["applied"], strict=True)]
        for name, draws in groups.items()
    }  # fmt: skip
    mels: dict[str, np.ndarray] = {}
    filled = dict.fromkeys(groups, 0)
    for i, path in enumerate(paths):
        wanted = [name for name in groups if keeps[name][i].any() or name not in mels]
        if not wanted:
            continue
        with np.load(path) as shard:
            mel = shard["mel_db80"]
        for name in wanted:
            rows = mel[keeps[name][i]]
            if name not in mels:
                total = sum(int(k.sum()) for k in keeps[name])
                mels[name] = np.empty((total, *mel.shape[1:]), dtype=mel.dtype)
            mels[name][filled[name] : filled[name] + len(rows)] = rows
            filled[name] += len(rows)

    def kept(key: str, name: str) -> np.ndarray:
        return np.concatenate([a[k] for a, k in zip(small[key], keeps[name], strict=True)])

    return {
        name: Chains(kept("draw_index", name), kept("target_mask", name), kept("applied", name), mels[name])
        for name in groups
    }


def sample_chain_examples(chains: Chains, count: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """One batch of chain examples: a step count ``k`` ≥ 1 (in proportion to the chains that reach it) and
    ``count`` rows of chains at least ``k`` steps long."""
    lengths = chains.lengths
    reach = np.array([(lengths >= k).sum() for k in range(1, MAX_STEPS + 1)], dtype=np.float64)
    if reach.sum() == 0:
        raise ReaTimbreError("no chain has a step")
    k = int(rng.choice(MAX_STEPS, p=reach / reach.sum())) + 1
    rows = np.flatnonzero(lengths >= k)
    return k, rows[rng.integers(len(rows), size=count)]
