"""Steering end to end: train on a pair, save to the user library, render with it; refusals and interruptions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.errors import ReaTimbreError
from models.library import find_model, load_model
from models.rates import SAMPLE_RATE_HZ
from models.steer import RECIPES, judge_against_dry, signal_frames, split_regions, steer_model
from models.steer_pair import prepare_pair
from server.cli import main
from tests.test_steer_pair import bursts, delayed, saturate

SR = SAMPLE_RATE_HZ
TINY = replace(
    RECIPES["short"],
    config=replace(RECIPES["short"].config, channels=4, layers=3),  # the shipped kind of network, smaller
    segment_samples=4096,
    batch_size=2,
    validate_every=5,
)


def gain(dry: np.ndarray) -> np.ndarray:
    """An effect the tiny model can learn in a few dozen steps: -12 dB."""
    return (0.25 * dry).astype(np.float32)


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    dry = bursts(seconds=5.0)
    sf.write(folder / "dry.wav", dry, SR, subtype="FLOAT")
    sf.write(folder / "wet.wav", delayed(saturate(dry), 220), SR, subtype="FLOAT")
    return folder / "dry.wav", folder / "wet.wav"


def test_regions_are_disjoint_and_cover_the_pair() -> None:
    regions = split_regions(1000)
    spans = sorted([*regions.train, regions.validation, regions.heldout])
    assert spans[0][0] == 0 and spans[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_short_recipe_takes_its_gain_from_a_level_detector() -> None:
    """Peak and RMS levels from one sample to beyond a 20 Hz period feed a gain computer; the memory stays short."""
    config = RECIPES["short"].config
    assert config.gain_path and config.level_input and config.level_rms and config.gain_computer
    assert min(config.level_windows) == 1 and max(config.level_windows) > SR / 20
    assert config.receptive_field < 0.3 * SR < RECIPES["long"].config.receptive_field


def test_steering_learns_the_effect_and_reports_heldout_error() -> None:
    dry = bursts(seconds=5.0, seed=4)
    result = steer_model(dry, gain(dry), "steer-gain", "short", minutes=2, sample_rate=SR, steps=150, recipe=TINY)
    assert result["model"] == "steer-gain" and result["memory"] == "short"
    assert result["heldout_mrstft"] < 0.5 * result["heldout_dry_mrstft"]
    effect = load_model("steer-gain")
    rendered = effect.process(dry[None, :])
    assert np.sqrt(np.mean(rendered**2)) == pytest.approx(0.25 * np.sqrt(np.mean(dry**2)), rel=0.3)


def test_cli_steers_saves_a_user_model_and_render_uses_it(pair_files, tmp_path, capsys, monkeypatch) -> None:
    import models.steer

    monkeypatch.setitem(models.steer.RECIPES, "short", replace(TINY, validate_every=2))
    dry, wet = pair_files
    assert main(["steer", str(dry), str(wet), "--name", "my-drive", "--minutes", "0.2"]) == 0
    out = capsys.readouterr()
    assert "my-drive: saved" in out.out and "held-out MR-STFT" in out.out
    assert "(220 samples) behind the dry: offset removed" in out.err and "memory auto -> short" in out.err
    assert "after the dry stops" in out.err and "impulse response rings" in out.err  # the evidence, printed

    info = find_model("my-drive")
    assert info.kind == "user" and [k.name for k in info.knobs] == ["c1", "c2"]
    sidecar = info.sidecar
    assert sidecar["steered"]["removed_latency_samples"] == 220
    evidence = sidecar["steered"]["memory_evidence"]  # and stored
    assert evidence["envelope_tail_seconds"] is not None and evidence["impulse_late_excess_db"] < 3.0
    assert sidecar["metrics"]["heldout"]["model"]["mrstft"] > 0
    assert sidecar["metrics"]["heldout"]["dry"]["mrstft"] > 0
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed["my-drive"]["kind"] == "user" and listed["my-drive"]["heldout"]["model"]["mrstft"] > 0

    rendered = tmp_path / "rendered.wav"
    assert main(["render", str(dry), "-o", str(rendered), "--effect", "my-drive", "--knob", "c1=3", "--quiet"]) == 0
    audio, rate = sf.read(rendered)
    assert rate == SR and audio.shape[0] == sf.info(dry).frames and np.isfinite(audio).all()

    # The name is taken now: refused before any training, the model is untouched.
    before = info.weights_path.read_bytes()
    assert main(["steer", str(dry), str(wet), "--name", "my-drive", "--minutes", "0.2"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert info.weights_path.read_bytes() == before


def test_bad_requests_fail_before_training(pair_files, tmp_path) -> None:
    dry, wet = pair_files
    with pytest.raises(ReaTimbreError, match="invalid model name"):
        steer_model(dry, wet, "../evil", minutes=1)
    with pytest.raises(ReaTimbreError, match="minutes"):
        steer_model(dry, wet, "ok-name", minutes=0)
    with pytest.raises(ReaTimbreError, match="memory must be"):
        steer_model(dry, wet, "ok-name", memory="huge", minutes=1)
    with pytest.raises(ReaTimbreError, match="no such file"):
        steer_model(tmp_path / "nope.wav", wet, "ok-name", minutes=1)
    assert not any(p.name.startswith("ok-name") for p in find_model_dir().iterdir())


def find_model_dir() -> Path:
    from models.userdirs import user_models_dir

    user_models_dir().mkdir(parents=True, exist_ok=True)
    return user_models_dir()


def test_ctrl_c_keeps_the_best_model_and_cancel_saves_nothing(pair_files) -> None:
    dry, wet = pair_files
    calls = []

    def interrupt(progress) -> None:
        calls.append(progress.step)
        if progress.step == 3:
            raise KeyboardInterrupt

    # three steps do not beat the dry input: kept only because it is asked for
    result = steer_model(dry, wet, "interrupted", "short", 2, progress=interrupt, recipe=TINY, keep_anyway=True)
    assert result["stopped_because"] == "interrupted" and result["steps"] == 3 and result["worse_than_dry"]
    assert find_model("interrupted").sidecar["training"]["stopped_because"] == "interrupted"

    with pytest.raises(ReaTimbreError, match="cancelled"):
        steer_model(dry, wet, "cancelled", "short", 2, should_cancel=lambda: True, recipe=TINY)
    assert not any(p.name.startswith("cancelled") for p in find_model_dir().iterdir())


def test_heldout_and_validation_lie_where_the_pair_has_signal() -> None:
    """A pair that ends (and pauses in the middle) in silence is not judged on the silence."""
    dry = bursts(seconds=10.0, seed=5)
    dry[int(4.4 * SR) : int(5.6 * SR)] = 0.0  # a long pause where the validation part used to be
    dry[int(8.0 * SR) :] = 0.0  # the last 20 %: where the held-out part used to be
    pair = prepare_pair(dry + 1e-6, saturate(dry), SR)
    active = signal_frames(pair)
    regions = split_regions(pair.dry.shape[1], active)
    frame = pair.dry.shape[1] / active.size
    for start, end in (regions.heldout, regions.validation):
        share = active[int(start / frame) : int(end / frame)].mean()
        assert share > 0.5, (start / SR, end / SR, share)
    assert regions.heldout[1] <= 8.2 * SR and not regions.validation[0] < 5.6 * SR < regions.validation[1] - 0.2 * SR
    spans = sorted([*regions.train, regions.validation, regions.heldout])
    assert spans[0][0] == 0 and spans[-1][1] == pair.dry.shape[1]
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_a_model_no_better_than_dry_is_not_saved_unless_kept_anyway(pair_files, capsys, monkeypatch) -> None:
    """One training step leaves the model at the dry input's error: refused in plain words, exit status 1."""
    import models.steer

    monkeypatch.setitem(models.steer.RECIPES, "short", TINY)
    dry, wet = pair_files
    result = steer_model(dry, wet, "barely", "short", 1, steps=1, recipe=TINY)
    assert result["worse_than_dry"] and not result["saved"] and result["path"] is None
    assert result["heldout_ratio_to_dry"] >= 0.9 and "doing nothing" in result["message"]
    assert "--memory long" in result["message"] and "--minutes" in result["message"]
    assert not any(p.name.startswith("barely") for p in find_model_dir().iterdir())

    monkeypatch.setattr(models.steer, "steer_model", _one_step(models.steer.steer_model))
    assert main(["steer", str(dry), str(wet), "--name", "barely", "--minutes", "0.2"]) == 1
    err = capsys.readouterr().err
    assert "barely: not saved" in err and "doing nothing" in err and "--keep-anyway" in err
    assert not any(p.name.startswith("barely") for p in find_model_dir().iterdir())

    assert main(["steer", str(dry), str(wet), "--name", "barely", "--minutes", "0.2", "--keep-anyway"]) == 0
    out = capsys.readouterr().out
    assert "barely: saved" in out and "warning, kept anyway" in out
    heldout = find_model("barely").sidecar["metrics"]
    assert heldout["worse_than_dry"] and heldout["heldout_ratio_to_dry"] >= 0.9


def _one_step(steer):
    return lambda *args, **kwargs: steer(*args, **{**kwargs, "steps": 1})


def test_a_model_clearly_better_than_dry_is_saved_without_a_warning() -> None:
    dry = bursts(seconds=5.0, seed=6)
    result = steer_model(dry, gain(dry), "steer-clear", "short", minutes=2, sample_rate=SR, steps=150, recipe=TINY)
    assert result["saved"] and not result["worse_than_dry"] and result["heldout_ratio_to_dry"] < 0.9
    assert find_model("steer-clear").sidecar["metrics"]["worse_than_dry"] is False


def test_the_verdict_says_how_much_worse_and_what_to_try() -> None:
    worse = judge_against_dry(4.03, 1.11, "long", 5)  # issue 26's hall reverb
    assert worse.worse_than_dry and worse.ratio == pytest.approx(3.63, abs=0.01)
    assert "worse than doing nothing" in worse.message and "3.63 times the dry input's" in worse.message
    assert "more --minutes than 5" in worse.message and "--memory" not in worse.message
    hardly = judge_against_dry(0.95, 1.0, "short", 3)
    assert hardly.worse_than_dry and "hardly better than" in hardly.message and "--memory long" in hardly.message
    assert not judge_against_dry(0.5, 1.0, "short", 3).worse_than_dry


def test_a_cancel_before_training_stops_steering_before_it_trains(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dry = (0.3 * rng.standard_normal(SAMPLE_RATE_HZ * 4)).astype(np.float32)
    stages: list[str] = []

    def cancelled() -> bool:
        stages.append("asked")
        return True

    with pytest.raises(ReaTimbreError, match="steering cancelled"):
        steer_model(
            dry,
            np.tanh(3 * dry),
            "never",
            minutes=0.1,
            sample_rate=SAMPLE_RATE_HZ,
            should_cancel=cancelled,
            directory=tmp_path,
        )
    assert stages == ["asked"] and not list(tmp_path.iterdir())


def synthetic_reverb(dry: np.ndarray, t60_seconds: float = 0.4, seed: int = 3) -> np.ndarray:
    """The dry at 0.6 plus a tail of exponentially decaying noise (T60 ``t60_seconds``) starting 10 ms later."""
    t = np.arange(int(2 * t60_seconds * SR)) / SR
    response = 0.02 * np.random.default_rng(seed).standard_normal(t.size) * np.exp(-np.log(1000) * t / t60_seconds)
    response[: int(0.01 * SR)] = 0.0
    response[0] = 0.6
    size = 1 << (dry.size + response.size).bit_length()
    return np.fft.irfft(np.fft.rfft(dry, size) * np.fft.rfft(response, size), size)[: dry.size].astype(np.float32)


def test_auto_steers_a_reverb_with_the_reverb_network() -> None:
    """A dense decaying tail makes ``--memory auto`` choose the reverb network, which learns it and renders it."""
    from models.reverb_tail import ReverbTailConfig

    tiny = replace(
        RECIPES["reverb"],
        config=ReverbTailConfig(tail_seconds=1.2, early_taps=512, bands=6, early_scale=0.05),
        segment_samples=8192,
        batch_size=2,
        validate_every=10,
    )
    dry = bursts(seconds=8.0, seed=5)
    wet = synthetic_reverb(dry)
    result = steer_model(dry, wet, "steer-room", "auto", minutes=2, sample_rate=SR, steps=120, recipe=tiny)
    assert result["memory"] == "reverb", result["memory_reason"]
    assert result["heldout_mrstft"] < 0.6 * result["heldout_dry_mrstft"]
    info = find_model("steer-room")
    assert info.network_type == "ReverbTail" and info.tail_seconds == 1.2
    rendered = load_model("steer-room").process(dry[None, :])
    assert rendered.shape == (1, dry.size + int(1.2 * SR)) or rendered.shape == (1, dry.size)


def test_the_reverb_network_starts_from_the_training_parts_response_and_keeps_its_echoes() -> None:
    """The early part starts as the response measured on the training part, so an echo 150 ms after the direct
    sound (beyond the 46 ms early part of old) is there from the first step; the held-out error ends far below the
    dry's."""
    from models.reverb_tail import ReverbTailConfig

    assert RECIPES["reverb"].config.early_taps >= 0.5 * SR  # the shipped recipe's early part: half a second
    tiny = replace(
        RECIPES["reverb"],
        config=ReverbTailConfig(tail_seconds=1.2, early_taps=int(0.25 * SR), bands=6, early_scale=0.05),
        segment_samples=8192,
        batch_size=2,
        validate_every=5,
    )
    dry = bursts(seconds=8.0, seed=5)
    echo = np.zeros_like(dry)
    echo[int(0.15 * SR) :] = 0.5 * dry[: -int(0.15 * SR)]
    wet = synthetic_reverb(dry) + echo
    result = steer_model(dry, wet, "steer-echo-room", "reverb", minutes=2, sample_rate=SR, steps=10, recipe=tiny)
    assert result["heldout_mrstft"] < 0.3 * result["heldout_dry_mrstft"], result["heldout_ratio_to_dry"]
    sidecar = find_model("steer-echo-room").sidecar
    assert sidecar["training"]["started_from_impulse_response"]["t60_seconds"]
