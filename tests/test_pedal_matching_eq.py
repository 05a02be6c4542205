"""The matching equaliser measured after training (models.pedals.matching_eq) and the drive chain's use of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from models.fit import FitResult, fit
from models.networks import architecture_record, build_network
from models.pedals.drive import DriveChain, DriveConfig, first_order_highpass
from models.pedals.matching_eq import SpectrumPair, matching_magnitude, minimum_phase_fir, smoothed
from models.rates import SAMPLE_RATE_HZ

SMALL = DriveConfig(units=4, pre_taps=128, pre_sections=1, pre_fir=8, post_taps=256, post_sections=2, post_fir=16)
WITH_EQ = DriveConfig(**{**SMALL.to_dict(), "output_eq_taps": 1024, "output_eq_fft": 2048})


def _random(config: DriveConfig, seed: int = 3) -> DriveChain:
    torch.manual_seed(seed)
    model = DriveChain(config).eval()
    with torch.no_grad():
        for head in (model.pre.head, model.curve, model.post.head):
            head.weight.normal_(0.0, 0.05)
        model.curve.bias[1 + 2 * config.units :].normal_(0.0, 0.5)
    return model


def _band_levels_db(x: np.ndarray, edges_hz: list[float]) -> np.ndarray:
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / SAMPLE_RATE_HZ)
    bands = zip(edges_hz, edges_hz[1:], strict=False)
    return np.array([10 * np.log10(power[..., (freqs >= a) & (freqs < b)].sum()) for a, b in bands])


def test_minimum_phase_fir_follows_the_magnitude_with_its_energy_up_front() -> None:
    bins = np.fft.rfftfreq(4096, 1 / SAMPLE_RATE_HZ)
    magnitude = np.where(bins < 300.0, 2.0, 1.0)  # +6 dB below 300 Hz
    magnitude = np.exp(np.convolve(np.log(magnitude), np.ones(9) / 9, mode="same"))  # a smooth step
    taps = minimum_phase_fir(magnitude, 2048)
    response = np.abs(np.fft.rfft(taps, 4096 * 2))[::2]
    inside = (bins > 40) & ((bins < 200) | (bins > 500))
    np.testing.assert_allclose(20 * np.log10(response[inside]), 20 * np.log10(magnitude[inside]), atol=0.5)
    energy = np.cumsum(taps**2) / np.sum(taps**2)
    assert energy[256] > 0.9  # minimum phase: no latency, the energy in the first taps


def test_smoothing_keeps_total_power_shape_and_the_limit_holds() -> None:
    spike = np.zeros(513)
    spike[300] = 1.0
    spread = smoothed(spike, 1 / 6)  # within 1/12 octave either side of bin 300: bins 283..318
    assert spread.sum() > 30 and spread[283] == spread[318] == 1.0 and spread[270] == spread[330] == 0.0
    pair = SpectrumPair(256)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((4, 4096))
    pair.add(noise, noise * 2.0)
    assert np.allclose(matching_magnitude(pair), 2.0)
    pair = SpectrumPair(256)
    pair.add(noise * 1e-6, noise)  # the target 120 dB louder: limited
    assert np.allclose(matching_magnitude(pair, limit_db=18.0), 10 ** (18 / 20))
    with pytest.raises(ValueError, match="shape"):
        pair.add(noise[:, :1000], noise)


def test_an_equaliser_that_is_not_measured_yet_changes_nothing() -> None:
    plain, with_eq = _random(SMALL), DriveChain(WITH_EQ).eval()
    assert with_eq.takes_weights_of(plain)
    assert with_eq.receptive_field == plain.receptive_field + 1023
    x = torch.randn(2, 1, 6000) * 0.4
    control = torch.tensor([[0.2, 0.9], [0.8, 0.1]])
    with torch.no_grad():
        expected = plain(x[..., 1023:], control)
        assert torch.allclose(with_eq(x, control), expected, atol=1e-5)
    rebuilt = build_network(architecture_record(with_eq))
    assert isinstance(rebuilt, DriveChain) and rebuilt.config == WITH_EQ
    assert not DriveChain(WITH_EQ).takes_weights_of(_random(DriveConfig(units=3)))  # another architecture


def test_finish_from_measures_the_filter_training_left_out() -> None:
    """Targets are the chain's own output through a low shelf (+6 dB below 400 Hz) and a high cut: after
    finish_from the chain's long-term band levels match the targets', without knowing the filter."""
    chain = _random(WITH_EQ)
    reference = _random(SMALL)  # the same weights without an equaliser
    low_pass = signal.butter(2, 400, "lowpass", fs=SAMPLE_RATE_HZ, output="sos")
    high_pass = signal.butter(2, 4000, "highpass", fs=SAMPLE_RATE_HZ, output="sos")
    rng = np.random.default_rng(1)
    segment = 4096

    def filtered(y: np.ndarray) -> np.ndarray:  # +6 dB well below 400 Hz, -6 dB well above 4 kHz
        return (y + signal.sosfilt(low_pass, y, axis=-1) - 0.5 * signal.sosfilt(high_pass, y, axis=-1)).astype(
            np.float32
        )

    def batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(rng.standard_normal((4, 1, segment + chain.receptive_field - 1)).astype(np.float32) * 0.3)
        control = torch.from_numpy(rng.random((4, 2)).astype(np.float32))
        with torch.no_grad():
            y = reference(x[..., 1023:], control)[:, 0].numpy()
        return x, control, torch.from_numpy(filtered(y))[:, None, :]

    chain.finish_from(batch, batches=24)
    x, control, wet = batch(0)
    with torch.no_grad():
        out = chain(x, control)[:, 0].numpy()
        before = reference(x[..., 1023:], control)[:, 0].numpy()
    edges = [100, 200, 400, 800, 1600, 3200, 6400, 12800, 20000]
    target = _band_levels_db(wet[:, 0].numpy(), edges)
    assert np.max(np.abs(_band_levels_db(before, edges) - target)) > 4.0  # there was something to correct
    assert np.max(np.abs(_band_levels_db(out, edges) - target)) < 1.0


def test_stream_with_an_equaliser_equals_one_pass() -> None:
    model = _random(WITH_EQ)
    with torch.no_grad():
        model.output_eq.copy_(torch.from_numpy(minimum_phase_fir(np.linspace(2.0, 0.5, 513), 1024)).float())
    control = torch.tensor([0.6, 0.3])
    blocks = [7, 500, 1024, 3000, 64]
    x = torch.randn(2, 1, sum(blocks)) * 0.4
    with torch.no_grad():
        whole = model(torch.nn.functional.pad(x, (model.receptive_field - 1, 0)), control.expand(2, -1))
    stream = model.stream(control)
    edges = np.cumsum([0, *blocks])
    out = torch.cat([stream.process(x[..., a:b]) for a, b in zip(edges, edges[1:], strict=False)], dim=-1)
    assert torch.allclose(out, whole, atol=1e-4)


def test_the_input_high_pass_is_first_order_at_its_cutoff() -> None:
    unit = torch.zeros(1, 4096)
    unit[0, 0] = 1.0
    taps = first_order_highpass(unit, torch.tensor(np.log(90.0)))
    response = np.abs(np.fft.rfft(taps[0].numpy(), 1 << 16))
    freqs = np.fft.rfftfreq(1 << 16, 1 / SAMPLE_RATE_HZ)
    for hz, expected_db in ((90.0, -3.0), (45.0, -7.0), (1000.0, 0.0)):
        assert abs(20 * np.log10(response[np.argmin(np.abs(freqs - hz))]) - expected_db) < 0.3
    plain, with_highpass = _random(SMALL), DriveChain(DriveConfig(**{**SMALL.to_dict(), "pre_highpass": True}))
    assert with_highpass.takes_weights_of(plain) and not plain.takes_weights_of(with_highpass)


def test_a_held_high_pass_stays_where_it_starts_and_a_freed_one_learns() -> None:
    """``hold_late_parts``: while held, gradient descent leaves the input high-pass alone; freed, it moves."""
    config = DriveConfig(**{**SMALL.to_dict(), "pre_highpass": True, "settle_fraction": 0.5})
    chain = DriveChain(config)
    assert chain.settle_fraction == 0.5
    rng = np.random.default_rng(4)
    low_pass = signal.butter(1, 300, "highpass", fs=SAMPLE_RATE_HZ, output="sos")

    def batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = rng.standard_normal((4, 1, 2048 + chain.receptive_field - 1)).astype(np.float32) * 0.2
        wet = signal.sosfilt(low_pass, x, axis=-1)[..., -2048:].astype(np.float32)  # a 300 Hz high-pass
        return torch.from_numpy(x), torch.from_numpy(rng.random((4, 2)).astype(np.float32)), torch.from_numpy(wet)

    def mse(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.mean((estimate - target) ** 2)

    start = chain.pre_highpass_log_hz.detach().clone()
    chain.hold_late_parts(True)
    fit(chain, batch, mse, steps=30, learning_rate=1e-2)
    assert torch.equal(chain.pre_highpass_log_hz.detach(), start)
    chain.hold_late_parts(False)
    fit(chain, batch, mse, steps=30, learning_rate=1e-2)
    assert abs(chain.pre_highpass_log_hz.item() - start.item()) > 1e-3  # freed, gradient descent moves it


def test_two_fit_runs_join_into_one_record() -> None:
    first = FitResult(
        steps=100,
        seconds=10.0,
        best_validation=0.5,
        stopped_because="steps",
        history=[{"step": 0, "seconds": 0.0, "validation": 1.0}],
    )
    later = FitResult(
        steps=50,
        seconds=5.0,
        best_validation=0.4,
        stopped_because="time budget",
        history=[{"step": 0, "seconds": 0.0, "validation": 0.6}, {"step": 50, "seconds": 5.0, "validation": 0.4}],
    )
    joined = first.then(later)
    assert (joined.steps, joined.seconds, joined.best_validation, joined.stopped_because) == (
        150,
        15.0,
        0.4,
        "time budget",
    )
    assert [h["step"] for h in joined.history] == [0, 100, 150] and joined.history[-1]["seconds"] == 15.0
