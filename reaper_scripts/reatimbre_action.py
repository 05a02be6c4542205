"""What every ReaTimbre action shares inside REAPER (standard library only).

* finds ReaTimbre's REAPER operations (``extension/``): beside the scripts in ``lib/`` once installed, or in
  the repository the scripts live in;
* reports failures in a message box, one line, and progress in REAPER's console;
* watches server jobs from REAPER's defer loop so REAPER's UI never waits: each tick polls at most every
  :data:`POLL_SECONDS` with a short HTTP timeout, then hands control back.

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
from reatimbre_client import Client, ClientError, ServerUnreachable  # noqa: E402

from extension.reaper_ops import InProcessApi  # noqa: E402
from models.errors import ReaTimbreError  # noqa: E402

TITLE = "ReaTimbre"
_DEFER_TICK = "import sys; sys.modules['reatimbre_action'].tick()"
_DEFER_WAITS = "import sys; sys.modules['reatimbre_action'].tick_waits()"
EXT_SECTION = "ReaTimbre"
POLL_SECONDS = 0.25
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
class JobWatch:
    """Server jobs being waited for; ``on_done(results, errors)`` runs once all have ended."""

    def __init__(
        self,
        client: Client,
        job_ids: list[str],
        label: str,
        on_done: Callable[[list[dict[str, Any] | None], list[str]], None],
    ) -> None:
        self.client = client
        self.job_ids = job_ids
        self.label = label
        self.on_done = on_done
        self.results: list[dict[str, Any] | None] = [None] * len(job_ids)
        self.errors: list[str] = []
        self.finished = [False] * len(job_ids)
        self.progress = [0.0] * len(job_ids)
        self.last_poll = 0.0
        self.last_report = (-1, "")
        self.unreachable_since: float | None = None

    def poll(self) -> bool:
        """Poll every unfinished job once; True when all have ended."""
        stage = ""
        for n, job_id in enumerate(self.job_ids):
            if self.finished[n]:
                continue
            try:
                job = self.client.job(job_id)
            except ServerUnreachable as exc:
                now = time.monotonic()
                self.unreachable_since = self.unreachable_since or now
                if now - self.unreachable_since > UNREACHABLE_GRACE_SECONDS:
                    self.finished[n] = True
                    self.errors.append(str(exc))
                continue
            except ClientError as exc:
                self.finished[n] = True
                self.errors.append(str(exc))
                continue
            self.unreachable_since = None
            state = job.get("state")
            self.progress[n] = float(job.get("progress") or 0.0)
            stage = str(job.get("stage") or stage)
            if state == "done":
                self.finished[n], self.progress[n] = True, 1.0
                self.results[n] = job.get("result") or {}
            elif state in ("failed", "cancelled"):
                self.finished[n] = True
                self.errors.append(f"{job.get('kind', 'job')} {state}: {job.get('error') or 'no reason given'}")
        percent = int(100 * sum(self.progress) / max(1, len(self.progress)))
        report = (percent // 10, stage)
        if report != self.last_report:
            self.last_report = report
            status(f"{self.label}: {percent}%" + (f" ({stage})" if stage else ""))
        return all(self.finished)


_WATCHES: list[JobWatch] = []


def watch(
    client: Client, job_ids: list[str], label: str, on_done: Callable[[list[dict[str, Any] | None], list[str]], None]
) -> None:
    """Wait for jobs without blocking REAPER, then call ``on_done``."""
    _WATCHES.append(JobWatch(client, job_ids, label, on_done))
    status(f"{label}: started")
    defer(_DEFER_TICK)


def tick() -> None:
    """One defer-loop tick: poll the watched jobs if it is time, finish those that ended."""
    now = time.monotonic()
    for w in list(_WATCHES):
        if now - w.last_poll < POLL_SECONDS:
            continue
        w.last_poll = now
        if w.poll():
            _WATCHES.remove(w)
            guarded(w.on_done, w.results, w.errors)
    if _WATCHES:
        defer(_DEFER_TICK)


class _Wait:
    def __init__(self, condition: Callable[[], bool], timeout_seconds: float, then: Callable[[bool], None]) -> None:
        self.condition, self.then = condition, then
        self.deadline = time.monotonic() + timeout_seconds
        self.last_check = 0.0


_WAITS: list[_Wait] = []


def wait_until(condition: Callable[[], bool], timeout_seconds: float, then: Callable[[bool], None]) -> None:
    """Check ``condition`` from the defer loop (every POLL_SECONDS) until true or timed out; then ``then(ok)``."""
    _WAITS.append(_Wait(condition, timeout_seconds, then))
    defer(_DEFER_WAITS)


def tick_waits() -> None:
    now = time.monotonic()
    for wait in list(_WAITS):
        if now - wait.last_check < POLL_SECONDS:
            continue
        wait.last_check = now
        ok = bool(guarded(wait.condition))
        if ok or now > wait.deadline:
            _WAITS.remove(wait)
            guarded(wait.then, ok)
    if _WAITS:
        defer(_DEFER_WAITS)


def report_errors(errors: list[str], done_message: str) -> None:
    """Tell the user what finished and, in one box, what failed."""
    if errors:
        show_error(done_message + "\n\nFailed:\n" + "\n".join(errors))
    else:
        status(done_message)
