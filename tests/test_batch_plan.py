"""Batch planning, resume, failure summary and local worker processes (with a stand-in render function)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.errors import ReaTimbreError
from models.scaleout import map_tasks
from server.batch import RenderSettings, RenderTask, TaskOutcome, collect_inputs, plan_tasks, run_batch
from server.commands.batch import parse_items, parse_tracks

SETTINGS = RenderSettings("overdrive", {"drive": 0.5})


def copy_task(task: RenderTask) -> TaskOutcome:
    """Stand-in for render_task: "renders" by copying bytes (fails for files named bad*), reports its pid."""
    source = Path(task.input_path)
    if source.name.startswith("bad") or not source.is_file():
        return TaskOutcome(task.input_path, task.output_path, "failed", error="not audio")
    Path(task.output_path).parent.mkdir(parents=True, exist_ok=True)
    Path(task.output_path).write_bytes(source.read_bytes())
    return TaskOutcome(task.input_path, task.output_path, "rendered", audio_seconds=1.0, error=str(os.getpid()))


def square(value: int) -> int:
    return value * value


def _make_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    for name in ["a.wav", "b.flac", "bad.wav", "notes.txt", ".hidden.wav", "sub/c.wav"]:
        (root / name).write_bytes(name.encode())


def test_folder_glob_and_file_inputs(tmp_path: Path) -> None:
    _make_tree(tmp_path / "in")
    flat = collect_inputs([str(tmp_path / "in")])
    assert [audio.name for audio, _ in flat] == ["a.wav", "b.flac", "bad.wav"]
    deep = collect_inputs([str(tmp_path / "in")], recursive=True)
    assert [audio.name for audio, _ in deep] == ["a.wav", "b.flac", "bad.wav", "c.wav"]
    globbed = collect_inputs([str(tmp_path / "in" / "*.wav"), str(tmp_path / "in" / "a.wav")])
    assert [audio.name for audio, _ in globbed] == ["a.wav", "bad.wav"]
    with pytest.raises(ReaTimbreError, match="no audio files match"):
        collect_inputs([str(tmp_path / "in" / "*.mp3")])
    with pytest.raises(ReaTimbreError, match="not a file or folder"):
        collect_inputs([str(tmp_path / "missing.wav")])


def test_plan_mirrors_folders_and_refuses_collisions(tmp_path: Path) -> None:
    _make_tree(tmp_path / "in")
    tasks = plan_tasks(collect_inputs([str(tmp_path / "in")], recursive=True), tmp_path / "out", SETTINGS)
    outputs = [Path(task.output_path).relative_to(tmp_path / "out").as_posix() for task in tasks]
    assert outputs == ["a-overdrive.wav", "b-overdrive.wav", "bad-overdrive.wav", "sub/c-overdrive.wav"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.wav").write_bytes(b"x")
    twins = collect_inputs([str(tmp_path / "in" / "a.wav"), str(tmp_path / "other" / "a.wav")])
    with pytest.raises(ReaTimbreError, match="would both be rendered"):
        plan_tasks(twins, tmp_path / "out", SETTINGS)
    with pytest.raises(ReaTimbreError, match="no audio files"):
        plan_tasks(collect_inputs([str(tmp_path / "in")]), tmp_path / "in", SETTINGS)


def test_rerun_resumes_and_never_overwrites(tmp_path: Path) -> None:
    _make_tree(tmp_path / "in")
    out = tmp_path / "out"
    tasks = plan_tasks(collect_inputs([str(tmp_path / "in")]), out, SETTINGS)
    (out).mkdir()
    (out / "a-overdrive.wav").write_bytes(b"finished earlier")  # as if a previous run got this far
    seen: list[str] = []
    summary = run_batch(tasks, task_fn=copy_task, on_outcome=lambda o: seen.append(o.status))
    assert [o.status for o in summary.outcomes] == ["skipped", "rendered", "failed"]
    assert sorted(seen) == sorted(["skipped", "rendered", "failed"])
    assert (out / "a-overdrive.wav").read_bytes() == b"finished earlier"
    report = summary.report()
    assert report.startswith("1 rendered, 1 skipped (already rendered), 1 failed")
    assert f"{tmp_path / 'in' / 'bad.wav'}: not audio" in report
    again = run_batch(tasks, task_fn=copy_task)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped", "failed"]


def test_local_worker_processes_give_results_in_input_order(tmp_path: Path) -> None:
    _make_tree(tmp_path / "in")
    tasks = plan_tasks(collect_inputs([str(tmp_path / "in")], recursive=True), tmp_path / "out", SETTINGS)
    summary = run_batch(tasks, task_fn=copy_task, workers=2)
    assert [o.input_path for o in summary.outcomes] == [t.input_path for t in tasks]
    rendered = [o for o in summary.outcomes if o.status == "rendered"]
    assert len(rendered) == 3 and all(o.error != str(os.getpid()) for o in rendered)  # ran in workers
    assert (tmp_path / "out" / "sub" / "c-overdrive.wav").read_bytes() == b"sub/c.wav"
    assert map_tasks(square, list(range(7)), workers=2) == [n * n for n in range(7)]
    assert map_tasks(square, [], workers=2) == []


def test_track_numbers_are_one_based() -> None:
    assert parse_tracks("1,3") == [0, 2] and parse_tracks(None) is None
    for bad in ["0", "a", ","]:
        with pytest.raises(ReaTimbreError, match="--tracks"):
            parse_tracks(bad)


def test_item_numbers_are_track_colon_item_one_based() -> None:
    assert parse_items("1:2, 3:1") == [(0, 1), (2, 0)] and parse_items(None) is None
    for bad in ["1", "0:1", "1:0", "a:1", "1:2,"]:
        with pytest.raises(ReaTimbreError, match="--items"):
            parse_items(bad)
