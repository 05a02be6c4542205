"""The octave's gray-box divider network (models.pedals.divider): its sub voice is an octave down, its flip-flop is
the one the real pedal has, it streams block by block exactly as one pass (also across a toggle at a block edge),
declares and has removed its latency, saves and loads through the library, measures its detection filter on the
training pairs, and a short training run lowers its loss."""

from __future__ import annotations

from dataclasses import replace

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
from models.pedals.divider import DividerConfig, OctaveDivider, _fresh_state, divide
from models.pedals.divider_start import measure_divider
from models.pedals.dsp import FlipFlopOctave
from models.pedals.training import MATERIAL_KINDS, CropSource, render
from models.pedals.training import build_network as build_pedal_network
from models.userdirs import user_models_dir

SR = 44_100
OCTAVE = REFERENCE_EFFECTS["octave"]


def _sounding(config: DividerConfig | None = None) -> OctaveDivider:
    """A network for the octave effect with its sub voice on (an untrained one is the dry sound)."""
    network = (config or DividerConfig(context_samples=512)).build(OCTAVE)
    c = network.config
    with torch.no_grad():
        network.head.bias[c.sub_poles : 2 * c.sub_poles] = 0.5
    return network


def _sine(frequency_hz: float, seconds: float, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * frequency_hz * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def test_the_recipe_builds_a_divider_with_the_effects_latency() -> None:
    network = build_pedal_network("ours", OCTAVE, RECIPES["octave"])
    assert isinstance(network, OctaveDivider) and network.restarts_with_render
    assert network.latency_samples == OCTAVE.latency_samples > 0
    assert network.receptive_field > network.latency_samples


def test_the_sub_voice_is_an_octave_below_a_sine() -> None:
    network = _sounding()
    with torch.no_grad():
        network.head.bias[-1] = 0.0  # no dry path: the sub voice alone
    for frequency in (110.0, 196.0, 330.0):
        sub = render(network.stream(torch.tensor([0.5, 0.5])), _sine(frequency, 1.0), network.latency_samples)
        steady = sub[SR // 10 :] * np.hanning(len(sub) - SR // 10)
        spectrum = np.abs(np.fft.rfft(steady))
        bins_hz = np.fft.rfftfreq(len(steady), 1 / SR)
        assert bins_hz[np.argmax(spectrum)] == pytest.approx(frequency / 2, abs=2.0)
        half, whole = (spectrum[np.argmin(np.abs(bins_hz - f))] for f in (frequency / 2, frequency))
        assert half > 10 * whole  # the folded sine has no fundamental left


def _reference_square(detected: np.ndarray, hysteresis: float) -> np.ndarray:
    """The real pedal's flip-flop (models.pedals.dsp.FlipFlopOctave.square) at the same threshold."""
    return FlipFlopOctave(mix=1.0, sub_lowpass_hz=500.0, hysteresis=hysteresis).square(detected)


def test_the_divider_flips_as_the_real_flip_flop_also_across_blocks() -> None:
    rng = np.random.default_rng(5)
    hysteresis = 0.05
    # a wandering signal that lingers inside the band, crosses it, and turns back inside it
    detected = np.convolve(rng.standard_normal(6000), np.ones(40) / 40, mode="same") * 1.5
    expected = _reference_square(detected, hysteresis)
    assert 20 < np.count_nonzero(np.diff(expected)) < 1000
    whole, _ = divide(torch.from_numpy(detected)[None, None], hysteresis, _fresh_state(1, torch.device("cpu")))
    np.testing.assert_array_equal(whole[0, 0].numpy(), expected)
    state, parts, start = _fresh_state(1, torch.device("cpu")), [], 0
    for size in (1, 13, 0, 977, 2, 3000, 2007):
        block = torch.from_numpy(detected[start : start + size])[None, None]
        square, state = divide(block, hysteresis, state)
        parts.append(square)
        start += size
    np.testing.assert_array_equal(torch.cat(parts, dim=-1)[0, 0].numpy(), expected)


def _blocks(network: OctaveDivider, audio: torch.Tensor, control: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    stream, parts, start = network.stream(control), [], 0
    for size in sizes:
        parts.append(stream.process(audio[..., start : start + size]))
        start += size
    return torch.cat(parts, dim=-1)


def test_streaming_equals_one_pass_across_a_toggle_at_a_block_edge() -> None:
    network = _sounding()
    control = torch.tensor([0.3, 0.8])
    audio = torch.from_numpy(np.stack([_sine(147.0, 0.3), _sine(95.0, 0.3, 0.05)]))[:, None, :]
    audio = audio + 0.02 * torch.randn(audio.shape, generator=torch.Generator().manual_seed(0))
    length, rf = audio.shape[-1], network.receptive_field
    with torch.no_grad():
        whole = network(torch.nn.functional.pad(audio, (rf - 1, 0)), control.expand(2, -1))
    # where the first channel's divider flips, from its detection filter (the stream's own state)
    stream = network.stream(control)
    stream.process(audio[:1])
    assert stream.state is not None and int(stream.state.parity[0]) in (0, 1)
    detected = np.zeros(length)
    pole = network.detect_pole
    for n, value in enumerate(audio[0, 0].double().numpy()):
        detected[n] = pole * (detected[n - 1] if n else 0.0) + (1 - pole) * value
    square, _ = divide(torch.from_numpy(detected)[None, None], network.hysteresis, _fresh_state(1, torch.device("cpu")))
    toggles = np.flatnonzero(np.diff(square[0, 0].numpy())) + 1
    assert len(toggles) > 10
    edge = int(toggles[len(toggles) // 2])
    for sizes in ([edge, length - edge], [edge - 1, 1, 0, length - edge], [1, 700, 33, 4096, length - 4830], [length]):
        torch.testing.assert_close(_blocks(network, audio, control, sizes), whole, rtol=1e-4, atol=1e-4)


def test_the_latency_is_declared_and_removed() -> None:
    """An untrained network is the dry sound delayed by the real effect's latency; a render removes that lag."""
    network = build_pedal_network("ours", OCTAVE, RECIPES["octave"])
    assert network.latency_samples == OCTAVE.latency_samples > 0
    audio = np.random.default_rng(2).standard_normal(3000).astype(np.float32) * 0.1
    raw = render(network.stream(torch.rand(2)), audio, 0)  # type: ignore[operator]
    lag = OCTAVE.latency_samples
    np.testing.assert_allclose(raw[lag:], audio[:-lag], atol=1e-6)
    np.testing.assert_allclose(render(network.stream(torch.rand(2)), audio, lag), audio, atol=1e-6)  # type: ignore[operator]


def test_it_saves_loads_and_renders_through_the_library() -> None:
    network = _sounding(DividerConfig(context_samples=512, detect_cutoff_hz=410.5, hysteresis_db=-45.0, measured=True))
    rebuilt = build_network(architecture_record(network))
    assert isinstance(rebuilt, OctaveDivider) and rebuilt.settings() == network.settings()
    sidecar = {"sample_rate": SR, "knobs": [k.to_dict() for k in OCTAVE.knobs]}
    info = save_model(network, sidecar, user_models_dir(), "pedal-OctaveDivider")
    try:
        effect = load_model(info.name)
        assert effect.latency_samples == OCTAVE.latency_samples
        audio = np.stack([_sine(110.0, 0.2), _sine(220.0, 0.2, 0.1)])
        out = effect.process(audio, {"mix": 0.7, "tone": 0.2})
        stream = network.stream(effect.control_vector({"mix": 0.7, "tone": 0.2}))
        expected = render(stream, audio[1], OCTAVE.latency_samples)  # the library lines renders up with the input
        np.testing.assert_allclose(out[1], expected, atol=1e-6)
        assert out.shape == audio.shape and np.isfinite(out).all()
    finally:
        info.weights_path.unlink()
        info.weights_path.with_suffix(".json").unlink()


def _source(seed: int, segment: int = 2048, batch: int = 4) -> CropSource:
    rng = np.random.default_rng(seed)
    clips = [make_program(3.0, SR, rng, MATERIAL_KINDS) for _ in range(3)]
    return CropSource(OCTAVE, clips, 512, segment, batch, seed, restart=True)


@pytest.mark.slow
def test_the_starting_point_measures_the_divider_and_the_sub_voice_on_training_pairs() -> None:
    """Fitted to the real effect's pairs, the measurement lands on the cutoff and the hysteresis the real divider
    listens with (neither is given to the network), and the start is far nearer the real effect than dry."""
    network = DividerConfig(context_samples=512).build(OCTAVE)
    network.start_from(_source(1).batch)
    config = network.config
    assert config.measured and config.detect_cutoff_hz == pytest.approx(400.0, rel=0.01)
    assert config.hysteresis_db == pytest.approx(-50.0, abs=3.0)
    loss = MultiResolutionSTFTLoss()
    with torch.no_grad():
        for x, c, y in [_source(3).batch(0) for _ in range(2)]:
            dry = x[..., x.shape[-1] - y.shape[-1] - OCTAVE.latency_samples : x.shape[-1] - OCTAVE.latency_samples]
            assert float(loss(network(x, c), y)) < 0.3 * float(loss(dry, y))


@pytest.mark.slow
def test_a_short_training_run_lowers_the_loss() -> None:
    """From the measured divider and an untrained sub voice (the dry sound), gradient descent learns the rest."""
    torch.manual_seed(0)
    network = DividerConfig(context_samples=512).build(OCTAVE)
    source = _source(2)
    cutoff_hz, hysteresis_db = measure_divider([source.batch(step) for step in range(2)], network.config)
    network.config = replace(network.config, detect_cutoff_hz=cutoff_hz, hysteresis_db=hysteresis_db)
    held = [_source(3).batch(0) for _ in range(2)]
    loss = MultiResolutionSTFTLoss()

    def validation(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(np.mean([loss(model(x, c), y).item() for x, c, y in held]))

    before = validation(network)
    fit(network, source.batch, loss, steps=60, learning_rate=5e-3)  # from the dry sound: faster than the recipe's
    assert validation(network) < 0.6 * before
