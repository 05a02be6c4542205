"""The gray-box drive chain of the fuzz and the amp (models.pedals.drive) and its conditioned filters
(models.conditioned_filter): the library contract, the chain's structure, and a short training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from models.conditioned_filter import ConditionedFilter, fir_convolve
from models.effects import REFERENCE_EFFECTS
from models.errors import ReaTimbreError
from models.fit import fit
from models.library import load_model, save_model
from models.losses import MultiResolutionSTFTLoss
from models.material import make_program
from models.networks import architecture_record, build_network
from models.pedals.drive import DriveChain, DriveConfig
from models.pedals.training import CropSource, render
from models.rates import SAMPLE_RATE_HZ
from models.userdirs import user_models_dir
from models.waveshaper import ConditionedWaveshaper

SMALL = DriveConfig(units=4, pre_taps=128, pre_sections=1, pre_fir=8, post_taps=256, post_sections=2, post_fir=16)


def _random(config: DriveConfig = SMALL, seed: int = 3) -> DriveChain:
    """A chain with random knob dependence everywhere, as training leaves it."""
    torch.manual_seed(seed)
    model = DriveChain(config).eval()
    with torch.no_grad():
        for head in (model.pre.head, model.curve, model.post.head):
            head.weight.normal_(0.0, 0.05)
        model.curve.bias[1 + 2 * config.units :].normal_(0.0, 0.5)  # the units' weights: a real curve
    return model


def test_settings_round_trip_and_build_for_the_drive_pedals_only() -> None:
    model = DriveChain(SMALL)
    rebuilt = build_network(architecture_record(model))
    assert isinstance(rebuilt, DriveChain) and rebuilt.config == SMALL
    assert model.receptive_field == 128 + 256 - 1 and model.latency_samples == 0
    assert isinstance(SMALL.build(REFERENCE_EFFECTS["amp"]), DriveChain)
    with pytest.raises(ReaTimbreError, match="latency"):
        SMALL.build(REFERENCE_EFFECTS["octave"])
    with pytest.raises(ReaTimbreError, match="knobs"):
        SMALL.build(REFERENCE_EFFECTS["delay"])


def test_the_filters_and_the_chain_start_as_the_identity() -> None:
    fresh = DriveChain(SMALL)
    control = torch.tensor([[0.0, 1.0], [0.7, 0.2]])
    pre, _, post = fresh.coefficients(control)
    for taps in (pre, post):
        unit = torch.zeros_like(taps)
        unit[:, 0] = 1.0
        assert torch.allclose(taps, unit, atol=1e-5)
    x = torch.randn(2, 1, 1000, generator=torch.Generator().manual_seed(0)) * 0.5
    with torch.no_grad():  # float32 filtering: peaks near 2 come back within about 1e-5 (seeds vary; 5e-5 holds)
        assert torch.allclose(fresh(x, control), x[..., fresh.receptive_field - 1 :], atol=5e-5)


def test_silence_in_gives_silence_out_whatever_the_knobs() -> None:
    model = _random()
    for knobs in ([0.0, 0.0], [1.0, 0.3], [0.5, 1.0]):
        stream = model.stream(torch.tensor(knobs))
        assert torch.equal(stream.process(torch.zeros(2, 1, 700)), torch.zeros(2, 1, 700))


def test_the_curve_is_memoryless() -> None:
    """What the curve gives a sample depends on that sample alone: shaping a shuffled signal shuffles the output."""
    model = _random()
    _, curve, _ = model.coefficients(torch.tensor([[0.8, 0.4]]))
    x = torch.randn(1, 1, 400) * 0.6
    order = torch.randperm(400)
    with torch.no_grad():
        shaped = ConditionedWaveshaper.shape(x, *curve)
        assert torch.allclose(ConditionedWaveshaper.shape(x[..., order], *curve), shaped[..., order])
        assert not torch.allclose(shaped, curve[0] * x, atol=1e-3)  # and it is a curve, not a line


@pytest.mark.parametrize("blocks", [[1, 9, 10, 700, 1280], [64] * 50, [4096]])
def test_stream_equals_one_pass_whatever_the_blocks(blocks: list[int]) -> None:
    model = _random(DriveConfig(units=4, pre_taps=1024, post_taps=2048))  # FFT convolutions, as shipped
    control = torch.tensor([0.3, 0.8])
    length = sum(blocks)
    x = torch.randn(2, 1, length) * 0.4
    with torch.no_grad():
        whole = model(torch.nn.functional.pad(x, (model.receptive_field - 1, 0)), control.expand(2, -1))
    stream = model.stream(control)
    edges = np.cumsum([0, *blocks])
    out = torch.cat([stream.process(x[..., a:b]) for a, b in zip(edges, edges[1:], strict=False)], dim=-1)
    assert out.shape == whole.shape and torch.allclose(out, whole, atol=1e-4)


def test_a_conditioned_filter_is_its_biquad_cascade_and_stays_stable() -> None:
    """The FIR equals the impulse response of the predicted biquads (scipy's recursion) times the free taps, and
    even wild weights keep every pole inside the unit circle."""
    torch.manual_seed(0)
    bank = ConditionedFilter(hidden=8, sections=3, fir_taps=4, taps=1024)
    with torch.no_grad():
        bank.head.weight.normal_(0.0, 0.5)
    embedding = torch.rand(2, 8)
    with torch.no_grad():
        taps = bank(embedding)
        numerator, denominator = bank.biquads(embedding)
        fir = bank.head(embedding)[:, 15:]
    for row in range(2):
        impulse = np.zeros(1024)
        impulse[0] = 1.0
        sos = np.concatenate([numerator[row].numpy(), denominator[row].numpy()], axis=1).astype(np.float64)
        expected = np.convolve(signal.sosfilt(sos, impulse), fir[row].numpy())[:1024]
        np.testing.assert_allclose(taps[row].numpy(), expected, atol=2e-3 * np.abs(expected).max())
    with torch.no_grad():
        bank.head.weight.normal_(0.0, 100.0)
        _, wild = bank.biquads(torch.rand(64, 8))
    assert torch.all(wild[..., 2] < 1.0) and torch.isfinite(bank(torch.rand(64, 8))).all()


def test_fir_convolve_fft_matches_direct() -> None:
    x = torch.randn(3, 1, 500)
    taps = torch.randn(3, 100)
    direct = torch.stack([torch.from_numpy(np.convolve(x[i, 0].numpy(), taps[i].numpy(), "valid")) for i in range(3)])
    assert torch.allclose(fir_convolve(x, taps)[:, 0], direct.float(), atol=1e-4)


def test_saves_loads_and_renders_through_the_library() -> None:
    network = _random()
    fuzz = REFERENCE_EFFECTS["fuzz"]
    sidecar = {"sample_rate": SAMPLE_RATE_HZ, "knobs": [k.to_dict() for k in fuzz.knobs]}
    info = save_model(network, sidecar, user_models_dir(), "pedal-drive-chain")
    try:
        effect = load_model(info.name)
        audio = np.random.default_rng(0).standard_normal((2, 3000)).astype(np.float32) * 0.1
        out = effect.process(audio, {"gain": 40.0, "tone": 0.2})
        assert out.shape == audio.shape and np.isfinite(out).all()
        expected = render(network.stream(effect.control_vector({"gain": 40.0, "tone": 0.2})), audio[1], 0)
        np.testing.assert_allclose(out[1], expected, atol=1e-6)
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()


def test_a_short_training_run_on_the_fuzz_lowers_the_loss() -> None:
    effect = REFERENCE_EFFECTS["fuzz"]
    torch.manual_seed(0)
    network = DriveConfig().build(effect)  # the shipped size: its long filters are what must learn
    rng = np.random.default_rng(0)
    # The same material for the seed (Vital's notes too: models.material turns their random phases off), so the run
    # ends the same in any process at any thread count (1.29); with Vital's random phases it ended at 1.29 or 1.76.
    clips = [make_program(2.0, SAMPLE_RATE_HZ, rng) for _ in range(2)]
    source = CropSource(effect, clips, network.receptive_field, 4096, 4, seed=0, crop_gain_db=(0.0, 12.0))
    held = [CropSource(effect, clips, network.receptive_field, 4096, 8, seed=9).batch(0)]
    mrstft = MultiResolutionSTFTLoss()

    def validation(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(np.mean([mrstft(model(x, c), y).item() for x, c, y in held]))

    before = validation(network)
    # 200 steps: 100 were enough on an AMD machine, not on an Intel one (2.03 -> 1.77; 200 steps: 1.29).
    result = fit(network, source.batch, mrstft, steps=200, learning_rate=3e-3, validate=validation, validate_every=25)
    assert validation(network) < 0.8 * before and result.steps == 200
