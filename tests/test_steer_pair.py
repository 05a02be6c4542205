"""Pair handling for steering: offsets, rates, channels, lengths, refusals, and the memory decision."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.steer_memory import choose_memory
from models.steer_pair import find_latency, prepare_pair

SR = SAMPLE_RATE_HZ


def bursts(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """Noise bursts and tones with exact-silence pauses of 0.4 s between them."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR), np.float32)
    position = 0
    while position < out.size:
        n = int(rng.uniform(0.2, 0.5) * SR)
        t = np.arange(n) / SR
        event = 0.5 * rng.standard_normal(n) * np.exp(-t * 8) + 0.3 * np.sin(2 * np.pi * rng.uniform(100, 900) * t)
        event *= 10 ** (rng.uniform(-30, -3) / 20) * np.hanning(n)
        end = min(out.size, position + n)
        out[position:end] = event[: end - position]
        position = end + int(0.4 * SR)
    return out


def saturate(dry: np.ndarray) -> np.ndarray:
    """A memoryless effect (soft clipper)."""
    return np.tanh(4 * dry).astype(np.float32)


def reverberate(dry: np.ndarray, t60_seconds: float = 1.2, seed: int = 1) -> np.ndarray:
    """A reverb: dry plus dry convolved with exponentially decaying noise, with its tail."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.5 * t60_seconds * SR)) / SR
    response = rng.standard_normal(t.size) * 10 ** (-3 * t / t60_seconds) * 0.02
    return (np.pad(dry, (0, t.size - 1)) + signal.fftconvolve(dry, response)).astype(np.float32)


def delayed(wet: np.ndarray, samples: int) -> np.ndarray:
    return np.concatenate([np.zeros(samples, np.float32), wet]) if samples >= 0 else wet[-samples:]


@pytest.mark.parametrize("latency", [0, 37, 441, 2000, -120])
def test_constant_offset_is_found_removed_and_reported(latency: int) -> None:
    dry = bursts()
    pair = prepare_pair(dry, delayed(saturate(dry), latency), SR)
    assert pair.latency_samples == latency
    assert pair.correlation > 0.5
    aligned = min(pair.dry.shape[1], pair.wet.shape[1])
    np.testing.assert_allclose(pair.wet[0, :aligned], saturate(pair.dry[0, :aligned]), atol=1e-6)
    if latency:
        assert any(f"({abs(latency)} samples)" in note and "offset removed" in note for note in pair.notes)


def test_reverb_with_direct_sound_is_not_mistaken_for_latency() -> None:
    dry = bursts()
    pair = prepare_pair(dry, delayed(reverberate(dry), 300), SR)
    assert pair.latency_samples == 300


def test_keep_latency_leaves_the_offset_in_place() -> None:
    dry = bursts()
    pair = prepare_pair(dry, delayed(saturate(dry), 441), SR, keep_latency=True)
    assert pair.latency_samples == 0
    assert pair.wet[0, 441:1000].tolist() == saturate(dry)[: 1000 - 441].tolist()
    assert any("kept as asked" in note for note in pair.notes)


def test_other_rates_and_channel_counts_are_brought_to_the_model() -> None:
    import soxr

    dry = bursts()
    wet = saturate(dry)
    wet_48k = soxr.resample(wet, SR, 48_000).astype(np.float32)
    stereo_wet = np.stack([wet_48k, 0.5 * wet_48k])

    pair = _pair_from_files(dry, SR, stereo_wet, 48_000)
    assert pair.sample_rate == SR and pair.dry.shape[0] == 1 and pair.wet.shape[0] == 1
    assert abs(pair.latency_samples) <= 1
    assert any("48000 Hz -> 44100 Hz" in note for note in pair.notes)
    assert any("mixed to mono" in note for note in pair.notes)


def _pair_from_files(dry: np.ndarray, dry_rate: int, wet: np.ndarray, wet_rate: int):
    import tempfile
    from pathlib import Path

    import soundfile as sf

    with tempfile.TemporaryDirectory() as folder:
        dry_path, wet_path = Path(folder) / "dry.wav", Path(folder) / "wet.flac"
        sf.write(dry_path, np.atleast_2d(dry).T, dry_rate, subtype="FLOAT")
        sf.write(wet_path, np.atleast_2d(wet).T, wet_rate)
        return prepare_pair(dry_path, wet_path)


def test_matching_channels_stay_separate_examples() -> None:
    left, right = bursts(seed=1), bursts(seed=2)
    dry = np.stack([left, right])
    pair = prepare_pair(dry, saturate(dry), SR)
    assert pair.dry.shape[0] == 2
    np.testing.assert_allclose(pair.wet, saturate(pair.dry), atol=1e-6)


def test_a_longer_wet_keeps_its_tail_and_a_longer_dry_is_cut() -> None:
    dry = bursts()
    pair = prepare_pair(dry, reverberate(dry), SR)
    assert pair.dry.shape == pair.wet.shape and pair.dry.shape[1] > dry.size
    assert not pair.dry[0, dry.size :].any()  # silence fed while the tail rings
    assert any("past the dry" in note for note in pair.notes)
    cut = prepare_pair(dry, saturate(dry)[: dry.size - SR], SR)
    assert cut.dry.shape[1] == dry.size - SR


def test_silent_unrelated_and_short_pairs_are_refused() -> None:
    dry = bursts()
    with pytest.raises(ReaTimbreError, match="wet: is silent"):
        prepare_pair(dry, np.zeros_like(dry), SR)
    with pytest.raises(ReaTimbreError, match="dry: is silent"):
        prepare_pair(np.full_like(dry, 1e-5), dry, SR)
    with pytest.raises(ReaTimbreError, match="does not match"):
        prepare_pair(dry, saturate(bursts(seed=7)), SR)
    with pytest.raises(ReaTimbreError, match="at least 3 s"):
        prepare_pair(dry[: 2 * SR], saturate(dry[: 2 * SR]), SR)
    with pytest.raises(ReaTimbreError, match="NaN"):
        prepare_pair(np.where(np.arange(dry.size) == 5, np.nan, dry), dry, SR)


def test_unreadable_file_is_one_clear_error(tmp_path) -> None:
    bad = tmp_path / "dry.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(ReaTimbreError, match="not a readable audio file"):
        prepare_pair(bad, tmp_path / "missing.wav")


def test_memory_auto_tells_dynamics_from_reverb_and_echoes() -> None:
    dry = bursts()
    short = choose_memory(prepare_pair(dry, saturate(dry), SR))
    assert short.memory == "short" and "auto -> short" in short.reason
    reverb = choose_memory(prepare_pair(dry, reverberate(dry), SR))
    assert reverb.memory == "reverb" and reverb.tail_seconds > 0.2 and "auto -> reverb" in reverb.reason
    assert reverb.evidence["impulse_ring_density"] >= 0.25
    echoes = np.zeros(dry.size + SR, np.float32)  # the dry, and echoes after 250 and 500 ms
    for lag, gain in ((0, 1.0), (SR // 4, 0.5), (SR // 2, 0.25)):
        echoes[lag : lag + dry.size] += gain * dry
    long = choose_memory(prepare_pair(dry, echoes, SR))
    assert long.memory == "long" and "auto -> long" in long.reason, long.reason
    assert choose_memory(prepare_pair(dry, saturate(dry), SR), "long").memory == "long"
    with pytest.raises(ReaTimbreError, match="short, long, reverb or auto"):
        choose_memory(prepare_pair(dry, saturate(dry), SR), "medium")


def test_memory_auto_without_pauses_says_why() -> None:
    rng = np.random.default_rng(3)
    dry = (0.1 * rng.standard_normal(4 * SR)).astype(np.float32)
    choice = choose_memory(prepare_pair(dry, saturate(dry), SR))
    assert choice.memory == "short" and "never pauses" in choice.reason


def test_find_latency_on_pure_delay() -> None:
    dry = bursts(seconds=4.0)
    lag, correlation = find_latency(dry, delayed(dry, 123)[: dry.size], SR // 10)
    assert lag == 123 and correlation > 0.9


def test_the_impulse_response_estimate_recovers_a_reverbs_decay_from_the_training_part_only() -> None:
    """On an LTI reverb (direct sound, an early echo, a 0.8 s exponential tail), the response estimated from the
    pair with its held-out part silenced has the reverb's early waveform and decay, whatever the wet holds there."""
    from models.evaluation import t60_estimate
    from models.steer_memory import estimate_response_outside

    rng = np.random.default_rng(11)
    t = np.arange(int(1.6 * SR)) / SR
    response = 0.03 * rng.standard_normal(t.size) * np.exp(-np.log(1000) * t / 0.8)
    response[: int(0.005 * SR)] = 0.0
    response[0], response[int(0.013 * SR)] = 0.6, 0.25
    dry = bursts(seconds=14.0, seed=3)
    wet = signal.fftconvolve(dry, response)[: dry.size].astype(np.float32)
    heldout = (int(11.5 * SR), dry.size)
    spoiled = wet.copy()
    spoiled[heldout[0] :] = wet[heldout[0] :][::-1]  # nothing of the held-out part may count
    estimates = [
        estimate_response_outside(prepare_pair(dry, w, SR, keep_latency=True), [heldout])[0] for w in (wet, spoiled)
    ]
    np.testing.assert_allclose(estimates[0], estimates[1], atol=1e-12)
    causal = estimates[0]
    early = int(0.5 * SR)  # the early half second as a waveform
    error = np.sum((causal[:early] - response[:early]) ** 2) / np.sum(response[:early] ** 2)
    assert error < 0.05, error
    assert t60_estimate(causal[: t.size], SR).seconds == pytest.approx(0.8, rel=0.1)
