"""Batch rendering on a local Ray instance gives the same files as local rendering; Ray errors are one line."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_server_render import make_tiny_model, make_tone

from models.errors import ReaTimbreError
from models.scaleout import map_tasks
from server.batch import RenderSettings, collect_inputs, plan_tasks, run_batch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import ray


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray instance (2 CPUs) for this module, started after the tiny model's data dir is set."""
    data_dir = tmp_path_factory.mktemp("ray-data")
    make_tiny_model(data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REATIMBRE_DATA_DIR", str(data_dir))  # before ray.init: its workers inherit it
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
        try:
            yield
        finally:
            ray.shutdown()


def test_ray_and_local_batches_write_identical_files(local_ray, tmp_path: Path) -> None:
    for index in range(4):
        make_tone(tmp_path / "in" / f"tone{index}.wav", 0.3 + 0.1 * index)
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF but not really")
    settings = RenderSettings("tiny", {"drive": 0.7}, mix=0.8)
    inputs = collect_inputs([str(tmp_path / "in")])
    local = run_batch(plan_tasks(inputs, tmp_path / "local", settings), workers=1)
    on_ray = run_batch(plan_tasks(inputs, tmp_path / "ray", settings), ray_address="auto")
    assert [o.status for o in on_ray.outcomes] == [o.status for o in local.outcomes]
    assert [o.status for o in on_ray.outcomes] == ["failed"] + ["rendered"] * 4
    assert on_ray.outcomes[0].error == local.outcomes[0].error
    for name in (f"tone{index}-tiny.wav" for index in range(4)):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
        assert (
            sf.info(str(tmp_path / "ray" / name)).frames
            == sf.info(str(tmp_path / "in" / name.replace("-tiny", ""))).frames
        )
    resumed = run_batch(plan_tasks(inputs, tmp_path / "ray", settings), ray_address="auto")
    assert [o.status for o in resumed.outcomes] == ["failed"] + ["skipped"] * 4


def test_coach_dataset_shards_render_identically_on_ray(local_ray) -> None:
    """The synth coach's dataset generator hands its per-shard function to map_tasks: same arrays on Ray."""
    from models.synth.dataset import DatasetConfig, render_shard

    config = DatasetConfig(group="basic_shapes", clips=4, shard_clips=2)
    shard_fn = functools.partial(render_shard, config)
    local = map_tasks(shard_fn, [0, 1], workers=2)  # local worker processes, one thread each like Ray's
    on_ray = map_tasks(shard_fn, [0, 1], ray_address="auto")
    for here, there in zip(local, on_ray, strict=True):
        assert here.shard_index == there.shard_index and here.clips == there.clips
        assert set(here.arrays) == set(there.arrays)
        for key, array in here.arrays.items():
            np.testing.assert_array_equal(array, there.arrays[key], err_msg=key)


def test_task_exceptions_come_back_as_their_own_type(local_ray) -> None:
    with pytest.raises(ReaTimbreError, match="not a file or folder"):
        map_tasks(collect_inputs, [["/no/such/file.wav"]], ray_address="auto")


def test_unreachable_ray_cluster_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ReaTimbreError, match="cannot connect to Ray at '127.0.0.1:1'"):
        map_tasks(abs, [1], ray_address="127.0.0.1:1")
