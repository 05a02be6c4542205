"""A bounded job queue served by worker threads, with progress, stage text, results and cancellation.

A job is any callable ``run(ctx) -> dict``; :class:`JobContext` lets it report progress and ask whether it was
cancelled. The queue holds at most ``queue_size`` waiting jobs (submitting more raises :class:`QueueFull`,
which the API answers with 429), and only the newest ``max_finished_jobs`` finished jobs are remembered,
so memory stays bounded however long the server runs.

Cancelling a running job sets its flag; a job that has not stopped ``cancel_grace_s`` later (it never polls, or
it is stuck in a system call) is marked cancelled anyway, its cleanup runs, and its worker thread is replaced, so
cancel always takes effect within a second and a stuck job never holds a worker (or the queue) for good. The
replaced thread's late result is discarded. The deadline is kept with the job and every status read checks it, so
a status asked for after the deadline says ``cancelled`` even when a loaded machine wakes the timer late.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from models.errors import ReaTimbreError
from models.oserrors import describe_os_error

log = logging.getLogger("reatimbre.jobs")

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{32}")  # uuid4().hex; always used with fullmatch
CANCEL_GRACE_S = 0.5
#: Replaced (stuck) worker threads that may be alive at once; beyond this no more replacements are started.
MAX_STUCK_THREADS = 8


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


class QueueFull(Exception):
    """The job queue is at capacity; the client should retry later."""


class UnknownJob(KeyError):
    """No job with that id (never existed, or forgotten after it finished long ago)."""


class JobContext:
    """What a running job sees: progress reporting and its cancellation flag."""

    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self._job = job
        self._lock = lock

    @property
    def job_id(self) -> str:
        return self._job.job_id

    def progress(self, fraction: float, stage: str | None = None) -> None:
        """Report progress as a fraction 0..1 (clamped, never decreasing) and optionally a new stage text."""
        with self._lock:
            if self._job.state in FINISHED_STATES:
                return  # an abandoned job still running: its status is final
            clamped = min(1.0, max(0.0, float(fraction)))
            self._job.progress = max(self._job.progress, clamped)
            if stage is not None:
                self._job.stage = stage

    def stage(self, text: str) -> None:
        """Set the stage text without changing progress."""
        with self._lock:
            if self._job.state not in FINISHED_STATES:
                self._job.stage = text

    def should_cancel(self) -> bool:
        """True once the job has been cancelled; long jobs poll this and stop early."""
        return self._job.cancel_requested.is_set()


JobFunction = Callable[[JobContext], dict[str, Any]]


@dataclass
class Job:
    """One submitted job and everything the status endpoint reports about it."""

    job_id: str
    kind: str
    run: JobFunction
    cleanup: Callable[[], None] | None = None
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    stage: str = "queued"
    result: dict[str, Any] | None = None
    error: str | None = None
    submitted_at_s: float = field(default_factory=time.time)
    finished_at_s: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    #: ``time.monotonic()`` after which a running job that has not stopped is abandoned; None until cancelled.
    abandon_at_monotonic_s: float | None = None
    worker: threading.Thread | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "state": str(self.state),
            "progress": self.progress,
            "stage": self.stage,
            "result": self.result,
            "error": self.error,
        }


class JobManager:
    """Runs submitted jobs on ``workers`` threads from a queue of at most ``queue_size`` waiting jobs."""

    def __init__(
        self,
        workers: int = 2,
        queue_size: int = 32,
        max_finished_jobs: int = 500,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        if workers < 1 or queue_size < 1 or max_finished_jobs < 1:
            raise ReaTimbreError("workers, queue size and finished-job memory must each be at least 1")
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._max_finished_jobs = max_finished_jobs
        self._cancel_grace_s = cancel_grace_s
        self._stopping = False
        self._threads: list[threading.Thread] = []  # the active workers
        self._stuck: list[threading.Thread] = []  # replaced workers still inside an abandoned job
        self._started = 0
        for _ in range(workers):
            self._start_worker()

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._worker, name=f"reatimbre-job-{self._started}", daemon=True)
        self._started += 1
        self._threads.append(thread)
        thread.start()

    def submit(self, kind: str, run: JobFunction, cleanup: Callable[[], None] | None = None) -> Job:
        """Queue ``run`` as a job of ``kind``; raises :class:`QueueFull` when the queue is at capacity.

        ``cleanup`` runs exactly once when the job ends in any state (also if it is cancelled before it starts
        or refused because the queue is full).
        """
        job = Job(job_id=uuid.uuid4().hex, kind=kind, run=run, cleanup=cleanup)
        with self._lock:
            if self._stopping:
                _run_cleanup(job)
                raise QueueFull("the server is shutting down")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                _run_cleanup(job)
                raise QueueFull(f"the job queue is full ({self._queue.maxsize} waiting); retry later") from None
            self._jobs[job.job_id] = job
        return job

    def status(self, job_id: str) -> dict[str, Any]:
        """A snapshot of the job's status (see :meth:`Job.to_dict`)."""
        with self._lock:
            job = self._get(job_id)
            self._abandon_if_overdue(job)
            return job.to_dict()

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job: a queued one ends at once, a running one stops at its next cancellation check."""
        with self._lock:
            job = self._get(job_id)
            self._abandon_if_overdue(job)  # a second cancel past the deadline answers as a status read does
            if job.state not in FINISHED_STATES:
                job.cancel_requested.set()
                if job.state is JobState.QUEUED:
                    self._finish(job, JobState.CANCELLED, stage="cancelled")
                elif job.abandon_at_monotonic_s is None:
                    job.stage = "cancelling"
                    job.abandon_at_monotonic_s = time.monotonic() + self._cancel_grace_s
                    # Status reads check the deadline too; the timer moves the queue on when nobody asks.
                    timer = threading.Timer(self._cancel_grace_s, self._abandon_when_due, args=(job,))
                    timer.daemon = True
                    timer.start()
            return job.to_dict()

    def _abandon_when_due(self, job: Job) -> None:
        """The cancel timer, fired at the job's deadline: abandons the job if it is still running."""
        with self._lock:
            self._abandon_if_overdue(job, now_monotonic_s=float("inf"))

    def _abandon_if_overdue(self, job: Job, now_monotonic_s: float | None = None) -> None:
        """A job running past its cancel deadline is cancelled without its cooperation (caller holds the lock)."""
        deadline = job.abandon_at_monotonic_s
        now = time.monotonic() if now_monotonic_s is None else now_monotonic_s
        if job.state is not JobState.RUNNING or deadline is None or now < deadline:
            return
        log.warning("job %s (%s) did not stop within %.1f s of its cancel; abandoned", job.job_id, job.kind,
                    self._cancel_grace_s)  # fmt: skip
        self._finish(job, JobState.CANCELLED, stage="cancelled (the job did not stop in time and was abandoned)")
        worker = job.worker
        if worker is None or worker not in self._threads or self._stopping:
            return
        self._stuck = [thread for thread in self._stuck if thread.is_alive()]
        if len(self._stuck) >= MAX_STUCK_THREADS:
            # Keep this thread as a worker (it takes jobs again once its job returns) rather than grow more.
            log.warning("%d abandoned jobs are still stuck; not replacing another worker", len(self._stuck))
            return
        self._threads.remove(worker)
        self._stuck.append(worker)
        self._start_worker()

    def counts(self) -> dict[str, int]:
        """How many remembered jobs are in each state."""
        with self._lock:
            for job in list(self._jobs.values()):  # a copy: finishing a job may forget the oldest finished ones
                self._abandon_if_overdue(job)
            totals = {str(state): 0 for state in JobState}
            for job in self._jobs.values():
                totals[str(job.state)] += 1
            return totals

    def wait(self, job_id: str, timeout_s: float = 60.0, poll_s: float = 0.02) -> dict[str, Any]:
        """Block until the job finishes (for tests and the CLI); returns its final status."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(job_id)
            if status["state"] in FINISHED_STATES:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish within {timeout_s} s")
            time.sleep(poll_s)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel every job that has not finished and stop the workers."""
        with self._lock:
            self._stopping = True
            for job in list(self._jobs.values()):
                if job.state not in FINISHED_STATES:
                    job.cancel_requested.set()
                    if job.state is JobState.QUEUED:
                        self._finish(job, JobState.CANCELLED, stage="cancelled: server stopped")
            threads = list(self._threads)
        for _ in threads:
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                break
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _get(self, job_id: str) -> Job:
        if not isinstance(job_id, str) or JOB_ID_PATTERN.fullmatch(job_id) is None:
            raise UnknownJob(job_id)
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(job_id)
        return job

    def _worker(self) -> None:
        me = threading.current_thread()
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.state is not JobState.QUEUED:
                    continue  # cancelled while waiting
                job.state = JobState.RUNNING
                job.stage = "running"
                job.worker = me
            self._execute(job)
            with self._lock:
                if me not in self._threads:
                    return  # this thread was replaced while its job was abandoned

    def _execute(self, job: Job) -> None:
        context = JobContext(job, self._lock)
        error: str | None
        try:
            result = _plain_json(job.run(context))
        except ReaTimbreError as exc:
            outcome, result, error = JobState.FAILED, None, _one_line(str(exc))
        except OSError as exc:  # what the OS refused, as one line (no traceback: not a bug)
            outcome, result, error = JobState.FAILED, None, _one_line(f"failed: {describe_os_error(exc)}")
        except Exception as exc:  # a bug in a job must not kill the worker thread
            log.exception("job %s (%s) crashed", job.job_id, job.kind)
            outcome, result, error = (
                JobState.FAILED,
                None,
                _one_line(f"internal error: {type(exc).__name__}: {exc}"),
            )
        else:
            outcome, error = JobState.DONE, None
        if job.cancel_requested.is_set() and outcome is JobState.FAILED:
            outcome, error = JobState.CANCELLED, None
        with self._lock:
            if job.state in FINISHED_STATES:
                return  # abandoned after a cancel: its late outcome is discarded
            self._finish(job, outcome, result=result, error=error)

    def _finish(
        self,
        job: Job,
        state: JobState,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        stage: str | None = None,
    ) -> None:
        """Record a job's end (caller holds the lock), run its cleanup, forget the oldest finished jobs."""
        job.state = state
        job.result = result
        job.error = error
        job.stage = stage or str(state)
        if state is JobState.DONE:
            job.progress = 1.0
        job.finished_at_s = time.time()
        _run_cleanup(job)
        finished = [key for key, known in self._jobs.items() if known.state in FINISHED_STATES]
        for key in finished[: max(0, len(finished) - self._max_finished_jobs)]:
            del self._jobs[key]


def _run_cleanup(job: Job) -> None:
    cleanup, job.cleanup = job.cleanup, None
    if cleanup is not None:
        try:
            cleanup()
        except Exception:
            log.exception("cleanup of job %s failed", job.job_id)


def _plain_json(result: dict[str, Any]) -> dict[str, Any]:
    """The result as plain JSON types (numpy scalars and arrays, paths and the like become numbers, lists, text)."""

    def convert(value: Any) -> Any:
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            return value.tolist()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise TypeError(f"a job result holds a {type(value).__name__}, which JSON cannot carry")

    return json.loads(json.dumps(result, default=convert, allow_nan=False))


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "failed"
