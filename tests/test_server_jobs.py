"""The job manager: progress, results, failures, cancellation, the bounded queue and bounded memory."""

from __future__ import annotations

import threading
import time

import pytest

from models.errors import ReaTimbreError
from server.jobs import JobContext, JobManager, QueueFull, UnknownJob


def _gated(gate: threading.Event, result: dict | None = None):
    """A job that reports progress, then waits for ``gate`` (or cancellation) before finishing."""

    def run(ctx: JobContext) -> dict:
        ctx.progress(0.5, "waiting for the gate")
        while not gate.wait(0.005):
            if ctx.should_cancel():
                raise ReaTimbreError("cancelled")
        return result or {"ok": True}

    return run


@pytest.fixture
def manager():
    jobs = JobManager(workers=1, queue_size=2, max_finished_jobs=3)
    yield jobs
    jobs.shutdown(timeout_s=2)


def _wait_for_state(manager: JobManager, job_id: str, state: str, timeout_s: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = manager.status(job_id)
        if status["state"] == state:
            return status
        time.sleep(0.005)
    raise AssertionError(f"job never reached {state}: {manager.status(job_id)}")


def test_job_reports_progress_stage_and_result(manager: JobManager) -> None:
    gate = threading.Event()
    job = manager.submit("test", _gated(gate, {"answer": 42}))
    running = _wait_for_state(manager, job.job_id, "running")
    assert running["progress"] == 0.5 and running["stage"] == "waiting for the gate"
    gate.set()
    done = manager.wait(job.job_id, timeout_s=5)
    assert done == {
        "job_id": job.job_id,
        "kind": "test",
        "state": "done",
        "progress": 1.0,
        "stage": "done",
        "result": {"answer": 42},
        "error": None,
    }


def test_failures_are_one_line_and_do_not_kill_the_worker(manager: JobManager) -> None:
    def bad_input(ctx: JobContext) -> dict:
        raise ReaTimbreError("input file\nis not audio")

    def bug(ctx: JobContext) -> dict:
        raise ZeroDivisionError("oops")

    first = manager.wait(manager.submit("test", bad_input).job_id)
    assert first["state"] == "failed" and first["error"] == "input file is not audio"
    second = manager.wait(manager.submit("test", bug).job_id)
    assert second["state"] == "failed" and "ZeroDivisionError" in second["error"]
    third = manager.wait(manager.submit("test", lambda ctx: {"still": "working"}).job_id)
    assert third["state"] == "done" and third["result"] == {"still": "working"}


def test_cancel_running_and_queued_jobs_runs_cleanup_once(manager: JobManager) -> None:
    gate = threading.Event()
    cleaned: list[str] = []
    running = manager.submit("test", _gated(gate), cleanup=lambda: cleaned.append("running"))
    _wait_for_state(manager, running.job_id, "running")
    queued = manager.submit("test", _gated(gate), cleanup=lambda: cleaned.append("queued"))
    assert manager.cancel(queued.job_id)["state"] == "cancelled"
    assert manager.cancel(running.job_id)["stage"] == "cancelling"
    assert manager.wait(running.job_id)["state"] == "cancelled"
    assert manager.cancel(running.job_id)["state"] == "cancelled"  # cancelling twice is harmless
    assert sorted(cleaned) == ["queued", "running"]


def test_full_queue_refuses_and_recovers(manager: JobManager) -> None:
    gate = threading.Event()
    cleaned: list[int] = []
    first = manager.submit("test", _gated(gate))
    _wait_for_state(manager, first.job_id, "running")
    waiting = [manager.submit("test", _gated(gate)) for _ in range(2)]
    with pytest.raises(QueueFull):
        manager.submit("test", _gated(gate), cleanup=lambda: cleaned.append(1))
    assert cleaned == [1]
    gate.set()
    for job in [first, *waiting]:
        assert manager.wait(job.job_id)["state"] == "done"
    assert manager.wait(manager.submit("test", _gated(gate)).job_id)["state"] == "done"


def test_only_the_newest_finished_jobs_are_remembered(manager: JobManager) -> None:
    ids = [manager.wait(manager.submit("test", lambda ctx: {}).job_id)["job_id"] for _ in range(6)]
    with pytest.raises(UnknownJob):
        manager.status(ids[0])
    assert [manager.status(job_id)["state"] for job_id in ids[-3:]] == ["done"] * 3
    assert sum(manager.counts().values()) == 3


def test_shutdown_cancels_unfinished_jobs() -> None:
    jobs = JobManager(workers=1, queue_size=4)
    gate = threading.Event()
    running = jobs.submit("test", _gated(gate))
    _wait_for_state(jobs, running.job_id, "running")
    queued = jobs.submit("test", _gated(gate))
    jobs.shutdown(timeout_s=2)
    assert jobs.status(running.job_id)["state"] == "cancelled"
    assert jobs.status(queued.job_id)["state"] == "cancelled"
    with pytest.raises(QueueFull):
        jobs.submit("test", lambda ctx: {})


def test_a_job_that_ignores_cancel_is_cancelled_within_a_second_and_frees_its_worker() -> None:
    """A job stuck where it never polls (a blocking read, a long native call) must not hold the worker or the
    queue: cancel takes effect within a second, its cleanup runs, and later jobs run (no 429 for good)."""
    manager = JobManager(workers=1, queue_size=2)
    stuck_until = threading.Event()
    cleaned: list[str] = []

    def stuck(ctx: JobContext) -> dict:
        stuck_until.wait(30)
        ctx.progress(0.9, "writing late")
        return {"late": True}

    job = manager.submit("stuck", stuck, cleanup=lambda: cleaned.append("stuck"))
    _wait_for_state(manager, job.job_id, "running")
    waiting = [manager.submit("test", lambda ctx, n=n: {"n": n}) for n in range(2)]  # the queue (size 2) is full now
    manager.cancel(job.job_id)
    status = _wait_for_state(manager, job.job_id, "cancelled", timeout_s=1.0)  # asked within a second of the cancel
    assert status["error"] is None
    assert cleaned == ["stuck"]
    assert [manager.wait(w.job_id, timeout_s=2)["result"] for w in waiting] == [{"n": 0}, {"n": 1}]
    for _ in range(3):  # the queue keeps accepting and running jobs
        assert manager.wait(manager.submit("test", lambda ctx: {}).job_id, timeout_s=2)["state"] == "done"
    stuck_until.set()  # the abandoned job finishes late: its result is discarded, its cleanup not run again
    time.sleep(0.1)
    late = manager.status(job.job_id)
    assert late["state"] == "cancelled" and late["stage"] == status["stage"] and cleaned == ["stuck"]
    manager.shutdown(timeout_s=2)


def test_a_status_asked_after_the_cancel_deadline_says_cancelled_even_if_the_timer_is_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a loaded machine the cancel timer can wake long after its deadline; whoever asks for the status after the
    deadline must still see ``cancelled``, and the next job must get a worker."""
    import server.jobs as jobs

    class NeverFires:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.daemon = False

        def start(self) -> None:
            pass

    monkeypatch.setattr(jobs.threading, "Timer", NeverFires)
    manager = JobManager(workers=1, queue_size=2, cancel_grace_s=0.05)
    release = threading.Event()
    job = manager.submit("stuck", lambda ctx: release.wait(30) and {})
    _wait_for_state(manager, job.job_id, "running")
    asked_for_cancel = time.monotonic()
    assert manager.cancel(job.job_id)["state"] == "running"
    assert manager.status(job.job_id)["state"] == "running" or time.monotonic() - asked_for_cancel >= 0.05
    time.sleep(0.06)
    assert manager.status(job.job_id)["state"] == "cancelled"
    assert manager.wait(manager.submit("test", lambda ctx: {"ran": True}).job_id, timeout_s=2)["result"] == {
        "ran": True
    }
    release.set()
    manager.shutdown(timeout_s=2)


def test_stuck_workers_are_replaced_only_up_to_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs that never return cannot make the server start threads without end: past the limit the worker is kept
    and takes jobs again once its abandoned job returns."""
    import server.jobs as jobs

    monkeypatch.setattr(jobs, "MAX_STUCK_THREADS", 1)
    manager = JobManager(workers=1, queue_size=4)
    releases = [threading.Event(), threading.Event()]
    stuck = []
    for release in releases:
        job = manager.submit("stuck", lambda ctx, release=release: release.wait(30) and {})
        _wait_for_state(manager, job.job_id, "running")
        manager.cancel(job.job_id)
        _wait_for_state(manager, job.job_id, "cancelled", timeout_s=1.0)
        stuck.append(job)
    after = manager.submit("test", lambda ctx: {"ran": True})
    time.sleep(0.2)
    assert manager.status(after.job_id)["state"] == "queued"  # one replacement only, and it is stuck too
    before = threading.active_count()
    releases[1].set()  # the kept worker's job returns: it runs the queued job
    assert manager.wait(after.job_id, timeout_s=2)["result"] == {"ran": True}
    assert threading.active_count() <= before
    releases[0].set()
    manager.shutdown(timeout_s=2)
