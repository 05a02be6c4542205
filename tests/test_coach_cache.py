"""Memory-mapped coach-data (``--memory-map``): the same draws as in memory, grown in place, never half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.coach import families as families_module
from models.coach import family_cache
from models.coach.families import RowView, load_families
from models.coach.family_cache import CACHE_DIR_NAME
from models.coach.store import read_sidecar
from models.coach.train import TrainSettings, split_families, train_coach
from models.errors import ReaTimbreError
from models.synth.dataset import DatasetConfig, generate

FIELDS = ("mel_db80", "mfcc", "values", "preset_index", "note", "draw_index")


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory) -> Path:
    """3 draws whose shards of 48 clips split draw 1 between two shards."""
    folder = tmp_path_factory.mktemp("cache") / "data"
    generate(DatasetConfig(group="basic_shapes", clips=96, shard_clips=48), folder, 1, progress=False)
    return folder


@pytest.fixture
def folder(data_folder, tmp_path) -> Path:
    """A fresh copy of the data, without a cache."""
    copy = tmp_path / "data"
    shutil.copytree(data_folder, copy, ignore=shutil.ignore_patterns(CACHE_DIR_NAME))
    return copy


def assert_same(a, b) -> None:
    assert len(a) == len(b) and a.columns == b.columns and a.presets == b.presets
    for name in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)), err_msg=name)


def committed(folder: Path) -> int:
    return json.loads((folder / CACHE_DIR_NAME / "cache.json").read_text())["draws"]


def test_mapped_draws_equal_the_loaded_ones_and_grow_in_place(folder):
    in_memory = load_families(folder)
    first_two = load_families(folder, max_draws=2, memory_map=True)
    assert first_two.memory_mapped and committed(folder) == 2  # only what was asked for is cached
    assert_same(first_two, load_families(folder, max_draws=2))
    mel_file = folder / CACHE_DIR_NAME / "mel_db80.f16"
    with open(mel_file, "ab") as handle:  # an append cut short: bytes past the committed draws
        handle.write(b"\x01" * 1000)
    everything = load_families(folder, memory_map=True)  # grows the cache by the third draw
    assert committed(folder) == 3 and mel_file.stat().st_size == 3 * 32 * 128 * 88 * 2
    assert_same(everything, in_memory)
    mel_only = load_families(folder, memory_map=True, with_mfcc=False)  # what an RNN-only run reads
    np.testing.assert_array_equal(mel_only.mel_db80, in_memory.mel_db80)
    assert mel_only.mfcc.shape[2] == 0


def test_an_interrupted_build_keeps_the_draws_it_committed(folder, monkeypatch):
    monkeypatch.setattr(family_cache, "COMMIT_EVERY_DRAWS", 1)
    real_load_shard = family_cache.load_shard

    def interrupted(directory, shard):
        if shard == 1:
            raise KeyboardInterrupt  # Ctrl-C while the second shard is read
        return real_load_shard(directory, shard)

    monkeypatch.setattr(family_cache, "load_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_families(folder, memory_map=True)
    assert committed(folder) == 1  # shard 0 holds draw 0 and part of draw 1
    monkeypatch.setattr(family_cache, "load_shard", real_load_shard)
    assert_same(load_families(folder, memory_map=True), load_families(folder))


def test_a_split_of_mapped_draws_reads_from_disk_and_matches(folder):
    mapped, in_memory = load_families(folder, memory_map=True), load_families(folder)
    split, expected = split_families(mapped, consume=True), split_families(in_memory)
    for name in ("train", "validation", "test"):
        part = getattr(split, name)
        assert isinstance(part.mel_db80, RowView) and part.memory_mapped  # no copy of the clips
        assert_same(part, getattr(expected, name))
        rows, masks = np.array([0, 0]), np.array([31, 5])
        np.testing.assert_array_equal(part.mel_db80[rows, masks], getattr(expected, name).mel_db80[rows, masks])


def test_mapped_draws_are_not_reordered_in_place(folder):
    mapped = load_families(folder, memory_map=True)
    with pytest.raises(ReaTimbreError, match="memory-mapped families are read-only"):
        mapped.reorder_in_place(np.arange(len(mapped))[::-1])
    view = mapped.subset(np.array([2, 0]))
    with pytest.raises(ReaTimbreError, match="memory-mapped families are read-only"):
        view.reorder_in_place(np.array([1, 0]))
    assert_same(mapped, load_families(folder))  # untouched


def test_the_cache_stops_at_a_gap_and_rebuilds_for_another_rendering(folder):
    (folder / "shard-00001.json").rename(folder / "held-back.json")  # draw 1 is incomplete: the prefix is draw 0
    assert len(load_families(folder, memory_map=True)) == 1
    with pytest.raises(ReaTimbreError, match=r"only 1 in a row \(shard 1 not there yet\)"):
        load_families(folder, max_draws=2, memory_map=True)
    (folder / "held-back.json").rename(folder / "shard-00001.json")
    assert len(load_families(folder, max_draws=3, memory_map=True)) == 3
    with pytest.raises(ReaTimbreError, match=r"only 3 in a row \(none rendered after them\)"):
        load_families(folder, max_draws=4, memory_map=True)
    record_path = folder / CACHE_DIR_NAME / "cache.json"
    record = json.loads(record_path.read_text())
    record["identity"]["config"]["seed"] = 99  # as if the cache came from another rendering of the folder
    record_path.write_text(json.dumps(record))
    assert_same(load_families(folder, memory_map=True), load_families(folder))
    assert json.loads(record_path.read_text())["identity"]["config"]["seed"] == 0


def test_row_views_index_like_the_array():
    base = np.arange(6 * 4 * 3, dtype=np.float16).reshape(6, 4, 3)
    rows = np.array([5, 2, 3, 0])
    view, copy = RowView(base, rows), base[rows]
    assert view.shape == copy.shape and len(view) == 4
    for key in (1, (1, 2), (np.array([0, 3]), np.array([1, 2])), (2, [0, 3]), (slice(1, 3), 0), np.array([3, 1])):
        np.testing.assert_array_equal(view[key], copy[key])
    nested = view[1:3]
    assert isinstance(nested, RowView)
    np.testing.assert_array_equal(np.asarray(nested), copy[1:3])
    np.testing.assert_array_equal(np.asarray(RowView(view, np.array([2, 0]))), copy[[2, 0]])


def test_training_on_mapped_draws(folder, tmp_path):
    settings = TrainSettings(
        cnn_steps=2, rnn_steps=2, cnn_batch=4, rnn_batch=4, validate_every=1, validation_examples=8, memory_map=True
    )
    train_coach(folder, tmp_path / "weights", settings, only=("eq", "next_effect"), progress=False)
    for name in ("eq", "next_effect"):
        sidecar = read_sidecar(tmp_path / "weights", name)
        assert sidecar["settings"]["memory_map"] is True and sidecar["data"]["families"] == 3
        assert (tmp_path / "weights" / f"{name}.safetensors").stat().st_size > 0
    with pytest.raises(ReaTimbreError, match="one coach-data folder"):
        load_families([folder, folder], memory_map=True)


def test_draws_that_would_not_fit_in_memory_are_refused_up_front(folder, monkeypatch):
    monkeypatch.setattr(families_module, "_available_memory_bytes", lambda: 1_000_000)
    with pytest.raises(ReaTimbreError, match="use --memory-map"):
        load_families(folder)
    assert len(load_families(folder, memory_map=True)) == 3  # the cache streams shard by shard


def test_a_cache_that_cannot_be_written_is_a_one_line_error(folder):
    (folder / CACHE_DIR_NAME).write_text("not a folder")  # as a read-only or odd data folder would refuse it
    with pytest.raises(ReaTimbreError, match="cannot write the draws' cache"):
        load_families(folder, memory_map=True)
