"""Batch rendering of many audio files: plan, skip what is already rendered, render the rest, summarise.

Each file becomes a :class:`RenderTask` handled by :func:`render_task`, a plain top-level function, so the same
tasks run in this process, in local worker processes or on Ray (:func:`models.scaleout.map_tasks`). An output
that exists is never re-rendered or overwritten, which is what makes a re-run resume an interrupted batch;
``render_file`` writes atomically, so an interrupted file leaves nothing under its final name.

On CUDA (``RenderSettings.device``) with one local worker, files are rendered in groups of
:data:`FILES_PER_CUDA_PASS`: every channel of every file of a group goes through the model in one batched pass
(:func:`models.multi_render.render_files_together`); files longer than :data:`LONGEST_FILE_IN_A_PASS_SECONDS` are
rendered alone (their channels still one batch).
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import ReaTimbreError
from models.oserrors import shown
from models.scaleout import map_tasks

FILES_PER_CUDA_PASS = 16
LONGEST_FILE_IN_A_PASS_SECONDS = 600.0  # longer files are rendered alone, streamed, rather than held in memory
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3", ".w64"})
OUTPUT_SUFFIX = ".wav"


@dataclass(frozen=True)
class RenderSettings:
    """What every file of a batch is rendered with."""

    effect: str
    knobs: dict[str, float] = field(default_factory=dict)
    mix: float = 1.0
    tail_seconds: float | None = None
    device: str = "cpu"  # torch device of the model: cpu, cuda or cuda:N (already resolved)


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
    if root.exists() and not root.is_dir():
        raise ReaTimbreError(f"output folder {shown(root)}: is a file, not a folder; nothing was rendered")
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
            device=task.settings.device,
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


def render_task_group(tasks: Sequence[RenderTask]) -> list[TaskOutcome]:
    """Render tasks of the same settings with the model run once over all their files (see the module's
    docstring); never raises. Long files, and all files if the model cannot be loaded, go through
    :func:`render_task` one by one."""
    from models.audio_io import probe
    from models.library import load_model
    from models.multi_render import render_files_together

    started = time.perf_counter()
    settings = tasks[0].settings
    try:
        effect = load_model(settings.effect, settings.device)
    except ReaTimbreError:
        return [render_task(task) for task in tasks]  # each reports the error
    together: list[int] = []
    outcomes: list[TaskOutcome | None] = [None] * len(tasks)
    for index, task in enumerate(tasks):
        if Path(task.output_path).exists():
            outcomes[index] = TaskOutcome(task.input_path, task.output_path, "skipped")
            continue
        try:
            long = probe(task.input_path).duration_seconds > LONGEST_FILE_IN_A_PASS_SECONDS
        except ReaTimbreError as exc:
            outcomes[index] = _failed(task, str(exc), started)
            continue
        if long:
            outcomes[index] = render_task(task)
        else:
            Path(task.output_path).parent.mkdir(parents=True, exist_ok=True)
            together.append(index)
    jobs = [(Path(tasks[i].input_path), Path(tasks[i].output_path)) for i in together]
    try:
        results = render_files_together(jobs, effect, dict(settings.knobs), settings.mix, settings.tail_seconds)
    except Exception as exc:  # e.g. a bad knob or tail: every file of the pass fails with the reason
        reason = str(exc) if isinstance(exc, ReaTimbreError) else f"{type(exc).__name__}: {exc}"
        results = [ReaTimbreError(reason)] * len(jobs)
    elapsed = time.perf_counter() - started
    for index, result in zip(together, results, strict=True):
        task = tasks[index]
        if isinstance(result, ReaTimbreError):
            outcomes[index] = _failed(task, str(result), started)
        else:
            seconds = float(result.duration_seconds)
            outcomes[index] = TaskOutcome(task.input_path, task.output_path, "rendered", None, seconds, elapsed)
    return [outcome for outcome in outcomes if outcome is not None]


def run_batch(
    tasks: Sequence[RenderTask],
    *,
    workers: int = 1,
    ray_address: str | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
    task_fn: Callable[[RenderTask], TaskOutcome] = render_task,
    files_per_pass: int | None = None,
) -> BatchSummary:
    """Render ``tasks`` (skipping finished ones without dispatching them) and return the summary.

    ``files_per_pass`` > 1 renders that many files per model pass in this process (:func:`render_task_group`;
    default: :data:`FILES_PER_CUDA_PASS` when the tasks render on CUDA with one local worker, else 1)."""
    started = time.perf_counter()
    outcomes: list[TaskOutcome | None] = [None] * len(tasks)
    todo: list[int] = []
    for index, task in enumerate(tasks):
        if Path(task.output_path).exists():
            skipped = TaskOutcome(task.input_path, task.output_path, "skipped")
            outcomes[index] = skipped
            if on_outcome is not None:
                on_outcome(skipped)
        else:
            todo.append(index)

    def record(position: int, outcome: TaskOutcome) -> None:
        outcomes[todo[position]] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    pending = [tasks[i] for i in todo]
    if files_per_pass is None:
        on_cuda = bool(pending) and all(task.settings.device.startswith("cuda") for task in pending)
        files_per_pass = FILES_PER_CUDA_PASS if on_cuda and workers == 1 and ray_address is None else 1
    if files_per_pass > 1 and task_fn is render_task:
        first = 0
        for group in _groups(pending, files_per_pass):
            for offset, outcome in enumerate(render_task_group(group)):
                record(first + offset, outcome)
            first += len(group)
    else:
        map_tasks(task_fn, pending, workers=workers, ray_address=ray_address, on_result=record)
    finished = [outcome for outcome in outcomes if outcome is not None]
    return BatchSummary(finished, time.perf_counter() - started)


def _groups(tasks: Sequence[RenderTask], size: int) -> list[list[RenderTask]]:
    """Consecutive tasks of equal settings, at most ``size`` to a group, in order."""
    groups: list[list[RenderTask]] = []
    for task in tasks:
        if groups and len(groups[-1]) < size and groups[-1][0].settings == task.settings:
            groups[-1].append(task)
        else:
            groups.append([task])
    return groups


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
