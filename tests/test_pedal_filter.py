"""The filter pedal's gray-box network (models.pedals.biquads): stable at every knob position, its frequency-domain
training path equal to its streaming IIR, streaming equal to one pass, a library model like any other, and a short
training run lowers its loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.effect_training import RECIPES
from models.effects import REFERENCE_EFFECTS
from models.fit import fit
from models.library import load_model, save_model
from models.losses import MultiResolutionSTFTLoss
from models.material import make_program
from models.networks import architecture_record, build_network
from models.pedals.biquads import BiquadConfig, ConditionedBiquads, ladder_nonlinearity_db
from models.pedals.training import MATERIAL_KINDS, CropSource
from models.pedals.training import build_network as build_pedal_network
from models.userdirs import user_models_dir

SR = 44_100
SMALL = BiquadConfig(sections=3, units=4, cond_hidden=16, receptive_field=4096)


def _shaken(config: BiquadConfig = SMALL, scale: float = 0.3, seed: int = 0) -> ConditionedBiquads:
    """A network with every weight moved at random from its start (curves that bend, filters that differ per knob)."""
    torch.manual_seed(seed)
    network = ConditionedBiquads(config, knobs=2)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(torch.randn_like(parameter) * scale)
    return network


def _pole_radii(network: ConditionedBiquads, control: torch.Tensor) -> torch.Tensor:
    """(B, 2 x sections) magnitudes of the cascade's poles, from its denominators' roots."""
    _, denominator, _ = network.sections(control)
    a1, a2 = denominator[..., 1], denominator[..., 2]
    root = torch.sqrt((a1**2 - 4 * a2).to(torch.complex128))
    return torch.cat(((-a1 + root) / 2, (-a1 - root) / 2), dim=-1).abs()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_pole_is_inside_the_unit_circle_at_every_knob_position(seed: int) -> None:
    """Even with weights thrown far from their start, at knob positions beyond 0..1: the ring of every pole decays by
    the configured 60 dB within the receptive field."""
    network = _shaken(scale=3.0, seed=seed)
    grid = torch.linspace(-0.5, 1.5, 41)
    control = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        radii = _pole_radii(network, control)
    bound = math.exp(-network.min_decay_per_sample)
    assert radii.max().item() <= bound + 1e-12 < 1.0
    assert 20 * math.log10(bound) * SMALL.receptive_field == pytest.approx(-SMALL.ring_decay_db)


def test_the_shipped_recipe_starts_as_a_low_pass_at_unit_gain() -> None:
    network = build_pedal_network("ours", REFERENCE_EFFECTS["filter"], RECIPES["filter"])
    assert isinstance(network, ConditionedBiquads) and network.receptive_field == 16_384
    with torch.no_grad():
        response = network.frequency_response(torch.tensor([[0.5, 0.5]]), 4096)[0].abs()
    assert response[0].item() == pytest.approx(1.0, abs=1e-9)
    assert response[-1].item() < 1e-3  # zeros near z = -1


@pytest.mark.parametrize("knobs", [(0.0, 0.0), (0.4, 0.9), (1.0, 1.0)])
def test_the_frequency_domain_training_path_equals_the_streaming_iir(knobs: tuple[float, float]) -> None:
    """forward (FFT of the crop from a silent state, warm-up dropped) against the IIR stream over the same signal:
    equal once the response to what came before the output has decayed (the receptive field's job)."""
    network = _shaken()
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((1, 1, 3 * SMALL.receptive_field)).astype(np.float32) * 0.3)
    control = torch.tensor([knobs])
    with torch.no_grad():
        trained = network(x, control)
    streamed = network.stream(control[0]).process(x)[..., SMALL.receptive_field - 1 :]
    assert trained.shape == streamed.shape
    assert torch.max(torch.abs(trained - streamed)).item() < 1e-4
    assert torch.max(torch.abs(streamed)).item() > 1e-2  # a signal, not silence, was compared


@pytest.mark.parametrize("blocks", [[1, 7, 4096, 900], [64] * 80, [5000]])
def test_streaming_block_by_block_equals_one_pass(blocks: list[int]) -> None:
    network = _shaken()
    length = sum(blocks)
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 1, length)).astype(np.float32) * 0.5)
    control = torch.tensor([0.3, 0.7])
    whole = network.stream(control).process(x)
    stream = network.stream(control)
    starts = np.cumsum([0, *blocks[:-1]])
    parts = torch.cat([stream.process(x[..., s : s + n]) for s, n in zip(starts, blocks, strict=True)], dim=-1)
    assert torch.max(torch.abs(parts - whole)).item() < 1e-4
    assert torch.equal(network.stream(control).process(torch.zeros(1, 1, 300)), torch.zeros(1, 1, 300))


def test_it_saves_loads_and_renders_through_the_library() -> None:
    network = _shaken()
    effect = REFERENCE_EFFECTS["filter"]
    sidecar = {"sample_rate": SR, "knobs": [k.to_dict() for k in effect.knobs], "description": "test filter"}
    info = save_model(network, sidecar, user_models_dir(), "test-biquads")
    try:
        assert build_network(architecture_record(network)).settings() == network.settings()
        loaded = load_model("test-biquads")
        audio = np.random.default_rng(3).standard_normal((2, 6000)).astype(np.float32) * 0.2
        knobs = {"cutoff": 600.0, "resonance": 0.7}
        out = loaded.process(audio, knobs)
        control = torch.tensor([k.position(knobs[k.name]) for k in effect.knobs], dtype=torch.float32)
        expected = network.stream(control).process(torch.from_numpy(audio)[:, None, :])[:, 0].numpy()
        assert out.shape == audio.shape
        np.testing.assert_allclose(out, expected, atol=1e-5)
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()


def test_a_short_training_run_lowers_the_loss() -> None:
    effect = REFERENCE_EFFECTS["filter"]
    torch.manual_seed(0)
    network = ConditionedBiquads(SMALL, knobs=2)
    rng = np.random.default_rng(0)
    clips = [make_program(2.0, SR, rng, MATERIAL_KINDS) for _ in range(2)]
    source = CropSource(effect, clips, SMALL.receptive_field, 2048, 4, seed=0)
    fixed = [source.batch(0) for _ in range(2)]
    loss = MultiResolutionSTFTLoss()

    def held_loss(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(np.mean([loss(model(x, c), y).item() for x, c, y in fixed]))

    before = held_loss(network)
    # A step budget only (max_seconds out of reach): the learning-rate schedule must not follow the machine's load.
    # 100 steps: at 60 the loss reached 1.89 on an AMD machine but only 2.23 on an Intel one (another trajectory).
    fit(network, source.batch, loss, steps=100, max_seconds=3600, learning_rate=1e-2)
    assert held_loss(network) < 0.8 * before  # 2.74 -> 1.26 (Intel Xeon)


def test_the_real_ladder_is_linear_when_quiet_and_saturates_when_loud() -> None:
    """The measurement behind the network's two curves (module docstring)."""
    rows = ladder_nonlinearity_db(levels_dbfs=(-40, -1), seconds=0.25)
    quiet = [r["nonlinear_db"] for r in rows if r["peak_dbfs"] == -40]
    loud = [r["nonlinear_db"] for r in rows if r["peak_dbfs"] == -1]
    assert max(quiet) < -55 and min(loud) > -35 and max(loud) > -12
