"""The impulse-response teacher of the reverb network (models.reverb_fit): its decay-curve distance and its draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.effects import reference_effect
from models.reverb_fit import RANGE_DB, DecayCurveLoss, ResponseSource, ResponseView
from models.reverb_tail import ReverbTail, ReverbTailConfig

CONFIG = ReverbTailConfig(tail_seconds=1.2, early_taps=512, bands=6, partition=256, fade_samples=128)
RATE = CONFIG.sample_rate


def _decaying_noise(t60_seconds: float, seed: int = 0, length: int = CONFIG.tail_length) -> torch.Tensor:
    """(1, length): white noise whose energy falls 60 dB per ``t60_seconds``."""
    times = np.arange(length) / RATE
    noise = np.random.default_rng(seed).standard_normal(length) * np.exp(-math.log(1000.0) * times / t60_seconds)
    return torch.from_numpy(noise[None, :].astype(np.float32))


def test_equal_responses_are_at_distance_zero_and_a_gain_is_its_decibels() -> None:
    loss = DecayCurveLoss(CONFIG, CONFIG.tail_length, early_weight=0.0, level_weight=1.0)
    response = _decaying_noise(0.5)
    assert float(loss(response, response)) == pytest.approx(0.0, abs=1e-6)
    # twice the amplitude: every curve 6.02 dB up, counted once over the frames and once more for the level
    assert float(loss(2 * response, response)) == pytest.approx(2 * 20 * math.log10(2), rel=1e-3)


def test_a_faster_decay_is_further_than_another_noise_of_the_same_decay() -> None:
    loss = DecayCurveLoss(CONFIG, CONFIG.tail_length, early_weight=0.0)
    real = _decaying_noise(0.8, seed=1)
    same = float(loss(_decaying_noise(0.8, seed=2), real))
    faster = float(loss(_decaying_noise(0.4, seed=2), real))
    assert 4 * same < faster  # dB: another noise of the same decay differs by chance only; half the T60 by far more
    curves = loss.curves_db(real)
    assert curves.shape == (1, CONFIG.bands + 1, CONFIG.tail_length // loss.frame)
    assert torch.all(curves[..., 1:] <= curves[..., :-1] + 1e-4)  # backward integrals only fall
    assert float(curves[0, -1, 0] - curves[0, -1, -1]) > RANGE_DB  # so the comparison ends inside the window


def test_the_early_part_is_compared_as_a_waveform() -> None:
    loss = DecayCurveLoss(CONFIG, CONFIG.tail_length, early_weight=1.0)
    real = _decaying_noise(0.5)
    flipped = -real  # the same energies everywhere, the early waveform inverted
    assert float(loss.decay_distance_db(flipped, real)) == pytest.approx(0.0, abs=1e-4)
    silence = torch.zeros_like(real)
    early_share = float(loss.early_error(silence, real))  # each band's share of its energy in the early part
    assert 0.1 < early_share < 0.9
    assert float(loss.early_error(flipped, real)) == pytest.approx(4.0 * early_share, rel=1e-4)
    assert float(loss(flipped, real)) == pytest.approx(4.0 * early_share, rel=1e-3)
    silent_start = real.clone()
    silent_start[:, : CONFIG.early_taps] = 0.0  # a fully wet hall's first echoes come late: no division by zero
    assert np.isfinite(float(loss.early_error(real, silent_start)))


def test_the_early_part_of_a_quiet_band_counts_as_much_as_a_loud_one() -> None:
    loss = DecayCurveLoss(CONFIG, CONFIG.tail_length, early_weight=1.0)
    real = _decaying_noise(0.5)
    signals = loss.signals(real)[0]
    quiet_band, loud_band = (int(torch.argmin(torch.sum(signals[:-1] ** 2, -1))), 3)
    errors = []
    for band in (quiet_band, loud_band):
        wrong = real - 0.5 * signals[band][None, :]  # half of one band's waveform missing
        errors.append(float(loss.early_error(wrong, real) - loss.early_error(real, real)))
    energies = torch.sum(signals[[quiet_band, loud_band]] ** 2, -1)
    ratio = float(energies[0] / energies[1])
    assert ratio < 0.1
    # the same waveform error counts as a share of its band's energy, not only of the whole response's
    assert errors[0] > 3 * ratio * errors[1] > 0


def test_the_source_renders_the_real_effects_response_at_its_draws() -> None:
    effect = reference_effect("reverb")
    source = ResponseSource(effect, CONFIG.tail_length, RATE, seed=3, edge_share=0.5)
    positions, responses = source.batch(64)
    assert positions.shape == (64, 2) and responses.shape == (64, CONFIG.tail_length)
    assert torch.all((positions >= 0) & (positions <= 1))
    share_at_ends = float(((positions == 0) | (positions == 1)).float().mean())
    assert 0.35 < share_at_ends < 0.65
    # the response to a unit impulse: the dry path (1 - mix) at lag 0, the wet path after it
    click = np.zeros((1, CONFIG.tail_length), np.float32)
    click[0, 0] = 1.0
    values = {k.name: k.value_at(float(p)) for k, p in zip(effect.knobs, positions[0], strict=True)}
    expected = effect.process(click, RATE, values)[0]
    np.testing.assert_allclose(responses[0].numpy(), expected, atol=1e-5)
    assert float(torch.max(torch.abs(responses[:, 1:1000]))) < 1e-6  # the dry sample, then silence until the echoes


def test_the_view_gives_the_networks_response_to_an_impulse() -> None:
    network = ReverbTail(CONFIG).eval()
    source = ResponseSource(reference_effect("reverb"), CONFIG.tail_length, RATE, seed=0)
    x, cond, target = source.next_batch(3)(0)
    assert x.shape == (3, 1, 0) and target.shape == (3, 1, CONFIG.tail_length)
    with torch.no_grad():
        seen = ResponseView(network)(x, cond)
        click = torch.zeros(3, 1, 2 * CONFIG.tail_length - 1)
        click[..., CONFIG.tail_length - 1] = 1.0
        rendered = network(click, cond)
    assert seen.shape == (3, 1, CONFIG.tail_length)
    torch.testing.assert_close(seen, rendered, atol=1e-5, rtol=0)
