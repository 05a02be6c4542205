"""coach-data's wider draws (notes over a range, varied presets): plans, patches, and the old draws kept."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ReaTimbreError
from models.synth import presets as preset_data
from models.synth.dataset import DatasetConfig, draw_patch, plan_clip
from models.synth.variations import vary_preset_patch

PLAIN = DatasetConfig(group="all", clips=32 * 60, seed=5)
WIDE = DatasetConfig(group="all", clips=32 * 60, seed=5, note=36, note_high=84, variation=0.75)


@pytest.fixture(scope="module")
def init_patch() -> dict:
    from models.synth.vital import VitalSynth

    return VitalSynth().patch_json()


def test_wide_draws_keep_the_effect_values_and_spread_notes_and_variations():
    plain = [plan_clip(PLAIN, 32 * d + 31) for d in range(60)]
    wide = [plan_clip(WIDE, 32 * d + 31) for d in range(60)]
    assert all(p.note == 48 and not p.varied for p in plain)  # the defaults: every earlier dataset unchanged
    assert [p.settings for p in plain] == [w.settings for w in wide]  # the effect values do not move
    assert [p.preset for p in plain] == [w.preset for w in wide]
    notes = [w.note for w in wide]
    assert min(notes) >= 36 and max(notes) <= 84 and len(set(notes)) > 20
    assert 0.55 < np.mean([w.varied for w in wide]) < 0.95
    assert all(plan_clip(WIDE, 32 * 7 + m).note == wide[7].note for m in range(32))  # one note per draw


def test_a_varied_draw_redraws_the_presets_own_controls(init_patch):
    varied = next(d for d in range(60) if plan_clip(WIDE, 32 * d).varied)
    plain = next(d for d in range(60) if not plan_clip(WIDE, 32 * d).varied)
    preset = preset_data.build_preset_patch(plan_clip(WIDE, 32 * plain).preset, init_patch)
    assert draw_patch(WIDE, plain, init_patch) == preset
    patch = draw_patch(WIDE, varied, init_patch)
    base = preset_data.build_preset_patch(plan_clip(WIDE, 32 * varied).preset, init_patch)
    assert patch != base and patch == draw_patch(WIDE, varied, init_patch)
    assert patch["settings"]["wavetables"] == base["settings"]["wavetables"]  # the preset's own shapes
    for seed in range(20):
        settings = vary_preset_patch(base, np.random.default_rng(seed))["settings"]
        assert settings["filter_1_on"] == 0.0 or settings["filter_1_model"] in (0.0, 2.0)  # Analog, Ladder only
        assert all(settings[f"osc_{n}_distortion_type"] == 0.0 for n in (1, 2, 3))  # no warps: those are OOD's


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"note_high": 30}, "highest note"), ({"note_high": 128}, "highest note"), ({"variation": 1.5}, "--variation")],
)
def test_bad_wide_settings_raise_one_clear_error(changes, message):
    with pytest.raises(ReaTimbreError, match=message):
        DatasetConfig(**(WIDE.to_json() | changes)).validate()
