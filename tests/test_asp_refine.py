"""Refining a matched patch by ear (models.asp.refine): what a user gets is never farther than the guess, and on a
real synth it comes closer."""

from __future__ import annotations

import numpy as np
import pytest

from models.asp.infer import Target, heard_distance, match_target, render_mel
from models.asp.refine import guide_from_guesses, refine_patch
from models.asp.store import load_model
from models.errors import ReaTimbreError
from models.metrics import lsd_db
from models.synth.match_synths import match_synth
from models.synth.spaces import CATEGORICAL, CONTINUOUS, ParameterSpace, ParameterSpec

SPACE = ParameterSpace(
    "toy",
    [
        ParameterSpec("cutoff", CONTINUOUS, 1000.0, 20.0, 20000.0),
        ParameterSpec("level", CONTINUOUS, 0.5, 0.0, 1.0),
        ParameterSpec("wave", CATEGORICAL, 0.0, classes=(0.0, 1.0, 2.0, 3.0)),
    ],
)
TRUTH = {"cutoff": 12000.0, "level": 0.2, "wave": 2.0}


def _distance(patch: dict[str, float]) -> float:
    """A stand-in for a render's distance: 0 at TRUTH."""
    return (
        abs(patch["cutoff"] - TRUTH["cutoff"]) / 1000.0
        + 10.0 * abs(patch["level"] - TRUTH["level"])
        + (0.0 if patch["wave"] == TRUTH["wave"] else 5.0)
    )


def test_the_search_comes_closer_within_its_budget_and_repeats_for_a_seed() -> None:
    start_patch = {"cutoff": 2000.0, "level": 0.9, "wave": 0.0}
    measured: list[dict[str, float]] = []

    def measure(patch: dict[str, float]) -> float:
        measured.append(patch)
        return _distance(patch)

    start = SPACE.encode(start_patch)
    refined = refine_patch(SPACE, start, _distance(start_patch), measure, renders=150, seed=3)
    assert refined.renders == len(measured) == 150
    assert len({tuple(p.values()) for p in measured}) == 150  # never the same patch twice
    assert refined.lsd_db == min(_distance(p) for p in measured) == _distance(refined.native)
    assert refined.lsd_db < 0.25 * _distance(start_patch) and refined.native["wave"] == 2.0
    again = refine_patch(SPACE, start, _distance(start_patch), _distance, renders=150, seed=3)
    assert again.native == refined.native


def test_nothing_closer_keeps_the_guess() -> None:
    start = SPACE.encode(TRUTH)
    refined = refine_patch(SPACE, start, 0.0, _distance, renders=40)
    assert refined.native == SPACE.decode(start) and refined.lsd_db == 0.0 and refined.improvements == 0
    unchanged = refine_patch(SPACE, start, 0.0, _distance, renders=0)
    assert unchanged.renders == 0 and np.array_equal(unchanged.vector, start)


def test_a_space_with_few_patches_ends_when_all_are_tried() -> None:
    small = ParameterSpace("switch", [ParameterSpec("wave", CATEGORICAL, 0.0, classes=(0.0, 1.0))])
    refined = refine_patch(small, small.encode({"wave": 0.0}), 1.0, lambda p: 1.0 - p["wave"], renders=50)
    assert refined.renders == 1 and refined.native == {"wave": 1.0} and refined.lsd_db == 0.0


def test_a_bad_budget_is_refused() -> None:
    with pytest.raises(ReaTimbreError, match="refinement renders must be 0..2000"):
        refine_patch(SPACE, SPACE.encode(TRUTH), 0.0, _distance, renders=-1)


def test_match_refines_a_dexed_patch_closer_than_its_best_guess() -> None:
    """A random DX7 voice as the target: the refined match renders closer, and its patch file is the refined one."""
    dexed = match_synth("dexed")
    truth = dexed.random_patch(np.random.default_rng(11))
    target = Target(render_mel(dexed, truth, 55), 55, None, 0.0)
    model, _ = load_model(None, "joint_encoder")
    adapters = {"dexed": dexed}
    (guess,) = match_target(model, target, ["dexed"], adapters, candidates=4, refine=0)
    (refined,) = match_target(model, target, ["dexed"], adapters, candidates=4, refine=None)  # Dexed's own default
    assert dexed.refine_renders == 300
    assert refined.lsd_db < guess.lsd_db
    dexed.synth.load_patch_bytes(refined.patch_bytes)
    assert float(lsd_db(render_mel(dexed, dexed.read(), 55), target.mel_db80)) == pytest.approx(refined.lsd_db)


def test_a_synth_whose_renders_vary_reports_the_distance_of_one_more_render() -> None:
    """Kars's plucks are noise-excited: the closest of many renders is partly the luckiest. The distance `match`
    reports and ranks by is a fresh render's (`match_target`, `match-eval`), so no gain that is only luck shows."""
    kars, dexed = match_synth("kars"), match_synth("dexed")
    assert not kars.repeatable and dexed.repeatable
    patch = kars.random_patch(np.random.default_rng(5))
    target = render_mel(kars, patch, 50)
    assert heard_distance(dexed, dexed.random_patch(np.random.default_rng(5)), 50, target, 1.25) == 1.25
    fresh = [heard_distance(kars, patch, 50, target, 0.0) for _ in range(3)]
    assert all(d > 0.0 for d in fresh) and len(set(fresh)) == 3  # rendered again each time, noise and all


WIDE = ParameterSpace(
    "wide",
    [ParameterSpec(f"knob_{i}", CONTINUOUS, 0.5, 0.0, 1.0) for i in range(12)]
    + [ParameterSpec("wave", CATEGORICAL, 0.0, classes=(0.0, 1.0, 2.0, 3.0, 4.0, 5.0))],
)


def test_the_guide_follows_where_the_guesses_disagree() -> None:
    layout = WIDE.layout()
    rng = np.random.default_rng(0)
    guesses = np.tile(WIDE.encode({"knob_3": 0.2, "wave": 1.0}), (8, 1))
    guesses[:, layout.continuous[3]] = rng.uniform(0.0, 1.0, 8)  # they disagree on knob_3 only
    start, classes = layout.groups[0]
    guesses[0, start : start + classes] = [0.0, 0.6, 0.0, 0.0, 0.4, 0.0]  # the model: wave 1, else 4
    guess_classes = np.eye(classes)[[1, 4, 4, 1, 4, 1, 4]]
    guesses[1:, start : start + classes] = guess_classes
    guide = guide_from_guesses(guesses, layout)
    assert guide.slot_chances.sum() == pytest.approx(1.0) and guide.slot_scales.mean() == pytest.approx(1.0)
    assert int(np.argmax(guide.slot_chances)) == 3 and guide.slot_chances[3] > 5 * guide.slot_chances[0]
    probabilities = guide.class_probabilities[0]
    assert probabilities.sum() == pytest.approx(1.0) and (probabilities > 0).all()  # no class ruled out
    assert set(np.argsort(probabilities)[-2:]) == {1, 4}
    with pytest.raises(ReaTimbreError, match="guesses must be"):
        guide_from_guesses(guesses[:, :-1], layout)


def test_a_guided_search_finds_what_the_guesses_disagree_on_sooner() -> None:
    """Eleven knobs right, one wrong: guesses that disagree on the wrong one steer the renders to it."""
    truth = {f"knob_{i}": 0.3 for i in range(12)} | {"knob_7": 0.9, "wave": 2.0}
    start_patch = truth | {"knob_7": 0.1}

    def distance(patch: dict[str, float]) -> float:
        return sum(abs(patch[name] - truth[name]) for name in truth if name != "wave") + (patch["wave"] != 2.0)

    layout = WIDE.layout()
    guesses = np.tile(WIDE.encode(start_patch), (12, 1))
    guesses[:, layout.continuous[7]] = np.linspace(0.0, 1.0, 12)
    guide = guide_from_guesses(guesses, layout)
    start = WIDE.encode(start_patch)
    plain, guided = [], []
    for seed in range(6):
        plain.append(refine_patch(WIDE, start, distance(start_patch), distance, 30, seed).lsd_db)
        guided.append(refine_patch(WIDE, start, distance(start_patch), distance, 30, seed, guide).lsd_db)
    assert np.mean(guided) < 0.5 * np.mean(plain)


def test_one_guess_guides_by_its_class_probabilities_alone() -> None:
    """`match --candidates 1 --refine N`: no other guesses to disagree, so every knob is as likely to move and a
    categorical's new class follows the model's own probabilities."""
    layout = WIDE.layout()
    guess = WIDE.encode({"wave": 3.0})[None]
    start, classes = layout.groups[0]
    guess[0, start : start + classes] = [0.05, 0.05, 0.1, 0.6, 0.1, 0.1]
    guide = guide_from_guesses(guess, layout)
    assert np.allclose(guide.slot_chances, 1.0 / len(layout.continuous)) and np.allclose(guide.slot_scales, 1.0)
    assert int(np.argmax(guide.class_probabilities[0])) == 3
    assert guide.class_probabilities[0][2] > guide.class_probabilities[0][0]
