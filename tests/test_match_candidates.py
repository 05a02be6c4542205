"""``match``'s render check: the model's guesses (the latent means' patch, then draws from its uncertainty),
rendered, the closest kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.asp.infer import candidate_vectors, closest_candidate, infer_vectors, render_mel
from models.asp.nets import Architecture, AspModel
from models.errors import ReaTimbreError
from models.metrics import lsd_db
from models.synth.match_synths import KarsMatch
from models.synth.spaces import Layout

torch.set_num_threads(1)
LAYOUTS = (Layout(5, (0, 4), ((1, 3),)), Layout(3, (0,), ((1, 2),)))


def _model() -> AspModel:
    torch.manual_seed(0)
    return AspModel(Architecture("joint_encoder", ("a", "b"), LAYOUTS, latent=4, channels=8, hidden=16)).eval()


def test_first_candidate_is_the_best_guess_and_the_others_are_valid_patches() -> None:
    model = _model()
    mel = np.random.default_rng(0).normal(-0.5, 0.1, (3, 128, 88)).astype(np.float32)
    vectors = candidate_vectors(model, mel, "a", 6, seed=1)
    assert vectors.shape == (3, 6, 5)
    np.testing.assert_allclose(vectors[:, 0], infer_vectors(model, mel, "a"), atol=1e-6)
    drawn = vectors[:, 1:, 1:4]
    assert set(np.unique(drawn)) <= {0.0, 1.0} and np.all(drawn.sum(axis=-1) == 1.0)  # one class per group
    assert np.all((vectors[..., [0, 4]] >= 0) & (vectors[..., [0, 4]] <= 1))
    assert not np.allclose(vectors[:, 1, [0, 4]], vectors[:, 0, [0, 4]])  # a drawn latent decodes elsewhere
    np.testing.assert_array_equal(vectors, candidate_vectors(model, mel, "a", 6, seed=1))  # reproducible
    with pytest.raises(ReaTimbreError, match="candidates"):
        candidate_vectors(model, mel, "a", 0)


@pytest.mark.skipif(not KarsMatch.plugin_path.exists(), reason="Kars (dpf-plugins-vst) not installed")
def test_the_closest_render_is_kept() -> None:
    synth = KarsMatch()
    space = synth.space
    truth = space.encode({"Sustain": 0.0, "Release": 0.1, "Volume": 0.9})
    target = render_mel(synth, space.decode(truth), 57)
    quiet = space.encode({"Sustain": 1.0, "Release": 0.9, "Volume": 0.15})
    vectors = np.stack([quiet, truth, quiet])
    index, native, distance = closest_candidate(synth, vectors, target, 57)
    assert index == 1 and native["Volume"] == pytest.approx(0.9, abs=1e-3)
    # Kars's plucks are noise-excited: the same patch renders 4-8 dB apart, so the reported distance is checked
    # against the quiet candidates' rather than against one re-render of its own (which flaked at 3 dB).
    assert np.isfinite(distance) and 0.0 < distance < float(lsd_db(render_mel(synth, space.decode(quiet), 57), target))


def test_the_command_and_the_server_default_to_the_same_number_of_guesses() -> None:
    from models.asp.infer import DEFAULT_CANDIDATES
    from server.cli import build_parser
    from server.match_job import MatchRequest

    args = build_parser().parse_args(["match", "t.wav"])
    assert args.candidates == DEFAULT_CANDIDATES == MatchRequest(input="/t.wav").candidates


def test_the_command_and_the_server_refine_each_synth_by_its_own_default() -> None:
    from pydantic import ValidationError

    from server.cli import build_parser
    from server.match_job import MatchRequest

    args = build_parser().parse_args(["match", "t.wav"])
    assert args.refine is None and MatchRequest(input="/t.wav").refine is None  # None: the synth's own budget
    assert build_parser().parse_args(["match", "t.wav", "--refine", "0"]).refine == 0
    with pytest.raises(ValidationError):
        MatchRequest(input="/t.wav", refine=5000)
