"""A coach-data folder's draws kept on disk in training's layout and memory-mapped: for more draws than fit in RAM.

``<folder>/families-cache/`` holds the first N draws of the folder (draws 0..N-1, every one complete) as raw
float16 arrays in draw order — ``mel_db80.f16`` (N, 32, 128, 88) and ``mfcc.f16`` (N, 32, 30, 88) — with
``meta.npz`` (parameter values, preset and draw index per draw) and ``cache.json`` (the committed draw count,
shapes, and the folder's rendering config). When the folder has rendered further, the next use appends only the
new draws: the arrays are appended and flushed, then ``meta.npz`` and ``cache.json`` are replaced atomically
(every 1,000 draws while it builds), so an interrupted append leaves the last committed cache intact (bytes past
it are cut off on the next use); a lock lets one process at a time build or grow it. A folder re-rendered with
another config gets a fresh cache. The cache is derived data: deleting it loses nothing.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from models.atomic_files import write_bytes
from models.coach.families import N_SUBSETS, Families, draws_manifest
from models.errors import ReaTimbreError
from models.synth.dataset import load_shard, shard_paths

CACHE_DIR_NAME = "families-cache"
CACHE_FORMAT = "reatimbre-families-cache/1"
_ARRAYS = ("mel_db80", "mfcc")
COMMIT_EVERY_DRAWS = 1000
#: Per-draw metadata appended since the last commit: ``values`` rows (arrays), ``preset_index`` and ``draw_index``
#: (numpy scalars).
_Added = dict[str, list[np.ndarray | np.generic]]


def _identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """What must match for a cache to belong to the folder: its config except how far it renders."""
    config = {k: v for k, v in manifest["config"].items() if k != "clips"}
    return {"config": config, "presets": manifest["presets"], "param_columns": manifest["param_columns"]}


def _sync(files: dict[str, Any]) -> None:
    """Flush appended bytes to disk before the record that commits them is written."""
    for handle in files.values():
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the cache folder's lock: one process at a time builds or grows it (POSIX; elsewhere no lock)."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "a") as handle:
        try:
            import fcntl
        except ImportError:  # Windows
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Cache:
    """The cache folder of one coach-data folder: what is committed, and appending to it."""

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.folder = directory
        self.path = directory / CACHE_DIR_NAME
        self.identity = _identity(manifest)
        self.shard_clips = int(manifest["config"]["shard_clips"])
        self.n_shards = int(manifest["n_shards"])
        self.n_draws = 0
        self.missing_shard: int | None = None  # where the last extend found the folder's draws interrupted
        self.shapes: dict[str, list[int]] = {}
        self.meta: dict[str, np.ndarray] = {}
        record = self._read_record()
        if record is not None and record.get("format") == CACHE_FORMAT and record["identity"] == self.identity:
            self.n_draws = int(record["draws"])
            self.shapes = {name: list(shape) for name, shape in record["shapes"].items()}
            with np.load(self.path / "meta.npz") as meta:
                self.meta = {key: meta[key][: self.n_draws] for key in meta.files}
        elif self.path.exists():
            self._clear()  # another rendering's cache (or an unreadable one): start again

    def _read_record(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / "cache.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def _clear(self) -> None:
        for name in (*(f"{a}.f16" for a in _ARRAYS), "meta.npz", "cache.json"):
            (self.path / name).unlink(missing_ok=True)

    def _row_bytes(self, name: str) -> int:
        return int(np.prod(self.shapes[name])) * 2

    def extend(self, wanted: int | None, progress: Callable[[int], None] | None = None) -> None:
        """Append the folder's next complete draws until ``wanted`` draws (all there are, if None) are cached."""
        if wanted is not None and self.n_draws >= wanted:
            return
        first_shard = self.n_draws * N_SUBSETS // self.shard_clips
        pending: dict[int, dict[int, dict[str, Any]]] = {}  # draw -> mask -> clip arrays
        files: dict[str, Any] = {}
        added: _Added = {"values": [], "preset_index": [], "draw_index": []}
        next_draw = self.n_draws
        try:
            for shard in range(first_shard, self.n_shards):
                if wanted is not None and next_draw >= wanted:
                    break
                if not all(p.exists() for p in shard_paths(self.folder, shard)):
                    self.missing_shard = shard  # the contiguous prefix ends here (still rendering, or lost)
                    break
                arrays, _ = load_shard(self.folder, shard)
                for i, draw in enumerate(arrays["draw_index"].tolist()):
                    if draw >= next_draw:
                        clip = {key: arrays[key][i] for key in (*_ARRAYS, "params", "preset_index")}
                        pending.setdefault(draw, {})[int(arrays["subset_mask"][i])] = clip
                while len(pending.get(next_draw, {})) == N_SUBSETS and (wanted is None or next_draw < wanted):
                    clips = pending.pop(next_draw)
                    if not files:
                        files = self._open_for_append(clips[0])
                    for name in _ARRAYS:
                        rows = np.stack([clips[mask][name] for mask in range(N_SUBSETS)]).astype(np.float16)
                        files[name].write(rows.tobytes())
                    added["values"].append(clips[N_SUBSETS - 1]["params"].astype(np.float32))
                    added["preset_index"].append(np.int16(clips[N_SUBSETS - 1]["preset_index"]))
                    added["draw_index"].append(np.int64(next_draw))
                    next_draw += 1
                if next_draw - self.n_draws >= COMMIT_EVERY_DRAWS:  # an interrupted build keeps what it made
                    _sync(files)
                    added = self._commit(next_draw, added)
                if progress is not None:
                    progress(next_draw)
            _sync(files)
            if next_draw > self.n_draws:
                self._commit(next_draw, added)
        finally:
            for handle in files.values():
                handle.close()

    def _open_for_append(self, clip: dict[str, Any]) -> dict[str, Any]:
        if not self.shapes:
            self.shapes = {name: [N_SUBSETS, *clip[name].shape] for name in _ARRAYS}
        files = {}
        for name in _ARRAYS:
            path = self.path / f"{name}.f16"
            with open(path, "ab") as handle:  # cut off what an interrupted append left past the committed draws
                handle.truncate(self.n_draws * self._row_bytes(name))
            files[name] = open(path, "ab")  # noqa: SIM115 - closed in extend's finally
        return files

    def _commit(self, n_draws: int, added: _Added) -> _Added:
        """Record the appended draws as part of the cache; returns an empty ``added`` for what follows."""
        meta: dict[str, np.ndarray] = {}
        for key, new in added.items():
            old = self.meta.get(key)
            stacked = np.stack(new) if key == "values" else np.array(new)
            meta[key] = stacked if old is None or not len(old) else np.concatenate([old, stacked])
        buffer = io.BytesIO()
        # numpy's stub lets ``**kwds`` collide with ``allow_pickle: bool``, so a str-keyed dict of arrays fails it
        np.savez(buffer, **meta)  # type: ignore[arg-type]
        write_bytes(self.path / "meta.npz", buffer.getvalue())
        record = {"format": CACHE_FORMAT, "draws": n_draws, "shapes": self.shapes, "identity": self.identity}
        write_bytes(self.path / "cache.json", json.dumps(record, indent=1).encode("utf-8"))
        self.n_draws, self.meta = n_draws, meta
        return {key: [] for key in added}

    def families(self, n_draws: int, with_mfcc: bool, manifest: dict[str, Any]) -> Families:
        """The first ``n_draws`` cached draws, memory-mapped read-only."""

        def mapped(name: str) -> np.ndarray:
            shape = (n_draws, *self.shapes[name])
            return np.memmap(self.path / f"{name}.f16", dtype=np.float16, mode="r", shape=shape)

        mel = mapped("mel_db80")
        mfcc = mapped("mfcc") if with_mfcc else np.zeros((n_draws, N_SUBSETS, 0, mel.shape[-1]), np.float16)
        if manifest["config"].get("note_high") is not None:
            raise ReaTimbreError("draws with a note range (coach-data --note-high) are read in memory, not mapped")
        note = np.full(n_draws, int(manifest["config"]["note"]), dtype=np.int16)
        meta = {key: value[:n_draws] for key, value in self.meta.items()}
        return Families(
            mel, mfcc, meta["values"], meta["preset_index"], note, list(manifest["param_columns"]),
            list(manifest["presets"]), meta["draw_index"],
        )  # fmt: skip


def mapped_families(
    directory: str | Path, max_draws: int | None = None, with_mfcc: bool = True, progress: bool = False
) -> Families:
    """The first ``max_draws`` draws (all contiguous complete draws if None) of a coach-data folder, memory-mapped
    from its cache, which is built or extended first when it holds fewer (``progress``: a bar on stderr)."""
    from tqdm import tqdm

    directory = Path(directory)
    if max_draws is not None and max_draws < 1:
        raise ReaTimbreError(f"max draws must be at least 1, got {max_draws}")
    manifest = draws_manifest(directory)
    try:
        with _locked(directory / CACHE_DIR_NAME):
            cache = _Cache(directory, manifest)
            total = max_draws or int(manifest["config"]["clips"]) // N_SUBSETS
            bar = tqdm(total=total, initial=cache.n_draws, unit="draw", desc="families-cache", disable=not progress)
            with bar:
                cache.extend(max_draws, lambda n: bar.update(n - bar.n))
    except OSError as exc:
        raise ReaTimbreError(f"cannot write the draws' cache in {directory / CACHE_DIR_NAME}: {exc}") from exc
    if cache.n_draws == 0:
        raise ReaTimbreError(f"no complete draws of 32 clips in {directory} yet")
    if max_draws is not None and cache.n_draws < max_draws:
        gap = cache.missing_shard
        why = "none rendered after them" if gap is None else f"shard {gap} not there yet"
        raise ReaTimbreError(
            f"asked for the first {max_draws} draws; {directory} holds only {cache.n_draws} in a row ({why})"
        )
    return cache.families(max_draws or cache.n_draws, with_mfcc, manifest)
