"""Silence in, silence out: after training, a model's answer to silence is removed from its output bias."""

import numpy as np
import pytest
import torch
from afx_tiny import TASK, TINY

from models.afx import ARCHITECTURES, build
from models.afx.framing import render
from models.afx.silence import output_bias, remove_silence_offset, silence_offset
from models.afx.tasks import pair
from models.afx.train import TrainSettings, train


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_removing_the_offset_renders_silence_as_silence_and_shifts_nothing_else(arch: str) -> None:
    torch.manual_seed(0)
    model = build(arch, TINY[arch]).eval()
    with torch.no_grad():
        output_bias(model).add_(0.01)  # a clear DC offset, as biases leave after training
    music = np.random.default_rng(1).standard_normal(3000).astype(np.float32) * 0.2
    silence = np.zeros(3000, np.float32)
    before, answer = render(model, music), render(model, silence)
    assert abs(float(answer.mean())) > 5e-3

    removed = remove_silence_offset(model, [])

    after = render(model, silence)
    # what is left is the ripple at the frame edges (untrained weights here), measured over another length
    assert abs(float(after.mean())) < 2e-3 * abs(float(answer.mean()))
    assert np.sqrt(np.mean(after**2)) <= 1.01 * float(answer.std()) + 1e-6
    np.testing.assert_allclose(render(model, music), before - removed, atol=1e-5)


def test_the_offset_is_averaged_over_the_knob_settings() -> None:
    torch.manual_seed(0)
    model = build("crafx", {**TINY["crafx"], "knobs": 1}).eval()
    controls = [np.array([0.0], np.float32), np.array([1.0], np.float32)]
    each = [silence_offset(model, [c]) for c in controls]
    assert silence_offset(model, controls) == pytest.approx(np.mean(each), abs=1e-7)


def test_training_removes_the_offset_and_says_so_in_the_record() -> None:
    torch.manual_seed(0)
    model = build("ceq", TINY["ceq"])
    dry, wet = pair(TASK["ceq"], 3.0, 8000, seed=0)
    result = train(model, "ceq", dry, wet, TrainSettings(steps=20, learning_rate=3e-3, validate_every=10))
    assert "silence_offset_removed" in result.record()
    assert abs(silence_offset(model, [])) < 1e-6

    kept = build("ceq", TINY["ceq"])
    plain = train(kept, "ceq", dry, wet, TrainSettings(steps=1, remove_silence_offset=False))
    assert "silence_offset_removed" not in plain.record()
