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


def _batch_inputs(folder):
    import soundfile as sf

    folder.mkdir()
    rng = np.random.default_rng(5)
    for index, (rate, channels) in enumerate([(44_100, 2), (48_000, 1), (44_100, 1), (32_000, 2), (44_100, 2)]):
        audio = (0.3 * rng.standard_normal((int(rate * (0.4 + 0.3 * index)), channels))).astype(np.float32)
        sf.write(folder / f"take{index}.wav", audio, rate, subtype="FLOAT")
    (folder / "broken.wav").write_bytes(b"RIFF....WAVE")


def test_a_batch_in_passes_of_several_files_equals_one_file_at_a_time(tmp_path) -> None:
    import soundfile as sf

    from server.batch import RenderSettings, collect_inputs, plan_tasks, run_batch

    _batch_inputs(tmp_path / "in")
    inputs = collect_inputs([str(tmp_path / "in")])
    settings = RenderSettings("compressor", {}, 0.9, 0.25)
    one = run_batch(plan_tasks(inputs, tmp_path / "one", settings))
    grouped_tasks = plan_tasks(inputs, tmp_path / "grouped", settings)
    seen = []
    grouped = run_batch(grouped_tasks, files_per_pass=3, on_outcome=seen.append)
    assert [o.status for o in grouped.outcomes] == [o.status for o in one.outcomes]
    assert grouped.count("rendered") == 5 and grouped.count("failed") == 1 and len(seen) == 6
    assert [o.input_path for o in grouped.outcomes] == [t.input_path for t in grouped_tasks]
    for a, b in zip(grouped.outcomes, one.outcomes, strict=True):
        assert a.audio_seconds == pytest.approx(b.audio_seconds)
        if a.status == "rendered":
            np.testing.assert_allclose(sf.read(a.output_path)[0], sf.read(b.output_path)[0], atol=1e-5)
    again = run_batch(grouped_tasks, files_per_pass=3)  # finished files are skipped, the broken one fails again
    assert again.count("skipped") == 5 and again.count("failed") == 1


def test_batches_group_files_only_on_cuda_with_one_local_worker(tmp_path, monkeypatch) -> None:
    import server.batch as batch

    calls = []
    monkeypatch.setattr(batch, "render_task_group", lambda group: calls.append(len(group)) or [
        batch.TaskOutcome(t.input_path, t.output_path, "rendered") for t in group
    ])  # fmt: skip
    tasks = [batch.RenderTask(f"in{i}.wav", str(tmp_path / f"out{i}.wav"), batch.RenderSettings("x")) for i in range(3)]
    on_cuda = [batch.RenderTask(t.input_path, t.output_path, batch.RenderSettings("x", device="cuda")) for t in tasks]
    monkeypatch.setattr(batch, "FILES_PER_CUDA_PASS", 2)
    batch.run_batch(on_cuda)
    assert calls == [2, 1]
    calls.clear()
    batch.run_batch(tasks, task_fn=lambda t: batch.TaskOutcome(t.input_path, t.output_path, "rendered"))
    assert calls == []  # the CPU renders file by file (in workers)
