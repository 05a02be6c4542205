"""Each architecture learns: a few seconds of training on a real DSP task lowers its held-out loss."""

import json

import numpy as np
import pytest
import torch
from afx_tiny import TASK, TINY

from models.afx import ARCHITECTURES, build
from models.afx.tasks import pair
from models.afx.train import ExampleSource, TrainSettings, _Unconditioned, dry_loss, reconstruct, train
from models.errors import ReaTimbreError


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_short_training_lowers_the_loss_on_a_real_task(arch: str) -> None:
    torch.manual_seed(0)
    model = build(arch, TINY[arch])
    dry, wet = pair(TASK[arch], 4.0, 8000, seed=0)
    heldout = pair(TASK[arch], 2.0, 8000, seed=1)
    settings = TrainSettings(steps=60, batch_size=8, learning_rate=3e-3, validate_every=20, validation_examples=16)
    result = train(model, arch, dry, wet, settings, heldout)
    start = result.history[0]["validation"]
    assert result.steps == 60
    assert result.best_validation < 0.7 * start, result.history


def test_pretraining_teaches_the_front_end_to_reconstruct_frames() -> None:
    torch.manual_seed(0)
    model = build("ceq", TINY["ceq"])
    dry, wet = pair("lowpass", 3.0, 8000, seed=0)
    source = ExampleSource(model, dry, dry, seed=5)
    x, _ = source.fixed(16)

    def error() -> float:
        with torch.no_grad():
            return float((reconstruct(model, x) - x).abs().mean())

    before = error()
    dense_before = model.dense.weight.clone()
    settings = TrainSettings(
        steps=1, pretrain_steps=80, learning_rate=3e-3, validate_every=1, remove_silence_offset=False
    )  # the full model's silence offset, removed after training, is not the pretraining network's
    train(model, "ceq", dry, wet, settings)
    assert error() < 0.7 * before
    # Pretraining leaves the latent DNN alone (only the one end-to-end step moved it, a little).
    assert torch.allclose(model.dense.weight, dense_before, atol=0.01)


def test_only_frame_models_can_be_wrapped_for_pretraining() -> None:
    wavenet = build("wavenet", TINY["wavenet"])
    with pytest.raises(ReaTimbreError, match="only frame models are pretrained"):
        _Unconditioned(wavenet, pretraining=True)
    assert _Unconditioned(wavenet).model is wavenet


def test_dry_loss_is_the_loss_of_passing_the_input_through() -> None:
    model = build("cafx", TINY["cafx"])
    dry = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1
    settings = TrainSettings()
    assert dry_loss(model, "cafx", dry, dry, settings) == pytest.approx(0.0, abs=1e-7)
    assert dry_loss(model, "cafx", dry, 2 * dry, settings) > 0.01
    wavenet = build("wavenet", TINY["wavenet"])
    assert dry_loss(wavenet, "wavenet", dry, dry, settings) == pytest.approx(0.0, abs=1e-7)


def test_training_command_writes_a_loadable_model(tmp_path, capsys) -> None:
    from models.afx.train import main
    from models.library import read_info

    settings = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in TINY["cwafx"].items()})
    argv = ["--arch", "cwafx", "--task", "tremolo", "--out", str(tmp_path), "--name", "trem", "--minutes", "0.2"]
    argv += ["--steps", "10", "--pretrain-steps", "3", "--seconds", "3", "--settings", settings]
    assert main(argv) == 0
    info = read_info(tmp_path / "trem.json", "user")
    heldout = info.sidecar["metrics"]["heldout"]
    assert heldout["loss"] == "mae" and heldout["model"] > 0 and heldout["dry"] > 0
    assert info.sidecar["training"]["steps"] == 10 and info.sidecar["emulates"]["task"] == "tremolo"
    assert main(["--arch", "nope", "--task", "tremolo", "--out", str(tmp_path)]) == 2
    assert "unknown architecture" in capsys.readouterr().err


@pytest.mark.parametrize("sample_rate", [8000, 16_000])
def test_material_at_the_thesis_rates_includes_drums_without_failing(sample_rate: int) -> None:
    from models.afx.tasks import material

    for seed in range(3):  # 20 s of program holds drums for these seeds
        audio = material(20.0, sample_rate, seed)
        assert audio.shape == (20 * sample_rate,) and np.isfinite(audio).all() and np.abs(audio).max() > 0.01


def test_every_frame_loss_scores_each_hop_of_the_heldout_material() -> None:
    from models.afx.framing import examples
    from models.afx.losses import eq49_loss
    from models.afx.segment import Segment
    from models.afx.train import every_frame_loss

    torch.manual_seed(0)
    model = build("ceq", TINY["ceq"])  # frames of 256 at a hop of 64
    dry, wet = pair("lowpass", 1.0, 8000, seed=3)
    scored = every_frame_loss(model, "ceq", [Segment(dry, wet, np.zeros(0, np.float32))])
    assert scored["examples"] == len(range(0, len(dry), 64)) == 125  # every hop, not the 16 validation examples
    padded = [torch.nn.functional.pad(torch.from_numpy(s), (0, 256)) for s in (dry, wet)]
    x, y = examples(model, *padded, list(range(0, len(dry), 64)))
    with torch.no_grad():
        assert scored["model"] == pytest.approx(float(eq49_loss(model(x), y)), rel=1e-4)
    assert scored["dry"] == pytest.approx(float(eq49_loss(x, y)), rel=1e-4)  # Hann-windowed in and out
    assert scored["ratio"] == pytest.approx(scored["model"] / scored["dry"])
    same = every_frame_loss(model, "ceq", [Segment(dry, dry, np.zeros(0, np.float32))])
    assert same["dry"] == 0 and same["ratio"] == float("inf")
    wavenet = build("wavenet", TINY["wavenet"])  # a sliding model: its outputs end to end
    assert every_frame_loss(wavenet, "wavenet", [Segment(dry, wet, np.zeros(0, np.float32))])["examples"] == 32


@pytest.mark.parametrize("arch", ["ceq", "cafx", "crafx", "wavenet", "crafx-clocked"])
def test_one_pass_gives_the_render_and_the_every_frame_loss_the_model_gives_apart(arch: str) -> None:
    """afx-bench scores a held-out segment from one pass of the model: its render and its every-frame loss are the
    ones :func:`render` and :func:`every_frame_loss` give on their own (a context-frame model told its clocks too;
    the sliding model's last output runs past the end of the audio, into silence, as its last example does)."""
    from models.afx.framing import render, render_with_examples
    from models.afx.leslie import rotor_clocks
    from models.afx.segment import Segment
    from models.afx.train import every_frame_loss

    torch.manual_seed(0)
    name = arch.removesuffix("-clocked")
    settings = {**TINY[name], "knobs": 1}
    if arch.endswith("-clocked"):
        settings["clocks"] = rotor_clocks()
    model = build(name, settings).eval()
    if arch.endswith("-clocked"):
        with torch.no_grad():  # a clock term that is not zero, as after training
            for p in model.clock_modulation.parameters():
                p.normal_(0.0, 0.5)
    dry, wet = pair("lowpass", 1.0, 8000, seed=5)
    dry, wet = dry[:7001], wet[:7001]  # not a whole number of hops or outputs
    segment = Segment(dry, wet, np.array([0.3], np.float32))
    control = torch.as_tensor(segment.control)
    rendered, estimates = render_with_examples(model, dry, control)
    np.testing.assert_array_equal(rendered, render(model, dry, control))
    apart = every_frame_loss(model, name, [segment])
    assert every_frame_loss(model, name, [segment], estimates=[estimates]) == apart
    assert len(estimates) == apart["examples"]
    with pytest.raises(ValueError, match="estimates"):
        every_frame_loss(model, name, [segment], estimates=[estimates[:-1]])
