"""The gray-box chorus and echo measure their start on the training pairs (the chorus's sweep lines up with the real
chorus's measured sweep, the echo's echoes land at the real echo times), and a short training run from there lowers
the loss (slow: each renders training crops through the real effects)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.signal import hilbert

from models.effect_training import RECIPES
from models.effects import REFERENCE_EFFECTS
from models.fit import fit
from models.losses import MultiResolutionSTFTLoss
from models.material import make_program
from models.pedals.echo import EchoNetwork
from models.pedals.swept_delay import SweptDelayNetwork
from models.pedals.training import MATERIAL_KINDS, CropSource, render

SR = 44_100


def _sources(effect: str, network: torch.nn.Module, segment: int, batch: int, seconds: float = 6.0) -> CropSource:
    rng = np.random.default_rng(3)
    clips = [make_program(seconds, SR, rng, MATERIAL_KINDS) for _ in range(4)]
    rf = int(network.receptive_field)  # type: ignore[arg-type]
    return CropSource(REFERENCE_EFFECTS[effect], clips, rf, segment, batch, 5, restart=True)


class _Measured(dict):
    """Each effect's recipe network with its start measured on training crops, measured when a test first asks for
    that effect (the tests of this module may run in two processes: each measures only what its tests use). Its
    initial weights come from a fixed seed, not from whatever the process drew before."""

    def __missing__(self, effect: str) -> tuple[torch.nn.Module, CropSource]:
        torch.manual_seed(0)
        recipe = RECIPES[effect]
        network: torch.nn.Module = recipe.config.build(REFERENCE_EFFECTS[effect])  # type: ignore[union-attr]
        source = _sources(effect, network, recipe.segment_samples, 4, seconds=8.0)
        network.start_from(source.batch)  # type: ignore[operator]
        self[effect] = (network, source)
        return self[effect]


@pytest.fixture(scope="module")
def measured() -> _Measured:
    return _Measured()


def test_the_measured_sweep_lines_up_with_the_real_chorus(measured: dict) -> None:
    """The start measured on training pairs gives a delay sweep that follows the real chorus's, measured on a 3 kHz
    tone (the wet voice's phase lag gives its delay at every sample), at three rates and depths. (Gradient descent
    then refines it: the start is within a fraction of a millisecond.)"""
    chorus = REFERENCE_EFFECTS["chorus"]
    network = measured["chorus"][0]
    assert isinstance(network, SweptDelayNetwork)
    assert network.start_record is not None and network.start_record["sweep_fit_windows"] > 200
    n = 2 * SR
    tone = (0.3 * np.sin(2 * np.pi * 3000 * np.arange(n) / SR)).astype(np.float32)
    for rate, depth in ((0.3, 0.6), (1.0, 0.2), (2.7, 0.9)):
        knobs = {"rate": rate, "depth": depth, "mix": 0.9}
        wet = (chorus.process(tone[None], SR, knobs)[0] - 0.1 * tone) / 0.9  # the swept voice alone
        phase_lag = np.unwrap(np.angle(hilbert(wet))) - np.unwrap(np.angle(hilbert(tone)))
        real = (-phase_lag / (2 * np.pi * 3000))[2000:-2000] * SR  # samples, up to whole 3 kHz periods
        control = torch.tensor([[k.position(knobs[k.name]) for k in chorus.knobs]], dtype=torch.float32)
        with torch.no_grad():
            delay = network.delay_and_gains(control, 0, n)[0][0].numpy()[2000:-2000]
        period = SR / 3000
        real = real + period * np.round(np.median(delay - real) / period)  # the phase lag's whole periods
        assert np.corrcoef(delay, real)[0, 1] > 0.99
        assert np.max(np.abs(delay - real)) < 22.0  # samples: 0.5 ms, where the sweep spans 40 to 440 samples
        with torch.no_grad():  # half a cycle on: the sweep the other way round
            shifted = network.delay_and_gains(control, round(SR / rate / 2), n)[0][0].numpy()[2000:-2000]
        assert np.corrcoef(shifted, real)[0, 1] < -0.99


def test_the_echoes_land_at_the_real_echo_times(measured: dict) -> None:
    """After the start measured on training pairs, a click through the network and through the real delay gives
    echoes at the same samples (within one), at the same levels (within 10 %), at several knob settings."""
    delay = REFERENCE_EFFECTS["delay"]
    network = measured["delay"][0]
    assert isinstance(network, EchoNetwork)
    for positions in ((0.1, 0.1, 0.9), (0.5, 0.9, 0.5), (0.95, 0.5, 0.2)):
        knobs = {k.name: k.value_at(p) for k, p in zip(delay.knobs, positions, strict=True)}
        click = np.zeros(2 * SR, np.float32)
        click[100] = 1.0
        real = delay.process(click[None], SR, knobs)[0]
        ours = render(network.stream(torch.tensor(positions, dtype=torch.float32)), click, 0)
        real_echoes = np.flatnonzero(np.abs(real) > 1e-3)[1:4]
        our_echoes = np.flatnonzero(np.abs(ours) > 1e-3)[1:4]
        assert len(real_echoes) == 3 and np.all(np.abs(our_echoes - real_echoes) <= 1)
        np.testing.assert_allclose(ours[our_echoes], real[real_echoes], rtol=0.1)


@pytest.mark.parametrize("effect", ["chorus", "delay"])
def test_a_short_training_run_lowers_the_loss(effect: str, measured: dict) -> None:
    """From the measured start put off (its dry gain 0.2 too high), 30 steps of gradient descent lower the MR-STFT
    loss on held crops."""
    network, source = copy.deepcopy(measured[effect])
    with torch.no_grad():
        network.parts.affine.bias[0] += 0.2  # type: ignore[index,union-attr,operator]
    held = [source.batch(1000 + i) for i in range(2)]
    loss = MultiResolutionSTFTLoss()

    def held_loss() -> float:
        with torch.no_grad():
            return float(np.mean([loss(network(x, c), y).item() for x, c, y in held]))

    before = held_loss()
    torch.manual_seed(1)
    fit(network, source.batch, loss, steps=30, max_seconds=120, learning_rate=5e-3)
    assert held_loss() < 0.8 * before
