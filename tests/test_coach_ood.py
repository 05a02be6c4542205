"""The coach's out-of-distribution sampler: its own origin, its laws, and its determinism (no rendering)."""

from __future__ import annotations

import base64
from collections import Counter

import numpy as np
import pytest

from models.coach import ood
from models.coach.evaluate import RunRecord, by_start, format_ood_table, summarize
from models.synth import presets as preset_data
from models.synth.profiles import EFFECT_NAMES, Parameter, load_profile


@pytest.fixture(scope="module")
def init_patch() -> dict:
    from models.synth.vital import VitalSynth

    return VitalSynth().patch_json()


def test_draws_never_call_the_training_samplers(monkeypatch, init_patch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("the OOD set must not use the training sampler")

    monkeypatch.setattr(Parameter, "sample", refuse)
    monkeypatch.setattr(preset_data, "build_preset_patch", refuse)
    monkeypatch.setattr(preset_data, "single_cycle", refuse)
    draws = list(ood.ood_draws(load_profile("vital"), init_patch, 30, seed=5))
    assert [d.patch.kind for d in draws[:3]] == list(ood.OOD_PATCH_KINDS)


def test_draws_follow_their_own_laws(init_patch):
    profile = load_profile("vital")
    draws = list(ood.ood_draws(profile, init_patch, 300, seed=1))
    notes = [d.note for d in draws]
    assert min(notes) >= 36 and max(notes) <= 84 and len(set(notes)) > 30  # C2..C6, not training's MIDI 48 only
    counts = Counter(len(d.settings) for d in draws)
    assert set(counts) == {1, 2, 3, 4, 5} and counts[5] > 30  # uniform count: all five ~1/5 (training ~1/31)
    drive = [d.settings["distortion"]["drive"] for d in draws if "distortion" in d.settings]
    mix = [d.settings["reverb"]["mix"] for d in draws if "reverb" in d.settings]
    assert min(drive) < 0.3 and any(m < 0.3 or m > 0.7 for m in mix)  # outside training's sampling ranges
    values = [v for d in draws for e in d.settings.values() for name, v in e.items() if name != "mode"]
    assert any(abs(v * 100 - round(v * 100)) > 1e-3 for v in values)  # off training's 0.01 grid
    assert all(0.0 <= v <= 1.0 for v in values)  # still what the coach can set


def test_patch_kinds(init_patch):
    rng = np.random.default_rng(0)
    plain = ood.ood_patch(init_patch, "init", rng)
    assert plain.patch["settings"] == init_patch["settings"]  # Vital's init patch as Vital makes it
    filtered = ood.ood_patch(init_patch, "init_filter", rng).patch["settings"]
    assert filtered["filter_1_on"] == 1.0 and filtered["wavetables"] == init_patch["settings"]["wavetables"]
    random_osc = ood.ood_patch(init_patch, "random_osc", rng).patch["settings"]
    wave = random_osc["wavetables"][0]["groups"][0]["components"][0]["keyframes"][0]["wave_data"]
    samples = np.frombuffer(base64.b64decode(wave), dtype="<f4")
    named = [preset_data.single_cycle(s) for s in ("sine", "triangle", "saw", "square", "pulse_25", "half_sine")]
    assert not any(np.allclose(samples, w, atol=0.05) for w in named)
    assert all(random_osc[f"{name}_on"] == 0.0 for name in EFFECT_NAMES)  # dry
    with pytest.raises(ValueError, match="unknown OOD patch kind"):
        ood.ood_patch(init_patch, "preset", rng)


def test_random_spectrum_wave_is_a_normalised_cycle_and_seeded():
    first = ood.random_spectrum_wave(np.random.default_rng(3))
    assert first.shape == (ood.WAVE_SAMPLES,) and abs(float(first.mean())) < 1e-4
    assert np.isclose(np.abs(first).max(), 1.0)
    assert np.array_equal(first, ood.random_spectrum_wave(np.random.default_rng(3)))
    spectrum = np.abs(np.fft.rfft(first))
    assert spectrum[1] >= 0.1 * spectrum.max()  # the fundamental is kept: the note heard is the note played


def test_draws_depend_on_seed_and_index_only(init_patch):
    profile = load_profile("vital")
    first = list(ood.ood_draws(profile, init_patch, 4, seed=9))
    again = list(ood.ood_draws(profile, init_patch, 6, seed=9))[:4]
    other = list(ood.ood_draws(profile, init_patch, 4, seed=10))
    assert [(d.note, d.settings) for d in first] == [(d.note, d.settings) for d in again]
    assert [(d.note, d.settings) for d in first] != [(d.note, d.settings) for d in other]


def _record(initial: float, final: float) -> RunRecord:
    curves = {m: [initial] + [final] * 5 for m in ("mse", "mae", "mfcc_distance", "lsd_db")}
    return RunRecord(curves, 0.1, 1, False)


def test_ood_table_sets_side_by_side_against_the_goals():
    inside = [_record(1.0, 0.1), _record(1.0, 0.1)]
    outside = [_record(1.0, 0.1), _record(1.0, 0.5)]
    kinds = by_start(outside, ["ood-init", "ood-random_osc"])
    assert kinds["ood-init"]["mse"] == pytest.approx(0.1) and kinds["ood-random_osc"]["targets"] == 1
    table = format_ood_table(inside, outside, ["ood-init", "ood-random_osc"])
    mse_row = next(line for line in table.splitlines() if line.startswith("MSE"))
    assert "0.100   0.300" in mse_row and "MISS" in mse_row  # (0.1 + 0.5) / 2 = 0.3 > 0.19
    uneven = summarize([_record(1.0, 0.1), _record(0.1, 0.1)])["mse"]
    assert uneven["ratio"] == pytest.approx(0.2 / 1.1) and uneven["target_ratio"] == pytest.approx(0.55)
    with pytest.raises(ValueError):
        by_start(outside, ["ood-init"])
