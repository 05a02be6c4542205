"""Coach training material as *families*: the draws of ``reatimbre coach-data`` (:mod:`models.synth.dataset`).

A draw is one preset, one note and one random setting of all five coach effects, rendered under each of the
32 effect subsets (subset ``mask``: bit ``i`` set = ``EFFECT_NAMES[i]`` on with the draw's values). Because the
32 clips share their values, any two subsets of a draw form a (target, current) pair of the kind the coach
meets: the current sound is the target with some effects not yet applied (SerumRNN's Cartesian product).
:func:`load_families` arranges the complete draws of one or more coach-data folders as arrays indexed
``[family, mask]``; :class:`FamilyRenderer` renders one preset with any effect settings (evaluation targets).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ReaTimbreError
from models.synth import presets as preset_data
from models.synth.dataset import MANIFEST_NAME, load_shard, shard_paths
from models.synth.features import CLIP_FRAMES, CLIP_SAMPLES, N_MELS, N_MFCC
from models.synth.profiles import EFFECT_NAMES, EffectProfile

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


class FamilyRenderer:
    """One Vital instance that renders a shipped preset with any subset of effect settings."""

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

    def load_patch(self, patch: dict[str, Any]) -> None:
        """Load any ``.vital`` patch (JSON object) instead of a shipped preset."""
        self.synth.load_patch_json(patch)
        self._preset = None

    def render(self, settings: Settings, note: int) -> np.ndarray:
        """Stereo clip (2, CLIP_SAMPLES) of the loaded preset with exactly ``settings``' effects on."""
        self.synth.set_controls(self.profile.controls(settings))
        return self.synth.render(note, 1.0, 1.0, CLIP_SAMPLES / self.synth.sample_rate_hz)


@dataclass
class Families:
    """Complete draws as arrays: ``mel_db80`` (F, 32, 128, 88) and ``mfcc`` (F, 32, 30, 88) float16,
    ``values`` (F, n_params) float32 in paper space (columns ``columns``), ``preset_index``, ``note`` and
    ``draw_index`` (F,): the draw's number in its coach-data folder. Memory-mapped draws
    (:attr:`memory_mapped`) hold the two clip arrays as ``np.memmap`` or :class:`RowView`, indexed the same way."""

    mel_db80: np.ndarray | RowView
    mfcc: np.ndarray | RowView
    values: np.ndarray
    preset_index: np.ndarray
    note: np.ndarray
    columns: list[str]
    presets: list[str]
    draw_index: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def memory_mapped(self) -> bool:
        """Whether the clips are read from disk (:mod:`models.coach.family_cache`) rather than held in memory."""
        return isinstance(self.mel_db80, (np.memmap, RowView))

    def subset(self, rows: np.ndarray | slice) -> Families:
        """The families at ``rows``: copies for an index array, views (no copy) for a slice; memory-mapped
        clips are never copied (an index array gives a :class:`RowView`)."""
        mel: np.ndarray | RowView
        mfcc: np.ndarray | RowView
        if self.memory_mapped and not isinstance(rows, slice):
            mel, mfcc = RowView(self.mel_db80, rows), RowView(self.mfcc, rows)
        else:
            mel, mfcc = self.mel_db80[rows], self.mfcc[rows]
        return Families(
            mel,
            mfcc,
            self.values[rows],
            self.preset_index[rows],
            self.note[rows],
            self.columns,
            self.presets,
            self.draw_index[rows],
        )

    def reorder_in_place(self, order: np.ndarray) -> None:
        """Rearrange the families so that row ``i`` holds what row ``order[i]`` held, moving one family at a
        time (the clips are never held twice; a full copy of 10,000 draws would need 9 GB more)."""
        if self.memory_mapped:
            raise ReaTimbreError("memory-mapped families are read-only; take subset(rows) instead of reordering")
        order = np.asarray(order, dtype=np.int64)
        if sorted(order.tolist()) != list(range(len(self))):
            raise ValueError("order must be a permutation of the families")
        for name in ("values", "preset_index", "note", "draw_index"):
            setattr(self, name, getattr(self, name)[order])
        for big in (self.mel_db80, self.mfcc):
            assert isinstance(big, np.ndarray)  # not memory-mapped, so the clips are arrays in memory
            _permute_rows(big, order)


class RowView:
    """Rows ``rows`` of a large (memory-mapped) array, indexed like the array itself without copying it: the
    first index picks among ``rows``; only what an index selects is read."""

    def __init__(self, base: np.ndarray | RowView, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if isinstance(base, RowView):  # a view of a view indexes the same big array
            rows = base.rows[rows]
            base = base.base
        self.base: np.ndarray = base
        self.rows: np.ndarray = rows

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray | RowView:
        first, *rest = key if isinstance(key, tuple) else (key,)
        if isinstance(first, slice):
            if not rest:
                return RowView(self.base, self.rows[first])
            return np.asarray(self.base[self.rows[first]])[(slice(None), *rest)]
        return np.asarray(self.base[(self.rows[first], *rest)])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.base[self.rows])
        return out if dtype is None else out.astype(dtype)


def _permute_rows(array: np.ndarray, order: np.ndarray) -> None:
    """``array[:] = array[order]`` in place, following each cycle of the permutation with one spare row."""
    done = np.zeros(len(order), dtype=bool)
    for start in range(len(order)):
        if done[start] or order[start] == start:
            done[start] = True
            continue
        spare = array[start].copy()
        row = start
        while order[row] != start:
            array[row] = array[order[row]]
            done[row] = True
            row = int(order[row])
        array[row] = spare
        done[row] = True


def _gather(chunks: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """``np.concatenate(chunks)[rows]`` without holding both: each chunk is released once copied."""
    out = np.empty((len(rows), *chunks[0].shape[1:]), dtype=chunks[0].dtype)
    destination = np.full(sum(len(c) for c in chunks), -1, dtype=np.int64)
    destination[rows] = np.arange(len(rows))
    start = 0
    for i, chunk in enumerate(chunks):
        where = destination[start : start + len(chunk)]
        wanted = where >= 0
        out[where[wanted]] = chunk[wanted]
        start += len(chunk)
        chunks[i] = np.empty((0, *chunk.shape[1:]), dtype=chunk.dtype)  # released (a [:0] view would keep it)
    return out


def draws_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a coach-data folder of draws (format /2), or a one-line error."""
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReaTimbreError(f"{directory} is not a coach-data folder: {exc}") from exc
    if not str(manifest.get("format", "")).endswith("/2"):
        raise ReaTimbreError(f"{directory} holds coach-data of format {manifest.get('format')!r}; need draws (/2)")
    return manifest


def _load_folder(directory: Path, max_draws: int | None = None, with_mfcc: bool = True) -> Families | None:
    manifest = draws_manifest(directory)
    parts: dict[str, list[np.ndarray]] = {}
    for shard in range(int(manifest["n_shards"])):
        if not all(p.exists() for p in shard_paths(directory, shard)):
            continue  # still rendering, or interrupted: use the complete shards
        arrays, _ = load_shard(directory, shard)
        for key in ("mel_db80", "mfcc", "draw_index", "subset_mask", "preset_index", "params", "note"):
            if (key != "mfcc" or with_mfcc) and key in arrays:  # "note": shards rendered since notes vary
                parts.setdefault(key, []).append(arrays[key])
    if not parts:
        return None
    draw = np.concatenate(parts["draw_index"])
    mask = np.concatenate(parts["subset_mask"]).astype(np.int64)
    order = np.lexsort((mask, draw))
    draws, counts = np.unique(draw, return_counts=True)
    complete_draws = draws[counts == N_SUBSETS]  # np.unique sorts them
    if max_draws is not None:  # the first N draws: 0..N-1, before any gap (a shard still rendering)
        in_a_row = int(np.sum(complete_draws == np.arange(len(complete_draws))))
        complete_draws = complete_draws[: min(max_draws, in_a_row)]
    complete = set(complete_draws.tolist())
    keep = order[np.isin(draw[order], list(complete))]
    n = len(complete)
    if n == 0:
        return None
    mel = _gather(parts["mel_db80"], keep).reshape(n, N_SUBSETS, *parts["mel_db80"][0].shape[1:])
    if with_mfcc:
        mfcc = _gather(parts["mfcc"], keep).reshape(n, N_SUBSETS, *parts["mfcc"][0].shape[1:])
    else:
        mfcc = np.zeros((n, N_SUBSETS, 0, mel.shape[-1]), dtype=mel.dtype)
    all_on = keep.reshape(n, N_SUBSETS)[:, N_SUBSETS - 1]
    values = np.concatenate(parts["params"])[all_on].astype(np.float32)
    presets = list(manifest["presets"])
    preset_index = np.concatenate(parts["preset_index"])[all_on].astype(np.int16)
    if "note" in parts:
        note = np.concatenate(parts["note"])[all_on].astype(np.int16)
    else:
        note = np.full(n, int(manifest["config"]["note"]), dtype=np.int16)
    draw_index = draw[all_on].astype(np.int64)
    return Families(mel, mfcc, values, preset_index, note, list(manifest["param_columns"]), presets, draw_index)


def _available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(directories: list[str | Path], max_draws: int | None, with_mfcc: bool) -> None:
    """Refuse (one line) draws whose clips would need more memory than is available."""
    available = _available_memory_bytes()
    if available is None:
        return
    draws = 0
    for directory in directories:
        try:
            manifest = draws_manifest(Path(directory))
            shards = sum(shard_paths(Path(directory), i)[1].exists() for i in range(int(manifest["n_shards"])))
            draws += shards * int(manifest["config"]["shard_clips"]) // N_SUBSETS  # those rendered so far
        except (ReaTimbreError, ValueError, KeyError, TypeError):
            return  # _load_folder reports a folder it cannot read
    draws = min(draws, max_draws or draws)
    bands = N_MELS + (N_MFCC if with_mfcc else 0)
    needed = draws * N_SUBSETS * bands * CLIP_FRAMES * 2  # float16 dB-mel (+ MFCC) frames
    if needed > 0.9 * available:
        raise ReaTimbreError(
            f"{draws} draws need ~{needed / 2**30:.1f} GiB of memory and {available / 2**30:.1f} GiB is available; "
            "use --memory-map (reads them from a cache on disk) or fewer --max-draws"
        )


def load_families(
    directories: str | Path | Iterable[str | Path],
    max_draws: int | None = None,
    with_mfcc: bool = True,
    memory_map: bool = False,
    progress: bool = False,
) -> Families:
    """The complete draws of one or more coach-data folders (same profile and presets), concatenated.

    ``max_draws`` keeps only the first N (by draw index, folder by folder): it fixes the draw set, and with it
    the train/validation/test split, of a folder that is still rendering or was rendered further later.
    ``with_mfcc=False`` leaves the MFCCs out (empty, 0 coefficients) for users of the mel alone, such as the RNN.
    ``memory_map`` reads the clips of one folder from its on-disk cache instead of holding them in memory
    (:mod:`models.coach.family_cache`; built or extended on first use, with a bar on stderr if ``progress``).
    Without it, draws that would not fit in the memory available are refused up front rather than loaded until
    the system kills the process.
    """
    if isinstance(directories, (str, Path)):
        directories = [directories]
    directories = list(directories)
    if max_draws is not None and max_draws < 1:
        raise ReaTimbreError(f"max draws must be at least 1, got {max_draws}")
    if memory_map:
        from models.coach.family_cache import mapped_families

        if len(directories) != 1:
            raise ReaTimbreError("memory-mapped draws come from one coach-data folder; give one --data folder")
        return mapped_families(directories[0], max_draws, with_mfcc, progress)
    _check_memory(directories, max_draws, with_mfcc)
    loaded: list[Families] = []
    total = 0
    for directory in directories:
        if total == max_draws:
            break
        folder = _load_folder(Path(directory), None if max_draws is None else max_draws - total, with_mfcc)
        if folder is not None:
            loaded.append(folder)
            total += len(folder)
    if not loaded:
        raise ReaTimbreError("no complete draws of 32 clips in the coach-data folder(s) yet")
    if max_draws is not None and total < max_draws:
        raise ReaTimbreError(
            f"asked for the first {max_draws} draws; the coach-data folder(s) hold only {total} complete draws "
            "in a row from the first"
        )
    first = loaded[0]
    if any(f.columns != first.columns or f.presets != first.presets for f in loaded[1:]):
        raise ReaTimbreError("coach-data folders differ in their profile columns or presets; train on one kind")
    if len(loaded) == 1:
        return first
    return Families(
        np.concatenate([f.mel_db80 for f in loaded]),
        np.concatenate([f.mfcc for f in loaded]),
        np.concatenate([f.values for f in loaded]),
        np.concatenate([f.preset_index for f in loaded]),
        np.concatenate([f.note for f in loaded]),
        first.columns,
        first.presets,
        np.concatenate([f.draw_index for f in loaded]),
    )
