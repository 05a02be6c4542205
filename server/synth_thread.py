"""One thread that owns the server's synth instances: they are made, used and destroyed in it.

A plug-in hosted through DawDreamer (amsynth, Kars) hangs when it is loaded in one thread and again in another,
and a process whose plug-ins were loaded in a thread that has ended hangs when Python destroys them at exit
(measured: the server after a match job never exited). So every job that renders a synth hands its work to
this thread and waits for the answer; at interpreter exit the thread drops its synths itself, then ends.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
STOP_TIMEOUT_SECONDS = 10.0


class SynthThread:
    """Runs ``work(state)`` calls one at a time in a single daemon thread; ``state`` is the thread's own dict."""

    def __init__(self, name: str = "reatimbre-synths") -> None:
        self._name = name
        self._requests: queue.Queue[tuple[Callable[[dict[str, Any]], Any], _Reply] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def call(self, work: Callable[[dict[str, Any]], T]) -> T:
        """Run ``work`` in the synth thread with its state and return what it returns (or raise what it raised)."""
        self._ensure_started()
        reply = _Reply()
        self._requests.put((work, reply))
        reply.done.wait()
        if reply.error is not None:
            raise reply.error
        return reply.value

    def stop(self) -> None:
        """Drop the synths in their own thread and end it (at exit; a later ``call`` starts a new thread)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._requests.put(None)
            thread.join(STOP_TIMEOUT_SECONDS)

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        state: dict[str, Any] = {}
        while True:
            request = self._requests.get()
            if request is None:
                state.clear()
                return
            work, reply = request
            try:
                reply.value = work(state)
            except BaseException as exc:  # handed to the caller, whatever it is
                reply.error = exc
            finally:
                reply.done.set()


class _Reply:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.value: Any = None


SYNTHS = SynthThread()
"""The server's synth thread (match jobs keep one instance of each synth in its state)."""
atexit.register(SYNTHS.stop)
