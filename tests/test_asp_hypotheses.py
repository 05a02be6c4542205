"""Several hypotheses per parameter decoder: winner-takes-all training, scores, guesses, and why it matters —
a synth on which two settings sound alike is matched by a patch that sounds right, not by their average."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from models.asp.data import MatchData
from models.asp.infer import candidate_vectors, infer_vectors
from models.asp.losses import hypotheses_loss, parameter_loss
from models.asp.nets import Architecture, AspModel
from models.asp.store import load_model, save_model
from models.asp.train import TrainSettings, train_asp
from models.errors import ReaTimbreError
from models.metrics import lsd_db
from models.synth.features import clip_features
from models.synth.spaces import CONTINUOUS, Layout, ParameterSpace, ParameterSpec
from tests.test_asp_tiny import memory_data, render_tiny

torch.set_num_threads(1)
LAYOUTS = (Layout(5, (0, 4), ((1, 3),)), Layout(3, (0,), ((1, 2),)))


def _model(variant: str, hypotheses: int = 3) -> AspModel:
    torch.manual_seed(0)
    return AspModel(Architecture(variant, ("a", "b"), LAYOUTS, latent=4, channels=8, hidden=16, hypotheses=hypotheses))


def _mel(n: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).normal(-0.5, 0.1, (n, 128, 88)).astype(np.float32))


def test_the_winner_takes_the_loss_and_the_scores_learn_to_name_it() -> None:
    target = torch.tensor([[0.3, 0, 1, 0, 0.9], [0.6, 1, 0, 0, 0]])
    synth = torch.tensor([0, 1])
    logit = float(np.log(0.3 / 0.7)), float(np.log(0.9 / 0.1)), float(np.log(0.6 / 0.4))
    raw = torch.zeros(2, 3, 5)
    raw[0, 2] = torch.tensor([logit[0], -50, 50, -50, logit[1]])  # row 0: hypothesis 2 is exact
    raw[1, 0, :3] = torch.tensor([logit[2], 50, -50])  # row 1: hypothesis 0 is exact
    raw.requires_grad_(True)
    naming = torch.tensor([[0.0, 0.0, 9.0], [9.0, 0.0, 0.0]])
    loss, choice = hypotheses_loss(raw, naming, target, synth, LAYOUTS, relax=0.0)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6) and float(choice) < 1e-3
    _, wrong_choice = hypotheses_loss(raw, naming.flip(1), target, synth, LAYOUTS, relax=0.0)
    assert float(wrong_choice) > 5
    # the losers get no gradient without relaxation; with it, every hypothesis gets some
    raw.grad = None
    worse = raw.detach().clone()
    worse[:, :, 0] += 1.0  # every hypothesis off, the winners still the best
    worse.requires_grad_(True)
    hypotheses_loss(worse, naming, target, synth, LAYOUTS, relax=0.0)[0].backward()
    assert worse.grad is not None
    assert float(worse.grad[0, 2].abs().sum()) > 0 and float(worse.grad[0, :2].abs().sum()) == 0
    assert float(worse.grad[1, 0].abs().sum()) > 0 and float(worse.grad[1, 1:].abs().sum()) == 0
    worse.grad = None
    hypotheses_loss(worse, naming, target, synth, LAYOUTS, relax=0.1)[0].backward()
    assert float(worse.grad[0, :2].abs().sum()) > 0
    # one hypothesis is the plain parameter loss
    single = raw.detach()[:, :1]
    assert float(hypotheses_loss(single, torch.zeros(2, 1), target, synth, LAYOUTS)[0]) == pytest.approx(
        float(parameter_loss(single[:, 0], target, synth, LAYOUTS)[0])
    )


@pytest.mark.parametrize("variant", ["separate", "joint_encoder", "joint_decoder"])
def test_hypotheses_shapes_padding_and_the_best_scored_one(variant: str) -> None:
    model = _model(variant)
    out = model(_mel(3), torch.tensor([0, 1, 1]), sample=False)
    assert out.hypotheses.shape == (3, 3, 5) and out.scores.shape == (3, 3)
    best = out.scores.argmax(dim=1)
    torch.testing.assert_close(out.params, out.hypotheses[torch.arange(3), best])
    if variant != "joint_decoder":  # separate decoders leave a shorter synth's slots empty
        assert float(out.hypotheses[1:, :, 3:].abs().sum()) == 0.0


def test_a_synths_hypotheses_train_only_its_own_decoder() -> None:
    model = _model("joint_encoder")
    target = torch.tensor([[0.3, 0, 1, 0, 0.9]] * 2)
    synth = torch.tensor([0, 0])
    out = model(_mel(2), synth)
    loss, choice = hypotheses_loss(out.hypotheses, out.scores, target, synth, LAYOUTS)
    (loss + choice).backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.parameter_decoders[0].parameters())
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in model.parameter_decoders[1].parameters())


def test_guesses_are_the_hypotheses_best_scored_first_then_draws(tmp_path) -> None:
    model = _model("joint_encoder").eval()
    mel = _mel(2).numpy()
    vectors = candidate_vectors(model, mel, "a", 5, seed=1)
    np.testing.assert_allclose(vectors[:, 0], infer_vectors(model, mel, "a"), atol=1e-6)
    with torch.no_grad():
        out = model(torch.from_numpy(mel), torch.zeros(2, dtype=torch.long), sample=False)
    order = out.scores.argsort(dim=1, descending=True)
    for row in range(2):
        for c in range(3):
            hypothesis = out.hypotheses[row, order[row, c]]
            np.testing.assert_allclose(vectors[row, c, 0], torch.sigmoid(hypothesis[0]).item(), atol=1e-6)
    drawn = vectors[:, 3:, 1:4]  # draws from the posterior: one class per group
    assert set(np.unique(drawn)) <= {0.0, 1.0} and np.all(drawn.sum(axis=-1) == 1.0)
    # stored and loaded, the hypotheses come back; a sidecar from before hypotheses reads as one
    save_model(model, {}, tmp_path)
    loaded, sidecar = load_model(tmp_path, "joint_encoder")
    assert loaded.architecture.hypotheses == 3 and sidecar["architecture"]["hypotheses"] == 3
    old = dict(sidecar["architecture"])
    del old["hypotheses"]
    assert Architecture.from_json(old).hypotheses == 1
    with pytest.raises(ReaTimbreError, match="hypotheses"):
        Architecture("joint_encoder", ("a",), LAYOUTS[:1], hypotheses=0)


#: a one-knob synth on which two settings sound alike: the tone's brightness is the knob's distance from its centre
TWIN = ParameterSpace("twin", [ParameterSpec("tilt", CONTINUOUS, 0.5, 0.0, 1.0)])


def _twin_render(tilt: float, note: int) -> np.ndarray:
    return render_tiny({"brightness": abs(2.0 * tilt - 1.0), "wave": 1.0}, note)


def _twin_data(n: int) -> MatchData:
    """Patches with the knob in 0..0.3 or 0.7..1 (each sound made by two settings an equal distance apart)."""
    rng = np.random.default_rng(0)
    offsets = rng.uniform(0.2, 0.5, n)
    tilts = np.where(rng.random(n) < 0.5, 0.5 - offsets, 0.5 + offsets)
    notes = rng.integers(48, 60, n)
    return memory_data(TWIN, [{"tilt": float(t)} for t in tilts], notes, lambda v, note: _twin_render(v["tilt"], note))


def test_two_settings_that_sound_alike_are_matched_by_one_of_them_not_their_average() -> None:
    started = time.perf_counter()
    data = _twin_data(300)
    test = data.rows("test")
    targets = data.mel_db80[test].astype(np.float32)
    distances = {}
    for hypotheses in (1, 2):
        settings = TrainSettings(
            variant="joint_encoder",
            latent=8,
            channels=8,
            hidden=64,
            batch=32,
            seconds=6.0,
            max_steps=250,
            warmup_steps=100,
            validate_every=50,
            learning_rate=2e-3,
            hypotheses=hypotheses,
        )
        model, _ = train_asp([data], settings)
        guesses = infer_vectors(model, targets, "twin")[:, 0]
        renders = np.stack([_twin_render(float(g), int(data.note[i])) for g, i in zip(guesses, test, strict=True)])
        distances[hypotheses] = float(np.mean(lsd_db(clip_features(renders[:, None]).mel_db80, targets)))
        if hypotheses == 1:  # one regression lands between the twins, on a duller sound than either
            assert np.mean(np.abs(guesses - 0.5)) < 0.15, guesses
    assert distances[2] < 0.5 * distances[1], distances
    assert time.perf_counter() - started < 60.0
