"""The shipped effects' training pairs: crops at random gains, targets rendered from the gained crop."""

from dataclasses import replace

import numpy as np
import pytest

from models.effect_training import CROP_PEAK_DB, RECIPES, PairSource
from models.effects import reference_effect
from models.rates import SAMPLE_RATE_HZ


def _clips() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [(0.01 * rng.standard_normal(SAMPLE_RATE_HZ)).astype(np.float32) for _ in range(2)]  # -40 dBFS RMS


def _source(gain_db: tuple[float, float]) -> PairSource:
    recipe = replace(RECIPES["overdrive"], segment_samples=2_048, batch_size=8, crop_gain_db=gain_db)
    return PairSource(reference_effect("overdrive"), recipe, _clips(), seed=1)


def test_crops_come_at_random_gains_within_the_range_and_below_the_peak_limit() -> None:
    source = _source((-6.0, 24.0))
    quiet = np.linspace(-0.01, 0.01, 256, dtype=np.float32)  # peak -40 dBFS: every gain of the range fits
    gains_db = np.array([20 * np.log10(np.max(np.abs(source._gained(quiet))) / 0.01) for _ in range(200)])
    assert gains_db.min() >= -6.0 - 1e-3 and gains_db.max() <= 24.0 + 1e-3
    assert gains_db.min() < 0 < 20 < gains_db.max() and gains_db.std() > 5  # spread over the range
    loud = np.linspace(-0.5, 0.5, 256, dtype=np.float32)  # peak -6 dBFS: gains above 5.5 dB are held back
    peaks_db = np.array([20 * np.log10(np.max(np.abs(source._gained(loud)))) for _ in range(200)])
    assert peaks_db.max() == pytest.approx(CROP_PEAK_DB, abs=1e-3) and np.all(peaks_db <= CROP_PEAK_DB + 1e-3)
    assert np.mean(peaks_db == peaks_db.max()) > 0.5


def test_targets_are_the_real_effect_on_the_gained_crop() -> None:
    inputs, control, targets = _source((-6.0, 24.0)).batch(0)
    effect = reference_effect("overdrive")
    for index in range(3):
        knobs = {k.name: k.value_at(float(p)) for k, p in zip(effect.knobs, control[index].numpy(), strict=True)}
        rendered = effect.process(inputs[index].numpy(), SAMPLE_RATE_HZ, knobs)[0, -2_048:]
        assert np.allclose(rendered, targets[index, 0].numpy(), atol=1e-4)  # state settles within the context


def test_no_gain_range_leaves_crops_untouched() -> None:
    window = np.linspace(-0.2, 0.2, 64, dtype=np.float32)
    assert _source((0.0, 0.0))._gained(window) is window


def test_the_compressor_recipe_weighs_levels_gains_crops_and_trains_the_knob_ends() -> None:
    recipe = RECIPES["compressor"]
    assert recipe.level_weight > 0 and recipe.crop_gain_db[1] > 0 and 0 < recipe.edge_share < 1
    assert recipe.config.gain_path and recipe.config.gain_computer


def test_knob_ends_come_with_the_recipes_share() -> None:
    recipe = replace(RECIPES["compressor"], edge_share=0.4)
    source = PairSource(reference_effect("compressor"), recipe, _clips(), seed=2)
    positions = np.array([source._positions() for _ in range(3_000)])
    assert np.all((positions >= 0) & (positions <= 1))
    at_end = (positions == 0) | (positions == 1)
    assert np.mean(at_end) == pytest.approx(0.4, abs=0.03)
    assert np.mean(positions[at_end] == 0) == pytest.approx(0.5, abs=0.05)
    uniform = PairSource(reference_effect("overdrive"), replace(RECIPES["overdrive"], edge_share=0.0), _clips(), 2)
    assert np.mean(uniform._positions() % 1 == 0) == 0  # no share: uniform only


def _tiny_compressor_recipe(steps: int, batch_size: int):
    """The compressor's recipe cut to a second of material and a few steps: enough to save and resume."""
    return replace(
        RECIPES["compressor"],
        steps=steps,
        batch_size=batch_size,
        segment_samples=4096,
        train_clips=1,
        heldout_clips=1,
        clip_seconds=1.0,
        heldout_seconds=0.5,
        grid=(0.5,),
    )


def test_resume_takes_a_saved_model_of_the_recipes_architecture_only(tmp_path) -> None:
    from models.effect_training import train_effect
    from models.library import read_info
    from models.tcn import TCNConfig

    recipe = _tiny_compressor_recipe(steps=2, batch_size=2)
    first = train_effect("compressor", tmp_path, recipe=recipe, model_name="c")
    saved = read_info(tmp_path / "c.json", "user")  # level windows as JSON lists, as any sidecar has them
    assert isinstance(saved.sidecar["architecture"]["level_windows"], list)
    again = train_effect("compressor", tmp_path, recipe=recipe, model_name="c2", resume=saved)
    assert again.sidecar["training"]["resumed_from"] == first.sidecar["training"]
    other = replace(recipe, config=TCNConfig(channels=4, kernel_size=3, dilation_growth=2, layers=2))
    with pytest.raises(ValueError, match="architecture differs"):
        train_effect("compressor", tmp_path, recipe=other, model_name="c3", resume=saved)


def test_resume_widens_a_saved_gain_range_to_the_recipes(tmp_path) -> None:
    """A saved compressor of a narrower gain range (the same network otherwise) resumes with its gain signal
    rescaled (:meth:`models.tcn.ConditionedTCN.with_gain_range`), and the sidecar says so."""
    from models.effect_training import train_effect
    from models.library import read_info

    recipe = _tiny_compressor_recipe(steps=1, batch_size=1)
    narrow = replace(recipe, config=replace(recipe.config, max_gain_db=30.0))
    train_effect("compressor", tmp_path, recipe=narrow, model_name="narrow")
    saved = read_info(tmp_path / "narrow.json", "user")
    widened = train_effect("compressor", tmp_path, recipe=recipe, model_name="wide", resume=saved)
    assert widened.sidecar["architecture"]["max_gain_db"] == recipe.config.max_gain_db == 60.0
    assert widened.sidecar["training"]["gain_range_widened"] == "+-30 dB to +-60 dB at the start"
    again = train_effect("compressor", tmp_path, recipe=recipe, model_name="again", resume=widened)
    assert "gain_range_widened" not in again.sidecar["training"]
