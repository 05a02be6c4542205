"""Batch over REAPER material: an .RPP project → a new project with rendered takes, and REAPER's selection
(in-process and through the real reapy client against the REAPER emulator; REAPER itself is never run)."""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from reaper_emulator import ReaperEmulator
from reaper_emulator.reapy_service import ReapyService
from test_batch_plan import copy_task

from extension import reaper_ops as ops
from extension.rpp import RppProject
from models.errors import ReaTimbreError
from server.batch import RenderSettings
from server.batch_reaper import render_project, render_reaper_selection, run_reaper_render

SETTINGS = RenderSettings("compressor")


def _wav(path: Path, seconds: float = 0.1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(44100 * seconds), 0.1, dtype=np.float32), 44100)
    return path


def _project(tmp_path: Path) -> tuple[ReaperEmulator, Path]:
    """Two tracks: vocals (two items sharing one file, one selected) and drums (one item, missing media)."""
    emu = ReaperEmulator.new(tmp_path / "song.rpp")
    vocals = emu.add_track("vocals")
    emu.add_item(vocals, _wav(tmp_path / "Audio" / "vox.wav"), 0.0, 0.1, selected=True)
    emu.add_item(vocals, tmp_path / "Audio" / "vox.wav", 2.0, 0.1, selected=False)
    drums = emu.add_track("drums")
    emu.add_item(drums, _wav(tmp_path / "Audio" / "drums.wav"), 0.0, 0.1, selected=False)
    path = emu.save(tmp_path / "song.rpp")
    (tmp_path / "Audio" / "drums.wav").rename(tmp_path / "Audio" / "drums-moved.wav")
    return emu, path


def test_project_gets_a_new_file_with_rendered_takes(tmp_path: Path) -> None:
    _, path = _project(tmp_path)
    original = path.read_bytes()
    result = render_project(path, SETTINGS, task_fn=copy_task)
    assert path.read_bytes() == original  # the user's project is never modified
    assert result.project_path == tmp_path / "song-reatimbre.rpp"
    assert [o.status for o in result.summary.outcomes] == ["rendered", "failed"]  # vox once, drums missing
    assert result.takes_added == 2 and "drums.wav" in result.report()

    saved = RppProject.load(result.project_path)
    vocals = saved.items(track=0)
    for item in vocals:
        take = item.active_take
        assert take.name == "vox.wav (neural: compressor)"
        assert take.path == tmp_path / "ReaTimbre" / "Audio" / "vox-compressor.wav" and take.path.is_file()
        assert len(item.takes) == 2  # the original take is kept
    (drums,) = saved.items(track=1)
    assert len(drums.takes) == 1 and drums.active_take.name == "drums.wav"

    again = render_project(path, SETTINGS, task_fn=copy_task)  # resumes: nothing rendered twice
    assert again.project_path == tmp_path / "song-reatimbre-2.rpp"
    assert [o.status for o in again.summary.outcomes] == ["skipped", "failed"]


def test_project_track_and_selection_filters(tmp_path: Path) -> None:
    _, path = _project(tmp_path)
    only_selected = render_project(path, SETTINGS, selected_only=True, task_fn=copy_task)
    assert only_selected.takes_added == 1
    saved = RppProject.load(only_selected.project_path)
    assert [len(item.takes) for item in saved.items()] == [2, 1, 1]
    second_vocal = render_project(path, SETTINGS, items=[(0, 1)], task_fn=copy_task)
    assert [len(item.takes) for item in RppProject.load(second_vocal.project_path).items()] == [1, 2, 1]
    with pytest.raises(ReaTimbreError, match="track 2 has no item 3"):
        render_project(path, SETTINGS, items=[(1, 2)], task_fn=copy_task)
    with pytest.raises(ReaTimbreError, match="track 5 does not exist"):
        render_project(path, SETTINGS, tracks=[4], task_fn=copy_task)
    with pytest.raises(ReaTimbreError, match="already exists"):
        render_project(path, SETTINGS, out_project=path, task_fn=copy_task)
    rendered_project = only_selected.project_path
    nothing_new = render_project(rendered_project, SETTINGS, selected_only=True, task_fn=copy_task)
    assert nothing_new.takes_added == 0 and "already a ReaTimbre render" in nothing_new.report()


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell script as a stand-in REAPER")
def test_reaper_command_line_render_is_invoked(tmp_path: Path) -> None:
    log = tmp_path / "reaper-args.txt"
    fake = tmp_path / "reaper"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{log}"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    project = tmp_path / "song-reatimbre.rpp"
    assert "rendered song-reatimbre.rpp" in run_reaper_render(fake, project)
    assert log.read_text().splitlines() == ["-nosplash", "-renderproject", str(project)]
    failing = tmp_path / "reaper-fails"
    failing.write_text("#!/bin/sh\necho 'cannot open project' >&2\nexit 3\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(ReaTimbreError, match="status 3 .*cannot open project"):
        run_reaper_render(failing, project)
    with pytest.raises(ReaTimbreError, match="not found"):
        run_reaper_render(tmp_path / "no-reaper", project)


def test_selected_items_of_running_reaper_in_process(tmp_path: Path) -> None:
    emu, _ = _project(tmp_path)
    api = ops.InProcessApi(emu.module())
    result = render_reaper_selection(api, SETTINGS, tmp_path / "renders", task_fn=copy_task)
    assert result.takes_added == 1 and emu.undo_history == ["ReaTimbre: render through compressor"]
    (item,) = ops.selected_items(api)
    assert item.take_name == "vox.wav (neural: compressor)"
    assert Path(item.source_path) == tmp_path / "renders" / "Audio" / "vox-compressor.wav"


@pytest.fixture
def reapy_client(tmp_path: Path) -> Iterator[tuple[ReaperEmulator, ops.ReapyApi]]:
    emu, _ = _project(tmp_path)
    with ReapyService(emu) as service, service.reapy_api() as api:  # reapy with the hardened server's token
        yield emu, api


def test_selected_items_through_the_real_reapy_client(reapy_client, tmp_path: Path) -> None:
    emu, api = reapy_client
    from server.batch_reaper import reaper_media_dir

    media_dir = reaper_media_dir(api)
    assert media_dir == tmp_path / "ReaTimbre"
    result = render_reaper_selection(api, SETTINGS, media_dir, task_fn=copy_task)
    assert result.takes_added == 1 and not result.summary.failures
    assert emu.undo_history == ["ReaTimbre: render through compressor"]
    assert (tmp_path / "ReaTimbre" / "Audio" / "vox-compressor.wav").is_file()
