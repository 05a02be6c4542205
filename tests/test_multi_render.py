"""Rendering several signals in one batched pass equals rendering each alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.library import CUDA_BLOCK_SAMPLES, block_samples_for, load_model
from models.multi_render import render_many


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


def test_files_rendered_together_equal_files_rendered_alone(tmp_path) -> None:
    import soundfile as sf

    from models.multi_render import render_files_together
    from models.render import render_file

    rng = np.random.default_rng(3)
    inputs = []
    for name, rate, channels, seconds in (("a", 44_100, 2, 1.5), ("b", 48_000, 1, 0.7), ("c", 22_050, 2, 2.2)):
        path = tmp_path / f"{name}.wav"
        sf.write(path, (0.3 * rng.standard_normal((int(rate * seconds), channels))).astype(np.float32), rate)
        inputs.append(path)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    inputs.insert(1, tmp_path / "bad.wav")
    knobs = None
    jobs = [(path, tmp_path / f"{path.stem}-together.wav") for path in inputs]
    results = render_files_together(jobs, load_model("reverb"), knobs, mix=0.8, tail_seconds=0.5)
    assert isinstance(results[1], Exception) and not jobs[1][1].exists()
    for (path, together), result in zip(jobs, results, strict=True):
        if path.stem == "bad":
            continue
        alone = render_file(path, tmp_path / f"{path.stem}-alone.wav", "reverb", knobs, mix=0.8, tail_seconds=0.5)
        assert result.duration_seconds == alone.duration_seconds and result.subtype == alone.subtype
        a, _ = sf.read(together, dtype="float32")
        b, _ = sf.read(alone.output_path, dtype="float32")
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-4)  # PCM_16 files: within one step of the 16-bit grid
