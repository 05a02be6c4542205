"""A wall-clock budget for one synth's answer: render while one more render still ends in time.

``match`` renders the inferred patch at its candidate notes, then further guesses, then refines by ear; each of
those costs one render of the synth (Vital about 70 ms on a 2-core AMD EPYC, Dexed about 4 ms with its mel). With a
budget (by default 1 s: :data:`DEFAULT_SECONDS_PER_SYNTH`), the further guesses and the refinement stop when one more
render as long as the longest so far would run past it, so the answer comes within the budget on any machine, with
fewer renders on a slow one. Without one (``--seconds-per-synth none``) they run to their counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from models.errors import ReaTimbreError

T = TypeVar("T")

#: ``match``'s budget per synth unless asked otherwise (s), as the server's job's: the answer time the product
#: promises, kept on any machine; the synths' render counts are what it may spend.
DEFAULT_SECONDS_PER_SYNTH = 1.0


class Deadline:
    """``seconds`` from ``started`` (a :func:`time.perf_counter` reading); None: no limit."""

    def __init__(self, started: float, seconds: float | None) -> None:
        if seconds is not None and not seconds > 0.0:
            raise ReaTimbreError(f"a time budget must be above 0 seconds, got {seconds}")
        self.end = None if seconds is None else started + seconds
        self._renders, self._spent, self._kept, self._kept_seconds = 0, 0.0, 0, 0.0
        self.longest_render_seconds = 0.0  # a block of renders counts as its mean

    @property
    def render_seconds(self) -> float:
        """The mean render so far (0 before any)."""
        return self._spent / self._renders if self._renders else 0.0

    def keep_renders(self, count: int) -> None:
        """Keep time for ``count`` renders that follow the search (a noisy synth's last look at its patch)."""
        self._kept = count

    def keep_seconds(self, seconds: float) -> None:
        """Keep ``seconds`` for what follows the renders (writing the patch file: Vital's took 26 ms)."""
        self._kept_seconds = seconds

    @contextmanager
    def timing(self, renders: int = 1) -> Iterator[None]:
        """Time a block of ``renders`` renders into the mean."""
        began = time.perf_counter()
        yield
        seconds = time.perf_counter() - began
        self._renders += renders
        self._spent += seconds
        self.longest_render_seconds = max(self.longest_render_seconds, seconds / max(renders, 1))

    def timed(self, measure: Callable[[T], float]) -> Callable[[T], float]:
        """``measure`` (one render per call), timed into the mean."""

        def timed_measure(value: T) -> float:
            with self.timing():
                return measure(value)

        return timed_measure

    def has_time(self) -> bool:
        """Whether one more render (and the kept ones after it) would end within the budget, were each as long as
        the longest so far: a synth's renders vary with the patch (Vital's by half), and at the mean a Vital answer
        ended up to 3 % late."""
        if self.end is None:
            return True
        return time.perf_counter() + self.longest_render_seconds * (1 + self._kept) + self._kept_seconds <= self.end
