"""The shipped pedal-board models: each one never further from the real effect than the dry input at any point of
the held-out knob grid (the rule for shipping one), its sidecar builds the real effect it was trained on, and it
works where every model does (the library, ``reatimbre models``, renders with its latency removed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.effects import PEDALS, REFERENCE_EFFECTS, emulated_effect
from models.library import SHIPPED_DIR, list_models, load_model
from models.pedals.training import render
from server.cli import main

SR = 44_100
SHIPPED_PEDALS = [name for name in PEDALS if (SHIPPED_DIR / f"{name}.json").is_file()]


def test_shipped_pedals_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    for name in SHIPPED_PEDALS:
        assert listed[name]["kind"] == "shipped"
        assert [k["name"] for k in listed[name]["knobs"]] == [k.name for k in REFERENCE_EFFECTS[name].knobs]


@pytest.mark.parametrize("name", SHIPPED_PEDALS)
def test_a_shipped_pedal_is_never_worse_than_dry_and_builds_its_real_effect(name: str) -> None:
    info = next(m for m in list_models() if m.name == name and m.weights_path.parent == SHIPPED_DIR)
    verdict = info.sidecar["metrics"]["heldout_other_origin"]
    assert verdict["summary"]["never_worse_than_dry"]
    assert all(point["mrstft_model"] < point["mrstft_dry"] for point in verdict["points"])
    assert len(verdict["points"]) == 3 ** len(info.knobs)
    assert info.sidecar["training"]["command"].startswith(f"reatimbre train-effect --effect {name}")
    real = emulated_effect(name, info.sidecar)
    audio = np.random.default_rng(3).standard_normal((1, SR // 4)).astype(np.float32) * 0.2
    knobs = {k.name: k.value_at(0.7) for k in info.knobs}
    np.testing.assert_array_equal(real.process(audio, SR, knobs), REFERENCE_EFFECTS[name].process(audio, SR, knobs))
    assert info.latency_samples == REFERENCE_EFFECTS[name].latency_samples


@pytest.mark.parametrize("name", SHIPPED_PEDALS)
def test_a_shipped_pedal_renders_a_clip_closer_to_the_real_effect_than_dry(name: str) -> None:
    from models.evaluation import mrstft_distance
    from models.pedals.heldout import guitar_strums
    from models.pedals.training import real_render

    effect = load_model(name)
    clip = (guitar_strums(2.0, SR) * 0.2).astype(np.float32)
    knobs = {k.name: k.value_at(0.5) for k in effect.info.knobs}
    out = render(effect.stream(knobs), clip, effect.latency_samples)
    real = real_render(REFERENCE_EFFECTS[name], clip, knobs)
    assert mrstft_distance(out[None], real[None]) < mrstft_distance(clip[None], real[None])
