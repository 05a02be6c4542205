"""Any audio as a coach target: one note-length clip at the coach's rate.

The coach compares 1.01 s clips (:data:`~models.synth.features.CLIP_SAMPLES` at 44.1 kHz). A target file may
have any rate, channel count and length: it is resampled (soxr, high quality) to 44.1 kHz, mixed to stereo
(mono is duplicated; more channels are averaged into both), cut from ``start_seconds`` and zero-padded when
shorter than a clip. Levels are kept as they are (SerumRNN's features are not normalised either).

:func:`prepare_target` also finds the note (:mod:`models.pitch`): unless given, the clip starts at the main
note's onset and the patch plays the note heard in the target. A silent target is refused; an unpitched (noise,
drums) or polyphonic (a chord) one gets a message saying so and the patch plays :data:`DEFAULT_NOTE` (C3, the
note the coach was trained on), since the coach matches a timbre either way and a producer can still name the
note with ``--note``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models.errors import ReaTimbreError
from models.pitch import NoteEstimate, find_note, note_name
from models.rates import SAMPLE_RATE_HZ
from models.resample import resample
from models.synth.base import Synth
from models.synth.features import CLIP_SAMPLES

SILENCE_PEAK = 1e-4  # about -80 dBFS: below this a target has nothing to match
DEFAULT_NOTE = 48  # C3, the note the coach's training targets were played at
PROBE_LOWEST_NOTE = 48  # the start patch's pitch is checked at the heard note, moved up by octaves to at least this


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """(channels, frames) or (frames,) → (2, frames) float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise ReaTimbreError(f"target audio must be (channels, frames), got shape {audio.shape}")
    if audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    if audio.shape[0] == 2:
        return audio
    return np.repeat(audio.mean(axis=0, keepdims=True), 2, axis=0)


def target_clip(audio: np.ndarray, sample_rate_hz: int, start_seconds: float = 0.0) -> np.ndarray:
    """The (2, CLIP_SAMPLES) clip of ``audio`` starting at ``start_seconds``, at 44.1 kHz."""
    if sample_rate_hz <= 0:
        raise ReaTimbreError(f"target sample rate must be positive, got {sample_rate_hz}")
    if not np.isfinite(start_seconds) or start_seconds < 0:
        raise ReaTimbreError(f"--start must be 0 or more seconds, got {start_seconds}")
    stereo = to_stereo(audio)
    if not np.isfinite(stereo).all():
        raise ReaTimbreError("target audio holds NaN or infinite samples")
    duration_seconds = stereo.shape[1] / sample_rate_hz
    if start_seconds >= duration_seconds:
        raise ReaTimbreError(f"--start {start_seconds:g} s is past the end of the target ({duration_seconds:.3f} s)")
    first = int(round(start_seconds * sample_rate_hz))
    needed = int(np.ceil(CLIP_SAMPLES * sample_rate_hz / SAMPLE_RATE_HZ)) + 64
    piece = stereo[:, first : first + needed]
    piece = resample(piece, sample_rate_hz, SAMPLE_RATE_HZ)
    clip = np.zeros((2, CLIP_SAMPLES), dtype=np.float32)
    n = min(CLIP_SAMPLES, piece.shape[1])
    clip[:, :n] = piece[:, :n]
    if np.abs(clip).max() < SILENCE_PEAK:
        raise ReaTimbreError(f"the target is silent from {start_seconds:g} s on; pick the note with --start")
    return clip


@dataclass(frozen=True)
class TargetNote:
    """A target ready to coach: its clip, the note the patch plays, where the clip starts, and what was heard."""

    clip: np.ndarray
    note: int
    start_seconds: float
    estimate: NoteEstimate | None  # None when both note and start were given
    message: str
    note_given: bool = False  # the note came from --note (or a caller such as match): never moved

    def to_json(self) -> dict:
        heard = self.estimate
        return {
            "note": self.note,
            "note_name": note_name(self.note),
            "start_seconds": round(self.start_seconds, 4),
            "heard": None
            if heard is None
            else {
                "kind": heard.kind,
                "midi": heard.midi,
                "name": heard.name if heard.midi is not None else None,
                "confidence": heard.confidence,
                "onset_seconds": round(heard.onset_seconds, 4),
            },
            "message": self.message,
        }


def _heard_text(estimate: NoteEstimate) -> str:
    if estimate.kind == "pitched":
        return f"heard {estimate.name} (MIDI {estimate.midi}), confidence {estimate.confidence:.2f}"
    if estimate.kind == "polyphonic":
        return f"the target sounds like a chord or several notes (confidence {estimate.confidence:.2f})"
    return (
        f"the target has no clear pitch (noise-like; {100 * estimate.voiced_share:.0f} % of its frames voiced, "
        f"confidence {estimate.confidence:.2f})"
    )


def prepare_target(
    audio: np.ndarray, sample_rate_hz: int, start_seconds: float | None = None, note: int | None = None
) -> TargetNote:
    """The clip and note to coach towards; ``start_seconds`` and ``note`` override what is found in the audio."""
    if note is not None and not 0 <= note <= 127:
        raise ReaTimbreError(f"--note must be a MIDI note 0..127, got {note}")
    given = note is not None
    estimate = None
    if note is None or start_seconds is None:
        estimate = find_note(audio, sample_rate_hz)
        if estimate.kind == "silent":
            raise ReaTimbreError("the target is silent (peak below -80 dBFS): there is no sound to coach towards")
    start = start_seconds if start_seconds is not None else estimate.onset_seconds if estimate else 0.0
    where = f"from {start:.3f} s" + (" (the main note's onset)" if start_seconds is None else "")
    if note is not None:
        message = f"note {note_name(note)} (MIDI {note}) as given with --note; target {where}"
        if estimate is not None:
            message += f"; {_heard_text(estimate)}"
    elif estimate is not None and estimate.kind == "pitched" and estimate.midi is not None:
        note = estimate.midi
        message = f"note: {_heard_text(estimate)}; target {where} (--note overrides)"
    else:
        assert estimate is not None
        note = DEFAULT_NOTE
        message = (
            f"note: {_heard_text(estimate)}, so the patch plays the default {note_name(note)} (MIDI {note}); "
            f"give --note to choose the note; target {where}"
        )
    return TargetNote(target_clip(audio, sample_rate_hz, start), note, start, estimate, message, given)


def match_patch_note(prepared: TargetNote, synth: Synth) -> TargetNote:
    """The note the start patch must play to sound at the heard pitch (a patch may sound an octave off its note).

    Only when the note was heard (not given, even when the given note is the heard one, and not the default):
    the patch plays the heard note once (moved up by octaves to C3 or above, so a patch sounding an octave down
    stays in the tracker's range), and if it is heard at another pitch (an oscillator an octave down, a fifths
    stack heard at its implied root), the note moves by that offset. A given note is what the patch plays:
    ``reatimbre match --then-coach`` gives the note its patch was matched at, where a fifths stack the tracker
    hears an octave low is still the closest render.
    """
    heard = prepared.estimate
    if prepared.note_given or heard is None or heard.kind != "pitched" or heard.midi is None:
        return prepared
    probe = heard.midi + 12 * max(0, -(-(PROBE_LOWEST_NOTE - heard.midi) // 12))  # octaves up to C3 or above
    rendered = find_note(synth.render(probe, 1.0, 1.0, 1.0), synth.sample_rate_hz)
    if rendered.kind != "pitched" or rendered.midi is None or rendered.midi == probe:
        return prepared
    offset = rendered.midi - probe
    note = int(np.clip(heard.midi - offset, 0, 127))
    direction = "below" if offset < 0 else "above"
    message = (
        f"{prepared.message}; the patch sounds {abs(offset)} semitones {direction} the note it plays, "
        f"so it plays {note_name(note)} (MIDI {note})"
    )
    return replace(prepared, note=note, message=message)
