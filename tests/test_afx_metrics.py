"""The afx metrics on hand-made cases: identical signals score 0, known differences score what they must."""

import numpy as np
import pytest
from scipy import signal

from models.afx.metrics import (
    METRICS,
    logpower_mse,
    mae,
    mfcc_cosine,
    mrstft,
    ms_mse,
    ratio_to_dry,
    report,
    t60_error,
    t60_seconds,
)

RATE = 16_000


def _noise(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.1


@pytest.mark.parametrize("name", list(METRICS))
def test_identical_signals_score_zero_and_a_gain_changes_only_unnormalised_ones(name: str) -> None:
    x = _noise()
    assert METRICS[name](x, x, RATE) == pytest.approx(0.0, abs=1e-9)
    other = signal.lfilter([1.0], [1.0, -0.95], _noise(seed=1)) * np.linspace(0, 1, len(x))  # darker, fading in
    different = METRICS[name](x, other, RATE)
    assert different > 1e-3
    scaled = METRICS[name](x, 3 * x, RATE)
    if name in ("mae", "mfcc_cosine"):  # energy-normalised: a gain is no difference
        assert scaled == pytest.approx(0.0, abs=1e-6)
    else:
        assert scaled > 1e-3


def test_energy_normalised_mae_of_a_sign_flip() -> None:
    x = np.tile([1.0, -1.0], 1000)
    assert mae(x, -x) == pytest.approx(2.0)  # unit RMS already; |1 - (-1)| = 2 everywhere


def test_logpower_mse_of_a_gain_is_its_squared_decibels() -> None:
    x = _noise()
    assert logpower_mse(x, 10 ** (6 / 20) * x) == pytest.approx(36.0, rel=1e-3)  # every bin 6 dB up


def test_mfcc_cosine_sees_a_change_of_timbre() -> None:
    x = _noise()
    t = np.arange(len(x)) / RATE
    tone = np.sin(2 * np.pi * 220 * t)
    assert mfcc_cosine(tone, tone + 0.001 * x) < mfcc_cosine(tone, x)


def test_ms_mse_sees_a_tremolo_that_spectra_barely_show() -> None:
    x = _noise(4.0)
    t = np.arange(len(x)) / RATE
    tremolo = x * (1 - 0.8 * 0.5 * (1 + np.sin(2 * np.pi * 5 * t)))
    slower = x * (1 - 0.8 * 0.5 * (1 + np.sin(2 * np.pi * 4.5 * t)))
    assert ms_mse(tremolo, slower) < ms_mse(tremolo, x)
    assert ms_mse(tremolo, tremolo) == 0.0


def test_mrstft_is_spectral_convergence_plus_log_distance() -> None:
    x = _noise()
    # half the level: convergence 0.5 and |log10 0.5| = 0.301 at every bin, at every resolution
    assert mrstft(x, 0.5 * x) == pytest.approx(0.5 + np.log10(2), rel=1e-3)


def test_t60_of_an_exponential_decay() -> None:
    for t60 in (0.3, 1.2):
        n = int(2.5 * t60 * RATE)
        response = np.random.default_rng(0).standard_normal(n) * 10 ** (-3 * np.arange(n) / RATE / t60)
        assert t60_seconds(response, RATE) == pytest.approx(t60, rel=0.05)
    impulse = np.zeros(RATE)
    impulse[0] = 1.0
    assert t60_seconds(impulse, RATE) < 1e-3  # all its energy at once
    assert t60_seconds(np.zeros(100), RATE) == 0.0
    n = RATE
    decays = [np.random.default_rng(1).standard_normal(n) * 10 ** (-3 * np.arange(n) / RATE / t) for t in (0.4, 0.3)]
    assert t60_error(decays[0], decays[1]) == pytest.approx(0.1, abs=0.02)


def test_ratio_to_dry() -> None:
    x = _noise()
    target = 2 * x
    assert ratio_to_dry(logpower_mse, target, target, x, RATE) == 0.0
    assert ratio_to_dry(logpower_mse, target, x, x, RATE) == 1.0
    assert ratio_to_dry(logpower_mse, target, 1.5 * x, x, RATE) < 1.0
    assert ratio_to_dry(mae, x, 2 * x, x, RATE) == 1.0  # both 0: the model is as good as dry
    rows = report(target, 1.5 * x, x, RATE)
    assert set(rows) == set(METRICS) and rows["logpower_mse"]["ratio"] < 1.0
    with pytest.raises(ValueError, match="one length"):
        mae(x, x[:-1])


def test_a_modulation_spectrum_met_again_is_the_same_and_not_analysed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.afx import metrics

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(8000), rng.standard_normal(8000)
    first = metrics.modulation_spectrum(x, 16_000)
    analysed: list[int] = []
    original = metrics._modulation_spectrum
    monkeypatch.setattr(metrics, "_modulation_spectrum", lambda s, r: analysed.append(len(s)) or original(s, r))
    again = metrics.modulation_spectrum(x.copy(), 16_000)
    other = metrics.modulation_spectrum(y, 16_000)
    assert analysed == [8000] and again is first and not first.flags.writeable
    assert not np.allclose(other, first)
