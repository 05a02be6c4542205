"""How far back an effect looks, from one aligned dry/wet pair: ``short``, ``long`` or ``reverb``, with the evidence.

``short`` (dynamics, distortion, filters: ~0.3 s receptive field), ``long`` (delay and other echoes: ~2 s) or
``reverb`` (a dense decaying tail: the reverb network of :mod:`models.reverb_tail`, 4.5 s). Two measurements decide
between short and long, and both are reported:

- **Envelope tail**: where the dry pauses (60 dB below its loudest for at least 0.2 s), how long the wet keeps
  sounding after the dry has stopped. A compressor's or distortion's wet falls silent with the dry; a reverb's rings
  on. Needs pauses in the material.
- **Impulse response**: the effect's linear response, estimated by regularised deconvolution of the wet by the dry
  over lags of ±2 s. A reverb or delay leaves energy at positive lags (after the direct sound) well above what the
  same estimate finds at negative lags, where no causal effect can put any; what a compressor's or distortion's
  non-linearity leaves is noise on both sides alike. Reported: the *late excess* (energy at lags 20 ms..2 s over the
  energy at -2 s..-20 ms) and the *ring time* (the last lag whose 50 ms neighbourhood stands 6 dB above the
  non-causal side). Works on material without pauses (a whole song).

The choice is ``long`` when the envelope tail is longer than :data:`LONG_MEMORY_SECONDS` or the late excess is
above :data:`IR_LATE_EXCESS_DB`; it is ``reverb`` when, besides, the impulse response rings densely: at least
:data:`REVERB_DENSITY` of its 10 ms frames from the direct sound to the ring time stand 6 dB above the non-causal
side (the *ring density*). A reverb's tail fills its frames (0.33..0.97 on the set of ``benchmarks/steer_memory.py``),
a delay's echoes only a few (0.03..0.12). On the same set the late excess was -1.8..+0.1 dB for compressors,
limiters and distortions and +6..+16 dB for reverbs and delays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.errors import ReaTimbreError
from models.steer_pair import Pair

FRAME_SECONDS = 0.01  # envelope and impulse-response frame
LONG_MEMORY_SECONDS = 0.12  # the wet ringing on longer than this after the dry needs the long receptive field
IR_MAX_LAG_SECONDS = 2.0  # impulse-response lags searched either side of the direct sound
IR_MAX_PAIR_SECONDS = 120.0  # the impulse response is estimated from at most this much of the pair
IR_DIRECT_SECONDS = 0.02  # lags up to this belong to the direct sound (and a compressor's attack)
IR_RING_MARGIN_DB = 6.0  # a causal lag whose 50 ms neighbourhood is this far above the non-causal side rings
IR_SMOOTH_FRAMES = 5  # 50 ms
IR_LATE_EXCESS_DB = 3.0  # late causal energy must beat the non-causal side by this to count as memory
IR_REGULARISATION = 1e-3  # of the dry's mean power, added in the deconvolution's denominator
REVERB_DENSITY = 0.25  # a long memory whose impulse response rings in this share of its frames is a reverb
MEMORY_CHOICES = ("short", "long", "reverb", "auto")


@dataclass(frozen=True)
class ImpulseEvidence:
    """What the estimated impulse response says about the effect's memory."""

    ring_seconds: float  # last lag past the direct sound still IR_RING_MARGIN_DB above the non-causal side
    late_excess_db: float  # causal energy past the direct sound over the non-causal energy at the same lags
    late_share: float  # causal energy past the direct sound, as a share of all causal energy
    ring_density: float = 0.0  # share of the 10 ms frames from the direct sound to the ring time that ring

    @property
    def rings(self) -> bool:
        return self.late_excess_db > IR_LATE_EXCESS_DB


@dataclass(frozen=True)
class MemoryChoice:
    """Which receptive field the model gets, and the evidence it was chosen on."""

    memory: str  # "short", "long" or "reverb"
    tail_seconds: float | None  # how long the wet rings on (envelope tail, else the impulse response's ring time)
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)  # the measurements, for the sidecar


def _frame_db(audio: np.ndarray, frame: int) -> np.ndarray:
    """Level in dBFS of consecutive frames of a mono signal."""
    frames = audio[: audio.size // frame * frame].reshape(-1, frame).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-14)


def _pauses(quiet: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """Runs of True at least ``min_frames`` long, as (start, end) frame indices."""
    padded = np.concatenate([[False], quiet, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True) if e - s >= min_frames]


def _frames_above(levels: np.ndarray, threshold: float) -> int:
    """Frames until ``levels`` is below ``threshold`` for good (0 if it never reaches it)."""
    above = np.flatnonzero(levels >= threshold)
    return int(above[-1]) + 1 if above.size else 0


def measure_tail(pair: Pair) -> tuple[float | None, int]:
    """How long the wet keeps sounding after the dry stops (seconds; None if the dry never pauses), and pauses used.

    A pause is a stretch of at least 0.2 s where the dry is 60 dB below its loudest. From the level of each signal
    just before the pause, the time until it has fallen 30 dB (or to 6 dB above its noise floor) for good is
    measured; the wet's extra time over the dry's is that pause's tail, so a compressor (whose wet follows the dry
    down) gives ~0 and a reverb its decay time, at most the pause's length. The result is the median over pauses.
    """
    frame = int(FRAME_SECONDS * pair.sample_rate)
    dry_db = _frame_db(pair.dry.mean(axis=0), frame)
    wet_db = _frame_db(pair.wet.mean(axis=0), frame)
    dry_floor = max(float(np.percentile(dry_db, 1)), float(dry_db.max()) - 100.0)
    wet_floor = max(float(np.percentile(wet_db, 1)), float(wet_db.max()) - 100.0)
    before = 5  # frames just before a pause that give each signal's reference level
    tails = []
    for start, end in _pauses(dry_db < dry_db.max() - 60.0, int(0.2 / FRAME_SECONDS)):
        if start < before:
            continue
        dry_threshold = max(dry_db[start - before : start].max() - 30.0, dry_floor + 6.0)
        wet_threshold = max(wet_db[start - before : start].max() - 30.0, wet_floor + 6.0)
        tail_frames = _frames_above(wet_db[start:end], wet_threshold) - _frames_above(dry_db[start:end], dry_threshold)
        tails.append(max(0, tail_frames) * FRAME_SECONDS)
    return (float(np.median(tails)) if tails else None), len(tails)


def _frame_power(response: np.ndarray, frame: int) -> np.ndarray:
    return np.mean(response[: response.size // frame * frame].reshape(-1, frame) ** 2, axis=1)


def estimate_response(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """The pair's linear impulse response over lags 0..2 s (causal) and -1..-2 s (anticausal, index k is lag
    -(k + 1)), by regularised deconvolution of the (channel-averaged) wet by the dry."""
    rate = pair.sample_rate
    count = min(pair.dry.shape[1], int(IR_MAX_PAIR_SECONDS * rate))
    dry = pair.dry[:, :count].mean(axis=0).astype(np.float64)
    wet = pair.wet[:, :count].mean(axis=0).astype(np.float64)
    max_lag = min(int(IR_MAX_LAG_SECONDS * rate), count // 2)
    size = 1 << int(count + max_lag).bit_length()
    dry_spec = np.fft.rfft(dry, size)
    power = np.abs(dry_spec) ** 2
    response = np.fft.irfft(np.fft.rfft(wet, size) * np.conj(dry_spec) / (power + IR_REGULARISATION * power.mean()))
    return response[:max_lag], response[size - max_lag :][::-1]


def estimate_response_outside(pair: Pair, hidden: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`estimate_response` of the pair with the sample ranges ``hidden`` (e.g. the validation and held-out
    parts) silenced in both the dry and the wet, so that nothing there is seen."""
    dry, wet = pair.dry.copy(), pair.wet.copy()
    for first, last in hidden:
        dry[:, first:last] = 0.0
        wet[:, first:last] = 0.0
    return estimate_response(replace(pair, dry=dry, wet=wet))


def impulse_evidence(pair: Pair) -> ImpulseEvidence:
    """Estimate the pair's impulse response over ±2 s and measure how long its causal side rings."""
    rate = pair.sample_rate
    causal, anticausal = estimate_response(pair)
    frame = int(FRAME_SECONDS * rate)
    causal_power, anticausal_power = _frame_power(causal, frame), _frame_power(anticausal, frame)
    direct = max(1, int(round(IR_DIRECT_SECONDS / FRAME_SECONDS)))
    floor = float(np.mean(anticausal_power[direct:])) + 1e-30
    kernel = np.ones(IR_SMOOTH_FRAMES) / IR_SMOOTH_FRAMES
    reference = np.maximum(np.convolve(anticausal_power, kernel, mode="same"), floor)
    smoothed = np.convolve(np.concatenate([np.zeros(direct), causal_power[direct:]]), kernel, mode="same")
    ringing = np.flatnonzero(smoothed[direct:] > reference[direct:] * 10 ** (IR_RING_MARGIN_DB / 10))
    ring_seconds = (int(ringing[-1]) + direct + 1) * FRAME_SECONDS if ringing.size else 0.0
    late = float(np.sum(causal_power[direct:]))
    late_excess_db = 10 * np.log10((late + 1e-30) / (float(np.sum(anticausal_power[direct:])) + 1e-30))
    late_share = late / (float(np.sum(causal_power)) + 1e-30)
    ring_end = direct + (int(ringing[-1]) + 1 if ringing.size else 0)
    span = slice(direct, ring_end)
    rings = causal_power[span] > reference[span] * 10 ** (IR_RING_MARGIN_DB / 10)
    density = float(np.mean(rings)) if ringing.size else 0.0
    return ImpulseEvidence(
        round(ring_seconds, 3), round(float(late_excess_db), 2), round(late_share, 4), round(density, 3)
    )


def choose_memory(pair: Pair, memory: str = "auto") -> MemoryChoice:
    """``short``, ``long`` or ``reverb``: as asked, or for ``auto`` from the envelope tail and the impulse response."""
    if memory not in MEMORY_CHOICES:
        raise ReaTimbreError(f"memory must be short, long, reverb or auto, got {memory!r}")
    tail, pauses = measure_tail(pair)
    impulse = impulse_evidence(pair)
    evidence: dict[str, Any] = {
        "envelope_tail_seconds": tail,
        "pauses": pauses,
        "impulse_ring_seconds": impulse.ring_seconds,
        "impulse_late_excess_db": impulse.late_excess_db,
        "impulse_late_share": impulse.late_share,
        "impulse_ring_density": impulse.ring_density,
        "long_above_seconds": LONG_MEMORY_SECONDS,
    }
    envelope_text = (
        f"the wet rings on {tail:.2f} s after the dry stops ({pauses} pauses)"
        if tail is not None
        else "the dry never pauses for 0.2 s, so no envelope tail"
    )
    impulse_text = (
        f"impulse response rings {impulse.ring_seconds:.2f} s (in {impulse.ring_density:.0%} of its frames), "
        f"late energy {impulse.late_excess_db:+.1f} dB over the non-causal side"
    )
    evidence_text = f"{envelope_text}; {impulse_text}"
    decay = tail if tail is not None and (tail > LONG_MEMORY_SECONDS or not impulse.rings) else impulse.ring_seconds
    if memory != "auto":
        return MemoryChoice(memory, decay, f"memory {memory} as asked ({evidence_text})", evidence)
    envelope_long = tail is not None and tail > LONG_MEMORY_SECONDS
    if envelope_long or impulse.rings:
        evidence["decided_by"] = "envelope tail" if envelope_long else "impulse response"
        if impulse.ring_density >= REVERB_DENSITY:
            evidence["decided_by"] += f" and ring density (>= {REVERB_DENSITY:g}: a dense tail)"
            return MemoryChoice("reverb", decay, f"memory auto -> reverb: {evidence_text}", evidence)
        return MemoryChoice("long", decay, f"memory auto -> long: {evidence_text}", evidence)
    evidence["decided_by"] = "both" if tail is not None else "impulse response"
    return MemoryChoice(
        "short",
        decay,
        f"memory auto -> short: {evidence_text} (long needs a tail above {LONG_MEMORY_SECONDS:g} s or late "
        f"energy above {IR_LATE_EXCESS_DB:+g} dB)",
        evidence,
    )
