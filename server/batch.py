"""Batch rendering of many audio files: plan, skip what is already rendered, render the rest, summarise.

Each file becomes a :class:`RenderTask` handled by :func:`render_task`, a plain top-level function, so the same
tasks run in this process, in local worker processes or on Ray (:func:`server.scaleout.map_tasks`). An output
that exists is never re-rendered or overwritten, which is what makes a re-run resume an interrupted batch;
``render_file`` writes atomically, so an interrupted file leaves nothing under its final name.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import ReaTimbreError
from server.scaleout import map_tasks

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3", ".w64"})
OUTPUT_SUFFIX = ".wav"


@dataclass(frozen=True)
class RenderSettings:
    """What every file of a batch is rendered with."""

    effect: str
    knobs: dict[str, float] = field(default_factory=dict)
    mix: float = 1.0
    tail_seconds: float | None = None


@dataclass(frozen=True)
class RenderTask:
    """One file to render: plain data, so it pickles to worker processes and Ray."""

    input_path: str
    output_path: str
    settings: RenderSettings


@dataclass(frozen=True)
class TaskOutcome:
    """What happened to one task: ``status`` is "rendered", "skipped" (output existed) or "failed"."""

    input_path: str
    output_path: str
    status: str
    error: str | None = None
    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0


@dataclass
class BatchSummary:
    """All outcomes of a batch, in input order, with totals."""

    outcomes: list[TaskOutcome]
    elapsed_seconds: float

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def failures(self) -> list[TaskOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    @property
    def rendered_audio_seconds(self) -> float:
        return sum(outcome.audio_seconds for outcome in self.outcomes if outcome.status == "rendered")

    def report(self) -> str:
        """A multi-line human summary ending with every failure and its reason."""
        lines = [
            f"{self.count('rendered')} rendered, {self.count('skipped')} skipped (already rendered), "
            f"{self.count('failed')} failed in {self.elapsed_seconds:.1f} s "
            f"({self.rendered_audio_seconds:.1f} s of audio)"
        ]
        if self.failures:
            lines.append("failures:")
            lines.extend(f"  {failure.input_path}: {failure.error}" for failure in self.failures)
        return "\n".join(lines)


def collect_inputs(patterns: Sequence[str], recursive: bool = False) -> list[tuple[Path, Path]]:
    """Expand folders, files and glob patterns into ``(audio file, base folder)`` pairs, sorted and unique.

    A folder contributes its audio files (and, with ``recursive``, those of its subfolders) relative to itself,
    so outputs mirror its layout; a file or glob match is placed directly in the output folder.
    """
    found: dict[Path, Path] = {}
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_dir():
            base = path.resolve()
            for candidate in sorted(base.rglob("*") if recursive else base.glob("*")):
                if candidate.is_file() and _is_audio(candidate):
                    found.setdefault(candidate.resolve(), base)
            continue
        if not glob.has_magic(pattern):
            if not path.is_file():
                raise ReaTimbreError(f"{path} is not a file or folder")
            found.setdefault(path.resolve(), path.resolve().parent)
            continue
        matches = [Path(m) for m in sorted(glob.glob(str(path), recursive=recursive))]
        audio = [m.resolve() for m in matches if m.is_file() and _is_audio(m)]
        if not audio:
            raise ReaTimbreError(f"no audio files match {pattern!r}")
        for match in audio:
            found.setdefault(match, match.parent)
    return sorted(found.items())


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def plan_tasks(inputs: Sequence[tuple[Path, Path]], output_dir: Path, settings: RenderSettings) -> list[RenderTask]:
    """One task per input; the output is ``<output dir>/<relative folder>/<stem>-<effect>.wav``.

    Inputs inside the output folder are left out (they are earlier results); two inputs that would write the
    same output are refused before anything is rendered.
    """
    root = output_dir.expanduser().resolve()
    tasks: list[RenderTask] = []
    claimed: dict[Path, Path] = {}
    for audio, base in inputs:
        if audio.is_relative_to(root):
            continue
        target = output_path_for(audio, base, root, settings.effect)
        if target in claimed:
            raise ReaTimbreError(f"{claimed[target]} and {audio} would both be rendered to {target}; rename one")
        claimed[target] = audio
        tasks.append(RenderTask(str(audio), str(target), settings))
    if not tasks:
        raise ReaTimbreError("no audio files to render (files inside the output folder are not inputs)")
    return tasks


def output_path_for(audio: Path, base: Path, output_dir: Path, effect: str) -> Path:
    """``<output dir>/<audio's folder relative to base>/<stem>-<effect>.wav`` (flat if not under base)."""
    relative_dir = audio.parent.relative_to(base) if audio.is_relative_to(base) else Path()
    return output_dir / relative_dir / f"{audio.stem}-{_safe_name(effect)}{OUTPUT_SUFFIX}"


def render_task(task: RenderTask) -> TaskOutcome:
    """Render one file unless its output exists; never raises (a failure is reported in the outcome)."""
    started = time.perf_counter()
    output = Path(task.output_path)
    if output.exists():
        return TaskOutcome(task.input_path, task.output_path, "skipped")
    try:
        from models.render import render_file

        output.parent.mkdir(parents=True, exist_ok=True)
        result = render_file(
            Path(task.input_path),
            output,
            task.settings.effect,
            knobs=dict(task.settings.knobs),
            mix=task.settings.mix,
            tail_seconds=task.settings.tail_seconds,
        )
    except ReaTimbreError as exc:
        return _failed(task, str(exc), started)
    except Exception as exc:  # one bad file must not stop the batch
        return _failed(task, f"{type(exc).__name__}: {exc}", started)
    return TaskOutcome(
        task.input_path,
        task.output_path,
        "rendered",
        audio_seconds=float(result.duration_seconds),
        elapsed_seconds=time.perf_counter() - started,
    )


def run_batch(
    tasks: Sequence[RenderTask],
    *,
    workers: int = 1,
    ray_address: str | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    task_fn: Callable[[RenderTask], TaskOutcome] = render_task,
) -> BatchSummary:
    """Render ``tasks`` (skipping finished ones without dispatching them) and return the summary."""
    started = time.perf_counter()
    outcomes: list[TaskOutcome | None] = [None] * len(tasks)
    todo: list[int] = []
    for index, task in enumerate(tasks):
        if Path(task.output_path).exists():
            outcomes[index] = TaskOutcome(task.input_path, task.output_path, "skipped")
            if on_outcome is not None:
                on_outcome(outcomes[index])
        else:
            todo.append(index)

    def record(position: int, outcome: TaskOutcome) -> None:
        outcomes[todo[position]] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    map_tasks(task_fn, [tasks[i] for i in todo], workers=workers, ray_address=ray_address, on_result=record)
    finished = [outcome for outcome in outcomes if outcome is not None]
    return BatchSummary(finished, time.perf_counter() - started)


def _failed(task: RenderTask, reason: str, started: float) -> TaskOutcome:
    return TaskOutcome(
        task.input_path,
        task.output_path,
        "failed",
        error=" ".join(reason.split()) or "failed",
        elapsed_seconds=time.perf_counter() - started,
    )


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text).strip("._") or "render"
