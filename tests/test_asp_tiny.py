"""A tiny two-parameter synth learnt end to end by the multi-task VAE in well under a minute on one CPU thread."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
import torch

from models.asp import train as train_module
from models.asp.data import MatchData, split_of
from models.asp.nets import prediction_vector
from models.asp.train import TrainSettings, evaluate_loss, pool, train_asp
from models.errors import ReaTimbreError
from models.metrics import lsd_db
from models.rates import SAMPLE_RATE_HZ
from models.synth.features import CLIP_SAMPLES, clip_features
from models.synth.spaces import CATEGORICAL, CONTINUOUS, ParameterSpace, ParameterSpec

SPACE = ParameterSpace(
    "tiny",
    [
        ParameterSpec("brightness", CONTINUOUS, 0.5, 0.0, 1.0),
        ParameterSpec("wave", CATEGORICAL, 0.0, classes=(0.0, 1.0)),  # 0: odd harmonics only, 1: all harmonics
    ],
)


HARMONICS = np.arange(1, 25)


@lru_cache(maxsize=16)
def _partials(note: int) -> np.ndarray:
    """(harmonics, samples) decaying sines of one note, those above 15 kHz silent."""
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE_HZ
    f0 = 440.0 * 2 ** ((note - 69) / 12)
    sines = np.sin(2 * np.pi * f0 * HARMONICS[:, None] * t[None, :]) * np.exp(-2.0 * t)[None, :]
    sines[HARMONICS * f0 > 15000] = 0.0
    return sines.astype(np.float32)


def render_tiny(values: dict[str, float], note: int) -> np.ndarray:
    """Additive tone: harmonic k at amplitude k^-(1 + 3(1 - brightness)), odd ones only for wave 0; 1 s decay."""
    amplitudes = HARMONICS ** -(1 + 3 * (1 - values["brightness"]))
    if values["wave"] == 0.0:
        amplitudes = np.where(HARMONICS % 2 == 1, amplitudes, 0.0)
    return 0.3 * (amplitudes.astype(np.float32) @ _partials(note))


def memory_data(
    space: ParameterSpace, values: list[dict[str, float]], notes: np.ndarray, render: Callable[[dict, int], np.ndarray]
) -> MatchData:
    """A match-data set held in memory: each patch rendered at its note, split by patch as ``match-data`` does."""
    audio = np.stack([render(v, int(m)) for v, m in zip(values, notes, strict=True)])[:, None]
    return MatchData(
        synth=space.synth,
        space=space.to_json(),
        mel_db80=clip_features(audio).mel_db80.astype(np.float16),
        params=np.stack([space.encode(v) for v in values]),
        note=notes.astype(np.int16),
        patch_index=np.arange(len(values), dtype=np.int32),
        split=np.array([split_of(space.encode(v).tobytes(), 0) for v in values], dtype=np.uint8),
        harmonic_share=np.ones(len(values), dtype=np.float32),
        patch_values=dict(enumerate(values)),
        folder="memory",
    )


def tiny_data(n: int) -> MatchData:
    rng = np.random.default_rng(0)
    values = [SPACE.random_patch(rng) for _ in range(n)]
    return memory_data(SPACE, values, rng.integers(48, 60, n), render_tiny)


def test_tiny_synth_learnt_end_to_end() -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    data = tiny_data(300)
    rendered = time.perf_counter() - started
    settings = TrainSettings(
        variant="joint_encoder",
        latent=8,
        channels=8,
        hidden=64,
        batch=32,
        max_steps=200,  # a step budget, so a loaded machine trains the same model (15 s made 110-150 steps)
        seconds=50.0,
        warmup_steps=100,
        validate_every=50,
        learning_rate=2e-3,
    )
    model, report = train_asp([data], settings)
    test = data.rows("test")
    assert len(test) >= 20 and report["steps"] == 200
    with torch.no_grad():
        out = model(
            torch.from_numpy(data.mel_db80[test].astype(np.float32)),
            torch.zeros(len(test), dtype=torch.long),
            sample=False,
        )
    layout = model.architecture.layouts[0]
    predicted = [SPACE.decode(prediction_vector(row, layout).numpy()) for row in out.params]
    truth = [data.patch_values[int(i)] for i in data.patch_index[test]]
    brightness_mse = np.mean([(p["brightness"] - t["brightness"]) ** 2 for p, t in zip(predicted, truth, strict=True)])
    guess_mse = np.var([t["brightness"] for t in truth])  # predicting the mean
    accuracy = np.mean([p["wave"] == t["wave"] for p, t in zip(predicted, truth, strict=True)])
    assert brightness_mse < 0.25 * guess_mse, (brightness_mse, guess_mse)
    assert accuracy >= 0.9, accuracy
    # the inferred patches render closer to the targets than other patches of the set do
    targets = data.mel_db80[test].astype(np.float32)
    inferred = clip_features(
        np.stack([render_tiny(p, int(data.note[i])) for p, i in zip(predicted, test, strict=True)])[:, None]
    ).mel_db80
    others = truth[1:] + truth[:1]
    shuffled = clip_features(
        np.stack([render_tiny(t, int(data.note[i])) for t, i in zip(others, test, strict=True)])[:, None]
    )
    assert np.mean(lsd_db(inferred, targets)) < 0.5 * np.mean(lsd_db(shuffled.mel_db80, targets))
    assert time.perf_counter() - started < 60.0, (rendered, report["seconds"])


def test_a_moving_average_of_the_weights_is_what_is_validated_and_kept() -> None:
    torch.set_num_threads(1)
    data = tiny_data(120)
    settings = TrainSettings(latent=4, channels=8, hidden=16, batch=16, max_steps=40, validate_every=40, seed=3)
    raw, _ = train_asp([data], settings)
    averaged, report = train_asp([data], replace(settings, average_decay=0.9))
    # the same seed takes the same steps; only what is kept differs: the average lags the last step's weights
    assert report["settings"]["average_decay"] == 0.9
    assert any(
        not torch.equal(a, b) for a, b in zip(raw.state_dict().values(), averaged.state_dict().values(), strict=True)
    )
    pooled, _ = pool([data])
    validation = evaluate_loss(averaged, pooled, np.flatnonzero(pooled.split == 1), settings, torch.device("cpu"))
    assert report["best_validation"]["total"] == pytest.approx(validation["total"], rel=1e-4)
    with pytest.raises(ReaTimbreError, match="decay must be 0..1"):
        train_asp([data], replace(settings, average_decay=1.0))


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_training_keeps_the_best_weights_validated_so_far(how: str) -> None:
    torch.set_num_threads(1)
    data = tiny_data(120)
    settings = TrainSettings(latent=4, channels=8, hidden=16, batch=16, max_steps=400, validate_every=10, seed=3)
    seen: list[float] = []

    def progress(state: dict) -> None:
        seen.append(state["validation"]["total"])
        if state["step"] == 30:
            if how == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)  # what `kill` or a job's cancel sends

    model, report = train_asp([data], settings, on_progress=progress)
    assert report["stopped_because"] == "interrupted" and report["steps"] == 30
    assert (
        report["best_validation"]["total"] == pytest.approx(min(seen), abs=1e-5)
        and report["best_validation"]["step"] <= 30
    )
    pooled, _ = pool([data])
    validation = evaluate_loss(model, pooled, np.flatnonzero(pooled.split == 1), settings, torch.device("cpu"))
    assert validation["total"] == pytest.approx(min(seen), rel=1e-4)  # the model returned is the one scored best


def test_an_interrupt_before_the_first_validation_keeps_nothing() -> None:
    data = tiny_data(60)
    settings = TrainSettings(latent=4, channels=8, hidden=16, batch=8, max_steps=400, validate_every=100)
    calls = iter(range(10_000))

    def interrupting_rows(*args: object, **kwargs: object) -> np.ndarray:
        if next(calls) == 5:
            raise KeyboardInterrupt
        return real_rows(*args, **kwargs)

    real_rows = train_module.batch_rows
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "batch_rows", interrupting_rows)
        with pytest.raises(KeyboardInterrupt):
            train_asp([data], settings)
