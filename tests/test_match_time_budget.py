"""``match --seconds-per-synth``: each synth's further guesses and refinement stop when one more render would not
end in time; without a budget they run to their counts."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from models.asp import time_budget
from models.asp.infer import CLIP_SAMPLES, NOTE_SECONDS, VELOCITY, match_target, prepare_target
from models.asp.store import load_model
from models.asp.time_budget import Deadline
from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.synth.base import Synth
from models.synth.match_synths import DexedMatch, MatchSynth

torch.set_num_threads(1)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_render_is_started_only_if_it_and_the_kept_ones_end_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(time_budget.time, "perf_counter", clock)
    deadline = Deadline(100.0, 1.0)
    assert deadline.has_time()  # nothing measured yet: the first render is tried
    with deadline.timing(renders=3):  # three renders in 0.3 s: 0.1 s each
        clock.now += 0.3
    assert deadline.render_seconds == pytest.approx(0.1)
    clock.now = 100.85
    assert deadline.has_time()  # 0.95 s after one more
    deadline.keep_renders(1)
    assert not deadline.has_time()  # 1.05 s: the kept render would end late

    def slow_render(seconds: float) -> float:
        clock.now += seconds
        return 0.0

    deadline.keep_renders(0)
    clock.now = 100.0
    deadline.timed(slow_render)(0.5)  # a slow render: the mean 0.2 s, the longest 0.5 s
    assert deadline.render_seconds == pytest.approx(0.2)
    assert deadline.has_time()  # 1.0 s after one more as long as the longest
    clock.now += 0.01
    assert not deadline.has_time()  # 1.01 s: at the mean (0.71 s) it would have been tried
    unlimited = Deadline(100.0, None)
    clock.now = 1e9
    assert unlimited.has_time()
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ReaTimbreError, match="time budget"):
            Deadline(0.0, bad)


def _dexed_target(note: int) -> np.ndarray:
    synth = DexedMatch()
    patch = synth.random_patch(np.random.default_rng(3))
    return synth.render(patch, note, VELOCITY, NOTE_SECONDS, CLIP_SAMPLES / SAMPLE_RATE_HZ)


def test_a_budget_cuts_the_guesses_and_the_refinement_and_still_answers() -> None:
    model, _ = load_model()
    target = prepare_target(_dexed_target(57), SAMPLE_RATE_HZ, 57)  # a given note: one candidate note
    adapters: dict[str, MatchSynth] = {"dexed": DexedMatch()}
    full = match_target(model, target, ["dexed"], adapters, candidates=4, refine=20)[0]
    assert (full.renders, full.cut_short) == (1 + 3 + 20, False)
    roomy = match_target(model, target, ["dexed"], adapters, candidates=4, refine=20, seconds_per_synth=60.0)[0]
    assert (roomy.renders, roomy.cut_short, roomy.native) == (full.renders, False, full.native)  # seeded: the same
    tight = match_target(model, target, ["dexed"], adapters, candidates=4, refine=20, seconds_per_synth=1e-6)[0]
    assert (tight.renders, tight.cut_short) == (1, True)  # the best guess at its note, nothing more
    assert tight.patch_bytes and np.isfinite(tight.lsd_db) and tight.lsd_db >= full.lsd_db


class _SlowLoadingDexed(DexedMatch):
    """Dexed whose loading takes 1.2 s, as a plug-in's first load can on a cold machine."""

    def _make(self) -> Synth:
        time.sleep(1.2)
        return super()._make()


def test_loading_the_synth_does_not_eat_its_budget() -> None:
    """The server keeps its synths loaded; a first `reatimbre match` loads each, and that load must not cut the
    answer short (it once left amsynth 4 of its 75 renders and a patch 7 dB further from the target)."""
    model, _ = load_model()
    target = prepare_target(_dexed_target(57), SAMPLE_RATE_HZ, 57)
    adapters: dict[str, MatchSynth] = {"dexed": _SlowLoadingDexed()}
    first = match_target(model, target, ["dexed"], adapters, candidates=4, refine=20, seconds_per_synth=1.0)[0]
    assert (first.renders, first.cut_short) == (1 + 3 + 20, False)
    assert first.load_seconds >= 1.2 and first.seconds >= first.load_seconds  # told apart, and still counted
    again = match_target(model, target, ["dexed"], adapters, candidates=4, refine=20, seconds_per_synth=1.0)[0]
    assert again.load_seconds < 0.1 and again.native == first.native


def test_the_command_and_the_server_take_a_budget_in_seconds() -> None:
    from server.cli import build_parser
    from server.match_job import MatchRequest

    parser = build_parser()
    assert parser.parse_args(["match", "t.wav"]).seconds_per_synth == 1.0  # the answer time promised by default
    assert parser.parse_args(["match", "t.wav", "--seconds-per-synth", "2.5"]).seconds_per_synth == 2.5
    assert parser.parse_args(["match", "t.wav", "--seconds-per-synth", "none"]).seconds_per_synth is None
    for bad in ("0", "-1", "61", "soon"):
        with pytest.raises(SystemExit):
            parser.parse_args(["match", "t.wav", "--seconds-per-synth", bad])
    assert MatchRequest(input="/t.wav").seconds_per_synth == 1.0
    assert MatchRequest(input="/t.wav", seconds_per_synth=None).seconds_per_synth is None
    assert MatchRequest(input="/t.wav", seconds_per_synth=1.0).seconds_per_synth == 1.0
    for bad_seconds in (0.0, -1.0, 61.0):
        with pytest.raises(ValidationError):
            MatchRequest(input="/t.wav", seconds_per_synth=bad_seconds)
