"""Rendering several signals in one batched pass equals rendering each alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.library import load_model
from models.multi_render import CUDA_BLOCK_SAMPLES, block_samples_for, render_many


@pytest.mark.parametrize("name", ["compressor", "reverb"])
def test_one_pass_over_many_signals_equals_each_alone(name: str) -> None:
    effect = load_model(name)
    rng = np.random.default_rng(0)
    signals = [
        (0.3 * rng.standard_normal((2, 30_000))).astype(np.float32),
        (0.3 * rng.standard_normal((1, 7_000))).astype(np.float32),
        (0.3 * rng.standard_normal((2, 41_000))).astype(np.float32),
        np.zeros((2, 0), np.float32),
    ]
    knobs = {k.name: k.minimum for k in effect.info.knobs}
    together = render_many(effect, signals, knobs, block_samples=8_192)
    assert [o.shape for o in together] == [s.shape for s in signals]
    for signal, output in zip(signals, together, strict=True):
        np.testing.assert_allclose(output, effect.process(signal, knobs), atol=1e-5, rtol=1e-4)


def test_cuda_renders_in_long_blocks() -> None:
    assert block_samples_for(torch.device("cuda")) == CUDA_BLOCK_SAMPLES > block_samples_for(torch.device("cpu"))


def test_signals_must_have_channels() -> None:
    with pytest.raises(ValueError, match="channels, samples"):
        render_many(load_model("compressor"), [np.zeros(10, np.float32)])
