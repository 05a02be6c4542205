# @description ReaTimbre: shared modules (every ReaTimbre action needs this package)
# @version 0.1.0
# @author ReaTimbre
# @about
#   The modules the ReaTimbre actions import inside REAPER (standard library only): the helpers beside the
#   actions and the parts of ReaTimbre's extension and models packages they use. Also ReaTimbre's OSC pattern
#   file, which ReaPack can only put in REAPER's Data folder: see docs/reapack.md for moving it to OSC/.
# @provides
#   [nomain] .
#   [nomain] reatimbre_audition.py
#   [nomain] reatimbre_client.py
#   [nomain] reatimbre_server.py
#   [nomain] ../extension/*.py
#   [nomain] ../models/__init__.py
#   [nomain] ../models/errors.py
#   [nomain] ../models/atomic_files.py
#   [nomain] ../models/optional.py
#   [nomain] ../models/processes.py
#   [data] ReaTimbre.ReaperOSC
"""What every ReaTimbre action shares inside REAPER (standard library only).

* finds ReaTimbre's REAPER operations (``extension/``): beside the scripts in ``lib/`` once installed, or in
  the repository the scripts live in;
* reports failures in a message box, one line, and progress in REAPER's console;
* runs server jobs from REAPER's defer loop so REAPER's UI never waits on the network: requests are advanced
  without blocking (at most :data:`TICK_BUDGET_SECONDS` of work per tick), jobs are submitted as the server's
  queue has room, and jobs still running when the script ends are cancelled.

REAPER's ``RPR_defer`` is not part of ``reaper_python``: REAPER puts it (with ``RPR_atexit`` and ``RPR_runloop``)
into the namespace of the script it runs, ``__main__``, and it takes a string of code. This module reads it
from ``sys.modules["__main__"]``, and the deferred code finds this module through ``sys.modules`` (as reapy
does), so it works whatever namespace REAPER runs it in.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
for _candidate in (os.path.join(HERE, "lib"), os.path.dirname(HERE)):
    if os.path.isdir(os.path.join(_candidate, "extension")):
        if _candidate not in sys.path:
            sys.path.insert(0, _candidate)
        break

import reaper_python as R  # noqa: E402 - REAPER's module, present only inside REAPER (or its emulator)
from reatimbre_client import Client, ClientError, PendingRequest, QueueFull, ServerUnreachable  # noqa: E402

from extension.reaper_ops import InProcessApi  # noqa: E402
from models.errors import ReaTimbreError  # noqa: E402

TITLE = "ReaTimbre"
_DEFER_TICK = "import sys; sys.modules['reatimbre_action'].tick()"
_DEFER_WAITS = "import sys; sys.modules['reatimbre_action'].tick_waits()"
_DEFER_FETCHES = "import sys; sys.modules['reatimbre_action'].tick_fetches()"
_AT_EXIT = "import sys; sys.modules['reatimbre_action'].at_exit()"
EXT_SECTION = "ReaTimbre"
POLL_SECONDS = 0.25
"""A job is asked for its state at most this often."""
TICK_BUDGET_SECONDS = 0.02
"""Network work per defer tick (each step is non-blocking; this bounds how many run in one tick)."""
MAX_JOBS_IN_FLIGHT = 16
"""Jobs one action keeps on the server at once (its queue holds 32 by default; others may share it)."""
QUEUE_FULL_RETRY_SECONDS = 1.0
HEALTH_TIMEOUT_SECONDS = 2.0
EXIT_CANCEL_TIMEOUT_SECONDS = 0.2
UNREACHABLE_GRACE_SECONDS = 60.0  # a busy server may miss a few polls; give up only after this long
USER_ERRORS = (ClientError, ReaTimbreError)


def main_builtin(name: str) -> Callable[[str], Any]:
    """``RPR_defer``/``RPR_atexit``/``RPR_runloop``: they exist only in the running script's ``__main__``."""
    function = getattr(sys.modules.get("__main__"), name, None)
    if function is None:
        raise ReaTimbreError(f"{name} is missing: run this action from REAPER's action list")
    return function


def defer(code: str) -> None:
    """Run ``code`` (a string, evaluated in the script's namespace) on REAPER's next defer tick."""
    main_builtin("RPR_defer")(code)


def api() -> InProcessApi:
    """REAPER's API for extension.reaper_ops."""
    return InProcessApi(R)


def show_error(message: str) -> None:
    R.RPR_ShowMessageBox(str(message), TITLE, 0)


def show_info(message: str) -> None:
    R.RPR_ShowMessageBox(str(message), TITLE, 0)


def status(message: str) -> None:
    """A progress line in REAPER's console."""
    R.RPR_ShowConsoleMsg(f"{TITLE}: {message}\n")


def run(action: Callable[[], None]) -> None:
    """Run an action's entry point; user-fixable failures become one message box line."""
    guarded(action)


def guarded(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except USER_ERRORS as exc:
        show_error(str(exc))
    except Exception as exc:  # an unexpected bug: one line for the user, the traceback in the console
        R.RPR_ShowConsoleMsg(traceback.format_exc())
        show_error(f"unexpected {type(exc).__name__}: {exc} (details in the ReaScript console)")
    return None


def ask(title: str, fields: list[tuple[str, str]]) -> list[str] | None:
    """A REAPER input dialog; None when cancelled. Values cannot contain commas (REAPER's CSV)."""
    captions = ",".join(caption.replace(",", ";") for caption, _ in fields) + ",extrawidth=220"
    defaults = ",".join(default.replace(",", " ") for _, default in fields)
    answer = R.RPR_GetUserInputs(title, len(fields), captions, defaults, 4096)
    if not answer[0]:
        return None
    values = str(answer[4]).split(",")
    if len(values) != len(fields):
        raise ReaTimbreError("please do not type commas into ReaTimbre's dialogs")
    return [v.strip() for v in values]


def get_state(key: str) -> str:
    return str(R.RPR_GetExtState(EXT_SECTION, key) or "")


def set_state(key: str, value: Any, persist: bool = False) -> None:
    R.RPR_SetExtState(EXT_SECTION, key, value if isinstance(value, str) else json.dumps(value), persist)


def parse_number(text: str, what: str, low: float | None = None, high: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ReaTimbreError(f"{what} must be a number, got {text!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ReaTimbreError(f"{what} must be between {low} and {high}, got {value}")
    return value


def parse_choice(text: str, what: str, choices: list[str]) -> str:
    low = text.strip().lower()
    if low not in choices:
        raise ReaTimbreError(f"{what} must be one of {', '.join(choices)}, got {text!r}")
    return low


# --------------------------------------------------------------------------- the defer loop
class Job:
    """One piece of server work: submitted when the queue has room, then polled until it ends."""

    def __init__(self, kind: str, payload: dict[str, Any]) -> None:
        self.kind, self.payload = kind, payload
        self.job_id: str | None = None
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.progress = 0.0
        self.stage = ""
        self.finished = False
        self.last_poll = 0.0

    @property
    def running(self) -> bool:
        return self.job_id is not None and not self.finished

    def fail(self, message: str) -> None:
        self.finished, self.error = True, message


class JobRunner:
    """Submits jobs and waits for them from REAPER's defer loop without ever blocking it.

    At most one HTTP request is open at a time and it is advanced without waiting (see
    ``reatimbre_client.PendingRequest``). At most :data:`MAX_JOBS_IN_FLIGHT` jobs are on the server at once; a
    full server queue (HTTP 429) is retried after :data:`QUEUE_FULL_RETRY_SECONDS`. ``on_done(results, errors)``
    runs once every job has ended: ``results[n]`` is job n's result or None, ``errors`` one line per failure.
    """

    def __init__(
        self,
        client: Client,
        work: list[tuple[str, dict[str, Any]]],
        label: str,
        on_done: Callable[[list[dict[str, Any] | None], list[str]], None],
    ) -> None:
        self.client = client
        self.jobs = [Job(kind, payload) for kind, payload in work]
        self.label = label
        self.on_done = on_done
        self.request: PendingRequest | None = None
        self.request_job: Job | None = None
        self.request_kind = ""
        self.not_before = 0.0
        self.unreachable_since: float | None = None
        self.last_report = (-1, "")
        self.queue_full_retries = 0
        self._next_poll = 0

    @property
    def finished(self) -> bool:
        return all(job.finished for job in self.jobs)

    def step(self) -> bool:
        """Do what the network allows now without waiting; True when a request completed (more may follow)."""
        if self.request is not None:
            if not self.request.step():
                return False
            request, job, kind = self.request, self.request_job, self.request_kind
            self.request, self.request_job = None, None
            assert job is not None
            self._handle(request, job, kind)
            self._report()
            return True
        now = time.monotonic()
        if now < self.not_before or self.finished:
            return False
        job, kind, method, path, body = self._next(now)
        if job is None:
            return False
        try:
            self.request = self.client.start(method, path, body)
        except ClientError as exc:
            self._unreachable(exc)
            return False
        self.request_job, self.request_kind = job, kind
        if kind == "poll":
            job.last_poll = now
        self.request.step()
        return False

    def _next(self, now: float) -> tuple[Job | None, str, str, str, dict[str, Any] | None]:
        in_flight = sum(1 for job in self.jobs if job.running)
        waiting = next((job for job in self.jobs if job.job_id is None and not job.finished), None)
        if waiting is not None and in_flight < MAX_JOBS_IN_FLIGHT:
            return waiting, "submit", "POST", "/" + waiting.kind, waiting.payload
        running = [job for job in self.jobs if job.running]
        for offset in range(len(running)):
            job = running[(self._next_poll + offset) % len(running)]
            if now - job.last_poll >= POLL_SECONDS:
                self._next_poll = (self._next_poll + offset + 1) % len(running)
                return job, "poll", "GET", f"/jobs/{job.job_id}", None
        return None, "", "", "", None

    def _handle(self, request: PendingRequest, job: Job, kind: str) -> None:
        error = request.error
        if isinstance(error, QueueFull):
            self.queue_full_retries += 1
            self.not_before = time.monotonic() + QUEUE_FULL_RETRY_SECONDS
            return
        if isinstance(error, ServerUnreachable):
            self._unreachable(error)
            return
        self.unreachable_since = None
        if error is not None:
            job.fail(str(error))
            return
        answer = request.result if isinstance(request.result, dict) else {}
        if kind == "submit":
            if not answer.get("job_id"):
                job.fail(f"ReaTimbre server did not start a {job.kind} job")
            else:
                job.job_id = str(answer["job_id"])
            return
        state = answer.get("state")
        job.progress = float(answer.get("progress") or 0.0)
        job.stage = str(answer.get("stage") or "")
        if state == "done":
            job.finished, job.progress, job.result = True, 1.0, answer.get("result") or {}
        elif state in ("failed", "cancelled"):
            job.fail(f"{answer.get('kind', job.kind)} {state}: {answer.get('error') or 'no reason given'}")

    def _unreachable(self, error: ClientError) -> None:
        now = time.monotonic()
        self.unreachable_since = self.unreachable_since or now
        self.not_before = now + POLL_SECONDS
        if now - self.unreachable_since > UNREACHABLE_GRACE_SECONDS:
            for job in self.jobs:
                if not job.finished:
                    job.fail(str(error))

    def _report(self) -> None:
        percent = int(100 * sum(job.progress for job in self.jobs) / max(1, len(self.jobs)))
        stage = next((job.stage for job in self.jobs if job.running and job.stage), "")
        report = (percent // 10, stage)
        if report != self.last_report:
            self.last_report = report
            status(f"{self.label}: {percent}%" + (f" ({stage})" if stage else ""))

    def cancel_unfinished(self) -> None:
        """REAPER is closing or the script was stopped: cancel what the server still runs for us (briefly)."""
        if self.request is not None:
            self.request.cancel()
        quick = Client(self.client.host, self.client.port, timeout_seconds=EXIT_CANCEL_TIMEOUT_SECONDS)
        for job in self.jobs:
            if job.running:
                try:
                    quick.cancel(str(job.job_id))
                except ClientError:
                    pass
                job.fail(f"{job.kind} cancelled: the action was stopped")


_RUNNERS: list[JobRunner] = []
_EXIT_HOOKED: list[bool] = []


def run_jobs(
    client: Client,
    work: list[tuple[str, dict[str, Any]]],
    label: str,
    on_done: Callable[[list[dict[str, Any] | None], list[str]], None],
) -> None:
    """Submit ``(kind, payload)`` jobs and wait for them without blocking REAPER, then call ``on_done``."""
    _RUNNERS.append(JobRunner(client, work, label, on_done))
    status(f"{label}: started")
    if not _EXIT_HOOKED:
        _EXIT_HOOKED.append(True)
        main_builtin("RPR_atexit")(_AT_EXIT)
    defer(_DEFER_TICK)


def tick() -> None:
    """One defer-loop tick: advance the network work for at most TICK_BUDGET_SECONDS, finish what ended."""
    deadline = time.monotonic() + TICK_BUDGET_SECONDS
    for runner in list(_RUNNERS):
        while _advance(runner) and time.monotonic() < deadline:
            pass
        if runner.finished:
            _RUNNERS.remove(runner)
            results = [job.result for job in runner.jobs]
            errors = [job.error for job in runner.jobs if job.error]
            guarded(runner.on_done, results, errors)
    if _RUNNERS:
        defer(_DEFER_TICK)


def _advance(runner: JobRunner) -> bool:
    try:
        return runner.step()
    except Exception as exc:  # a bug: end this runner's jobs with one line each, the traceback in the console
        R.RPR_ShowConsoleMsg(traceback.format_exc())
        for job in runner.jobs:
            if not job.finished:
                job.fail(f"unexpected {type(exc).__name__}: {exc}")
        return False


def at_exit() -> None:
    """The script ends (REAPER closes, or the user stops it): leave no job running on the server."""
    while _RUNNERS:
        _RUNNERS.pop().cancel_unfinished()


class _ServerWait:
    def __init__(self, running: bool, timeout_seconds: float, then: Callable[[bool], None]) -> None:
        self.running, self.then = running, then
        self.deadline = time.monotonic() + timeout_seconds
        self.request: PendingRequest | None = None
        self.next_check = 0.0


_WAITS: list[_ServerWait] = []


def wait_for_server(running: bool, timeout_seconds: float, then: Callable[[bool], None]) -> None:
    """From the defer loop, check (without blocking) until the server answers /health (``running``) or stops
    answering (not ``running``), or ``timeout_seconds`` pass; then call ``then(ok)``."""
    _WAITS.append(_ServerWait(running, timeout_seconds, then))
    defer(_DEFER_WAITS)


def tick_waits() -> None:
    now = time.monotonic()
    for wait in list(_WAITS):
        ok = None
        if wait.request is None and now >= wait.next_check:
            wait.next_check = now + POLL_SECONDS
            try:
                wait.request = Client(timeout_seconds=HEALTH_TIMEOUT_SECONDS).start("GET", "/health")
            except ClientError:
                ok = not wait.running
        if wait.request is not None and wait.request.step():
            answering = wait.request.error is None and (wait.request.result or {}).get("status") == "ok"
            ok = answering == wait.running
            wait.request = None
        if ok or now > wait.deadline:
            _WAITS.remove(wait)
            if wait.request is not None:
                wait.request.cancel()
            guarded(wait.then, bool(ok))
    if _WAITS:
        defer(_DEFER_WAITS)


_FETCHES: list[tuple[PendingRequest, Callable[[Any], None]]] = []


def fetch(client: Client, method: str, path: str, then: Callable[[Any], None]) -> None:
    """Send one request from the defer loop (REAPER never waits for the answer), then call ``then(answer)``;
    a failed request is shown as one line instead."""
    _FETCHES.append((client.start(method, path), then))
    defer(_DEFER_FETCHES)


def tick_fetches() -> None:
    for entry in list(_FETCHES):
        request, then = entry
        if request.step():
            _FETCHES.remove(entry)
            if request.error is not None:
                show_error(str(request.error))
            else:
                guarded(then, request.result)
    if _FETCHES:
        defer(_DEFER_FETCHES)


def report_errors(errors: list[str], done_message: str) -> None:
    """Tell the user what finished and, in one box, what failed."""
    if errors:
        show_error(done_message + "\n\nFailed:\n" + "\n".join(errors))
    else:
        status(done_message)
