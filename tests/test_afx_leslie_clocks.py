"""The Leslie's rotor clocks as our LFO-told TCN reads them (``lfo-tcn``): the phases it is given are the numpy
Leslie's rotors at every speed, a crop told its place in a render gives that part of the render, and a two-clock
network streams block by block exactly as one pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import hilbert

from models.afx import leslie
from models.afx.tasks import task
from models.afx.tcn_baseline import build_lfo_tcn, build_rotors
from models.pedals.lfo_tcn import LFOTCN

SR = 16_000


def _network() -> LFOTCN:
    torch.manual_seed(0)
    network = build_lfo_tcn(task("leslie"), SR)
    torch.nn.init.normal_(network.tcn.output.weight, std=0.3)  # it starts as the dry sound: give the voices a say
    return network


def _streamed(network: torch.nn.Module, control: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x`` through ``network``'s stream in blocks of uneven sizes (1 to 4170 samples)."""
    stream = network.stream(control)  # type: ignore[operator]
    parts, start = [], 0
    for size in (1, 700, 33, 4096, 4170):
        parts.append(stream.process(x[..., start : start + size]))
        start += size
    return torch.cat(parts, dim=-1)


@pytest.mark.parametrize("speed", [0.0, 0.4, 1.0])
def test_the_clocks_are_the_rotors_of_the_numpy_leslie(speed: float) -> None:
    """The horn's loudness on a 3 kHz tone (above the crossover) follows the cosine of the horn clock's phase."""
    network = _network()
    n = 3 * SR
    control = torch.tensor([[speed]])
    phases = network.phases(control, 0, n)[0].numpy()
    horn_hz, woofer_hz = leslie.rates_hz(speed)
    expected = np.remainder(2 * np.pi * np.outer([horn_hz, woofer_hz], np.arange(n)) / SR, 2 * np.pi)
    wrapped = np.angle(np.exp(1j * (phases - expected)))
    assert np.abs(wrapped).max() < 1e-3
    tone = 0.3 * np.sin(2 * np.pi * 3000 * np.arange(n) / SR)
    envelope = np.abs(hilbert(leslie.horn(tone, SR, speed)))[1000:-1000]
    assert np.corrcoef(envelope, np.cos(phases[0])[1000:-1000])[0, 1] > 0.95
    low = 0.3 * np.sin(2 * np.pi * 100 * np.arange(n) / SR)
    envelope = np.abs(hilbert(leslie.woofer(low, SR, speed)))[2000:-2000]
    assert np.corrcoef(envelope, np.cos(phases[1])[2000:-2000])[0, 1] > 0.95


def test_a_fixed_speed_task_has_fixed_clocks() -> None:
    clocks = task("leslie-fast").clocks
    assert clocks is not None
    assert [(c["rate_min_hz"], c["rate_max_hz"]) for c in clocks()] == [(6.7, 6.7), (5.7, 5.7)]
    with pytest.raises(ValueError, match="declares no LFO clocks"):
        build_lfo_tcn(task("plate"), SR)


def test_a_crop_told_its_place_gives_that_part_of_the_render() -> None:
    network = _network()
    rf = network.receptive_field
    x = torch.randn(1, 1, 6000) * 0.3
    control = torch.tensor([[0.7]])
    with torch.no_grad():
        whole = network(torch.nn.functional.pad(x, (rf - 1, 0)), control, -(rf - 1))
        padded = torch.nn.functional.pad(x, (rf - 1, 0))
        starts = [0, 1234, 4000]
        crops = torch.cat([padded[..., s : s + rf - 1 + 1000] for s in starts])
        parts = network(crops, control.expand(3, -1), torch.tensor(starts) - (rf - 1))
    for row, start in enumerate(starts):
        torch.testing.assert_close(parts[row, 0], whole[0, 0, start : start + 1000], rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # told the wrong place, the modulation is elsewhere
        wrong = network(crops[1:2], control, torch.tensor([0]))
    assert not torch.allclose(wrong[0, 0], whole[0, 0, 1234:2234], atol=1e-3)


def test_a_two_clock_network_streams_as_one_pass() -> None:
    network = _network()
    x = torch.randn(2, 1, 9000) * 0.3
    control = torch.tensor([0.3])
    rf = network.receptive_field
    with torch.no_grad():
        whole = network(torch.nn.functional.pad(x, (rf - 1, 0)), control.expand(2, -1), -(rf - 1))
    torch.testing.assert_close(_streamed(network, control, x), whole, rtol=1e-4, atol=1e-5)
    assert math.isclose(network.rate_hz(control[None]).item(), leslie.rates_hz(0.3)[0], rel_tol=1e-6)


def test_the_rotor_network_streams_as_one_pass_and_starts_as_the_delayed_dry_sound() -> None:
    torch.manual_seed(0)
    network = build_rotors(task("leslie"), 1, SR)
    x = torch.randn(2, 1, 9000) * 0.3
    control = torch.tensor([0.6])
    rf = network.receptive_field
    with torch.no_grad():
        whole = network(torch.nn.functional.pad(x, (rf - 1, 0)), control.expand(2, -1), -(rf - 1))
        delay = int(network.start_delay)
        torch.testing.assert_close(whole[..., delay:], x[..., : x.shape[-1] - delay])
        for p in network.parameters():  # away from the start: every rotor swept
            p.add_(0.05 * torch.randn_like(p))
        whole = network(torch.nn.functional.pad(x, (rf - 1, 0)), control.expand(2, -1), -(rf - 1))
        padded = torch.nn.functional.pad(x, (rf - 1, 0))
        crop = network(padded[..., 3000 : 3000 + rf - 1 + 500], control.expand(2, -1), 3000 - (rf - 1))
    torch.testing.assert_close(crop, whole[..., 3000:3500], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(_streamed(network, control, x), whole, rtol=1e-4, atol=1e-5)
