"""Batch rendering of REAPER material: the items of an .RPP file, or the selected items of a running REAPER.

Both modes render each distinct source file once (skipping renders that already exist, so a re-run resumes),
then add every render as a new active take named ``"<take> (neural: <effect>)"`` to the items that play it.
A project file is never modified: the result is saved as a new .RPP beside it. A running REAPER is edited
through :mod:`extension.reaper_ops` (one undo point per item), over reapy or any other API adapter.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from extension import reaper_ops
from extension.rpp import ItemInfo, RppProject
from models.errors import ReaTimbreError
from server.batch import (
    BatchSummary,
    RenderSettings,
    RenderTask,
    TaskOutcome,
    output_path_for,
    render_task,
    run_batch,
)

MEDIA_DIR_NAME = "ReaTimbre"
REAPER_RENDER_TIMEOUT_SECONDS = 3600.0


@dataclass
class ReaperBatchResult:
    """What a project or REAPER batch did."""

    summary: BatchSummary
    takes_added: int
    skipped_items: list[str]
    project_path: Path | None = None
    reaper_render: str | None = None

    def report(self) -> str:
        lines = [self.summary.report(), f"{self.takes_added} takes added"]
        if self.project_path is not None:
            lines.append(f"new project: {self.project_path}")
        if self.reaper_render:
            lines.append(f"REAPER render: {self.reaper_render}")
        lines.extend(f"left alone: {reason}" for reason in self.skipped_items)
        return "\n".join(lines)


def next_free_project_path(original: Path, suffix: str = "-reatimbre") -> Path:
    """``song-reatimbre.rpp`` beside ``song.rpp``, or ``song-reatimbre-2.rpp`` and so on if that exists."""
    candidate = original.with_name(f"{original.stem}{suffix}{original.suffix}")
    number = 2
    while candidate.exists():
        candidate = original.with_name(f"{original.stem}{suffix}-{number}{original.suffix}")
        number += 1
    return candidate


def _plan(
    sources: Sequence[tuple[str, Path]], base: Path, media_dir: Path, settings: RenderSettings
) -> tuple[list[RenderTask], dict[str, int], list[str]]:
    """Tasks for the distinct sources; ``(label, path)`` pairs map to a task index or a reason to skip."""
    tasks: list[RenderTask] = []
    task_of_source: dict[Path, int] = {}
    task_of_label: dict[str, int] = {}
    skipped: list[str] = []
    claimed: dict[Path, Path] = {}
    root = media_dir.resolve()
    for label, source in sources:
        source = source.resolve()
        if source.is_relative_to(root):
            skipped.append(f"{label}: its active take is already a ReaTimbre render")
            continue
        if source not in task_of_source:
            target = output_path_for(source, base, root, settings.effect)
            if target in claimed:
                skipped.append(f"{label}: {source} would overwrite the render of {claimed[target]}")
                continue
            claimed[target] = source
            task_of_source[source] = len(tasks)
            tasks.append(RenderTask(str(source), str(target), settings))
        task_of_label[label] = task_of_source[source]
    return tasks, task_of_label, skipped


def _usable(outcome: TaskOutcome) -> bool:
    return outcome.status in ("rendered", "skipped") and Path(outcome.output_path).is_file()


def render_project(
    project_path: Path,
    settings: RenderSettings,
    *,
    tracks: Sequence[int] | None = None,
    items: Sequence[tuple[int, int]] | None = None,
    selected_only: bool = False,
    out_project: Path | None = None,
    media_dir: Path | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    reaper_executable: Path | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    task_fn: Callable[[RenderTask], TaskOutcome] = render_task,
) -> ReaperBatchResult:
    """Render the audio items of an .RPP: all, or those on ``tracks``, the ``items`` given as (track, item on the
    track) pairs, or the saved selection; all indices 0-based, and the filters combine.

    Renders go to ``media_dir`` (default ``<project folder>/ReaTimbre``); the project with the new takes is
    saved to ``out_project`` (default: the next free ``<name>-reatimbre.rpp`` beside it). With
    ``reaper_executable``, REAPER's command line then renders the new project with its stored settings.
    """
    project = RppProject.load(project_path)
    source = project.path
    assert source is not None, "RppProject.load records the file it read"
    directory = source.parent  # what project.directory gives for a loaded project
    target = out_project.resolve() if out_project is not None else next_free_project_path(source)
    if target.exists():
        raise ReaTimbreError(f"{target} already exists; choose a new project file name")
    if target.suffix.lower() != ".rpp":
        raise ReaTimbreError(f"the new project must be an .rpp file, got {target.name}")
    media = (media_dir or directory / MEDIA_DIR_NAME).resolve()
    track_count = len(project.tracks())
    for track in tracks or []:
        if not 0 <= track < track_count:
            raise ReaTimbreError(f"track {track + 1} does not exist (the project has {track_count} tracks)")

    known = {(item.track_index, item.index) for item in project.items()}
    for track, index in items or []:
        if (track, index) not in known:
            raise ReaTimbreError(f"track {track + 1} has no item {index + 1}")
    chosen = [
        item
        for item in (project.selected_items() if selected_only else project.items())
        if (tracks is None or item.track_index in tracks) and (items is None or (item.track_index, item.index) in items)
    ]
    sources: list[tuple[str, Path]] = []
    items_by_label: dict[str, ItemInfo] = {}
    skipped: list[str] = []
    for item in chosen:
        label = f"track {item.track_index + 1} item {item.index + 1}"
        take = item.active_take
        if take is None or take.path is None or take.source_type in (None, "MIDI"):
            skipped.append(f"{label}: no audio take")
            continue
        sources.append((label, take.path))
        items_by_label[label] = item
    if not sources:
        raise ReaTimbreError(
            f"no audio items to render in {project_path}" + ("" if not skipped else f" ({skipped[0]})")
        )
    tasks, task_of_label, planning_skips = _plan(sources, directory, media, settings)
    skipped.extend(planning_skips)

    summary = run_batch(tasks, workers=workers, ray_address=ray_address, on_outcome=on_outcome, task_fn=task_fn)
    takes_added = 0
    for label, task_index in task_of_label.items():
        outcome = summary.outcomes[task_index]
        if not _usable(outcome):
            continue
        item = items_by_label[label]
        original = item.active_take.name if item.active_take else ""
        project.add_take(item, Path(outcome.output_path), reaper_ops.rendered_take_name(settings.effect, original))
        takes_added += 1
    result = ReaperBatchResult(summary, takes_added, skipped)
    if takes_added == 0:
        return result
    result.project_path = project.save(target)
    if reaper_executable is not None:
        result.reaper_render = run_reaper_render(reaper_executable, result.project_path)
    return result


def run_reaper_render(executable: Path, project_path: Path) -> str:
    """Render ``project_path`` with REAPER's command line (``-renderproject``) and describe the outcome."""
    command = [str(executable), "-nosplash", "-renderproject", str(project_path)]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=REAPER_RENDER_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError:
        raise ReaTimbreError(f"REAPER executable {executable} not found") from None
    except subprocess.TimeoutExpired:
        raise ReaTimbreError(f"REAPER did not finish rendering {project_path} within an hour") from None
    except OSError as exc:
        raise ReaTimbreError(f"cannot run REAPER ({executable}): {exc.strerror or exc}") from None
    if completed.returncode != 0:
        last = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ReaTimbreError(f"REAPER exited with status {completed.returncode} rendering {project_path}: {last[0]}")
    return f"rendered {project_path.name} with its stored render settings"


def render_reaper_selection(
    api: reaper_ops.ReaperApi,
    settings: RenderSettings,
    media_dir: Path,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    task_fn: Callable[[RenderTask], TaskOutcome] = render_task,
) -> ReaperBatchResult:
    """Render the selected items of a running REAPER (through ``api``) and add the renders as takes."""
    items = reaper_ops.selected_items(api)
    sources: list[tuple[str, Path]] = []
    by_label: dict[str, reaper_ops.SelectedItem] = {}
    skipped: list[str] = []
    for number, item in enumerate(items, start=1):
        label = f"selected item {number} (track {item.track_index + 1})"
        if not item.source_path:
            skipped.append(f"{label}: no audio take")
            continue
        sources.append((label, Path(item.source_path)))
        by_label[label] = item
    if not sources:
        raise ReaTimbreError("select one or more audio items in REAPER first")
    media = media_dir.expanduser().resolve()
    tasks, task_of_label, planning_skips = _plan(sources, media.parent, media, settings)
    skipped.extend(planning_skips)
    summary = run_batch(tasks, workers=workers, ray_address=ray_address, on_outcome=on_outcome, task_fn=task_fn)
    takes_added = 0
    for label, task_index in task_of_label.items():
        outcome = summary.outcomes[task_index]
        if _usable(outcome):
            reaper_ops.add_rendered_take(api, by_label[label], outcome.output_path, settings.effect)
            takes_added += 1
    return ReaperBatchResult(summary, takes_added, skipped)


def reaper_media_dir(api: reaper_ops.ReaperApi) -> Path:
    """``<the current project's media folder>/ReaTimbre``, as REAPER reports it."""
    result = api.call("GetProjectPath", "", reaper_ops.BUFFER_SIZE)  # void: (path, size)
    folder = str(result[0]) if isinstance(result, list | tuple) and result else ""
    if not folder:
        raise ReaTimbreError("REAPER reported no project folder; save the project first or pass --out")
    return Path(folder) / MEDIA_DIR_NAME
