"""Which note a recording plays, where its main note starts, and how sure that is.

The *main note* is the loudest event: it starts where the sound rises out of the quiet (40 dB below the peak)
before it, or at a later onset that rises from 10 dB or more below the peak (:func:`main_onset_seconds`).
Its pitch is tracked by probabilistic YIN (:func:`models.pitch_track.pyin`, librosa's ``pyin`` with a banded
Viterbi pass; C1..C8) over the first half second after the onset, on the frames within 30 dB of the note's peak:

- **silent**: peak below -80 dBFS; nothing to match.
- **unpitched** (noise, drums): fewer than half of those frames voiced.
- **polyphonic** (a chord): the spectrum's energy is spread over partials that are not harmonics of the tracked
  pitch (less than :data:`MIN_HARMONIC_SHARE` of the energy of its prominent peaks, 10 dB above their surroundings,
  within a quarter-tone of its harmonics; none when
  the lowest strong peak is neither the pitch nor its octave), or the tracked pitch wanders over more than a
  semitone.
- **pitched**: the median tracked pitch, rounded to the nearest MIDI note; the confidence is pyin's mean voiced
  probability over the note's frames times the share of the spectrum's peaks that are its harmonics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import ReaTimbreError
from models.pitch_track import pyin
from models.resample import resample

SILENCE_PEAK = 1e-4  # about -80 dBFS
ANALYSIS_RATE_HZ = 22_050
HOP = 256
FRAME = 2048
NOTE_SECONDS = 0.5  # analysed after the onset
SOUNDING_BELOW_PEAK_DB = 30.0  # frames this far below the note's loudest still count as the note
EVENT_BELOW_PEAK_DB = 40.0  # the main event: the frames around the loudest within this of it
NEW_NOTE_DB = 10.0  # an onset inside the event is a new note when it rises from this far below the peak
MIN_VOICED_SHARE = 0.5
MIN_HARMONIC_SHARE = 0.7
PEAK_PROMINENCE_DB = 10.0  # a partial stands this far above the spectrum around it
MAX_PITCH_SPREAD_SEMITONES = 1.0
FMIN_HZ = 32.7  # C1
FMAX_HZ = 4186.0  # C8


@dataclass(frozen=True)
class NoteEstimate:
    """What :func:`find_note` heard."""

    kind: str  # "pitched", "unpitched", "polyphonic" or "silent"
    midi: int | None  # the note (pitched only)
    confidence: float  # 0..1
    onset_seconds: float  # where the main note starts in the recording
    harmonic_share: float  # of the main note's spectral peak energy, near harmonics of the tracked pitch
    voiced_share: float  # of the main note's frames that pyin calls voiced

    @property
    def name(self) -> str:
        return note_name(self.midi) if self.midi is not None else "-"


def note_name(midi: int) -> str:
    """MIDI note number as a name, C4 = 60 (scientific pitch notation)."""
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    return f"{names[midi % 12]}{midi // 12 - 1}"


def _mono(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    mono = audio if audio.ndim == 1 else audio.mean(axis=0)
    if not np.isfinite(mono).all():
        raise ReaTimbreError("audio holds NaN or infinite samples")
    return resample(mono, sample_rate_hz, ANALYSIS_RATE_HZ)


def main_onset_seconds(mono: np.ndarray, rate: int = ANALYSIS_RATE_HZ) -> float:
    """Where the loudest event starts, to the sample.

    The event is the run of frames around the loudest one that stays within 40 dB of it; it starts where that run
    starts, or at the last onset inside it (librosa's, backtracked) that rises from at least 10 dB below the peak
    (a new note played over the tail of a quieter one). Onsets at full level are the note's own envelope or
    effects, not a new note. The start is then refined to the first sample that reaches 1 % of the next 0.1 s's
    peak and stands 12 dB over what came just before.
    """
    import librosa

    rms = librosa.feature.rms(y=mono, frame_length=FRAME, hop_length=HOP, center=True)[0]
    loudest = int(np.argmax(rms))
    quiet = np.flatnonzero(rms[:loudest] < rms[loudest] * 10 ** (-EVENT_BELOW_PEAK_DB / 20))
    frame = int(quiet[-1]) + 1 if quiet.size else 0
    onsets = librosa.onset.onset_detect(y=mono, sr=rate, hop_length=HOP, backtrack=True, units="frames")
    lead = FRAME // (2 * HOP)  # the centred frame this many hops earlier ends where frame f begins
    new_note = rms[loudest] * 10 ** (-NEW_NOTE_DB / 20)
    rising = [int(f) for f in onsets if frame < f <= loudest and rms[max(0, f - lead)] <= new_note]
    if rising:
        frame = rising[-1]
    first = max(0, int(librosa.frames_to_samples(frame, hop_length=HOP)) - 2 * HOP)
    search = 2 * HOP + FRAME  # a centred frame already hears a rise up to half a frame after its centre
    window = np.abs(mono[first : first + search + int(0.1 * rate)])
    before = float(np.sqrt(np.mean(np.square(mono[max(0, first - 2 * HOP) : first])))) if first else 0.0
    threshold = max(0.01 * float(window.max()) if window.size else 0.0, 4.0 * before)
    above = np.flatnonzero(window[:search] >= threshold) if window.size else np.array([], int)
    return (first + int(above[0]) if above.size else first + 2 * HOP) / rate


def _harmonic_share(piece: np.ndarray, f0_hz: float, rate: int) -> float:
    """Share of the spectrum's peak energy within a quarter-tone of a harmonic of ``f0_hz``.

    0 when the strong peaks (within 30 dB of the strongest) begin above ``f0_hz``'s octave, with nothing strong at
    ``f0_hz`` or its octave: a chord whose notes are harmonics of a lower, absent note (C E G: 4:5:6 over C two
    octaves down) is not that note. A strong peak below ``f0_hz`` (a sampled instrument's body resonance, a
    detuned ensemble's beating) does not veto the note: it only counts against the share.
    """
    from scipy.signal import find_peaks

    spectrum = np.abs(np.fft.rfft(piece * np.hanning(piece.size))) ** 2
    freqs = np.fft.rfftfreq(piece.size, 1 / rate)
    band = (freqs >= FMIN_HZ) & (freqs <= min(rate / 2, 8000.0))
    spectrum, freqs = spectrum[band], freqs[band]
    level_db = 10 * np.log10(spectrum + spectrum.max() * 1e-12)
    # partials: peaks standing out of their surroundings (not window side lobes or a reverb's smear)
    peaks, _ = find_peaks(level_db, height=level_db.max() - 40.0, prominence=PEAK_PROMINENCE_DB)
    if peaks.size == 0:
        return 0.0
    ratio = freqs[peaks] / f0_hz
    strong = level_db[peaks] >= level_db.max() - 30.0
    at_root = np.minimum(np.abs(12 * np.log2(ratio[strong])), np.abs(12 * np.log2(ratio[strong] / 2))) <= 0.5
    if not at_root.any() and float(ratio[strong].min()) > 1.0:
        return 0.0
    nearest = np.maximum(1.0, np.round(ratio))
    harmonic = np.abs(12 * np.log2(ratio / nearest)) < 0.25
    energy = spectrum[peaks]
    return float(energy[harmonic].sum() / energy.sum())


def find_note(audio: np.ndarray, sample_rate_hz: int) -> NoteEstimate:
    """The main note of ``audio`` ((channels, frames) or (frames,)), or why there is none."""
    import librosa

    if sample_rate_hz <= 0:
        raise ReaTimbreError(f"sample rate must be positive, got {sample_rate_hz}")
    mono = _mono(audio, sample_rate_hz)
    if mono.size == 0 or float(np.abs(mono).max()) < SILENCE_PEAK:
        return NoteEstimate("silent", None, 0.0, 0.0, 0.0, 0.0)
    mono = np.pad(mono, (0, max(0, FRAME - mono.size)))  # a click shorter than a frame: silence after it
    rate = ANALYSIS_RATE_HZ
    onset = main_onset_seconds(mono, rate)
    piece = mono[int(onset * rate) : int((onset + NOTE_SECONDS) * rate)]
    piece = np.pad(piece, (0, max(0, FRAME - piece.size)))
    f0, voiced, probability = pyin(piece, rate, FMIN_HZ, FMAX_HZ, FRAME, HOP)
    rms = librosa.feature.rms(y=piece, frame_length=FRAME, hop_length=HOP, center=True)[0][: f0.size]
    sounding = rms >= rms.max() * 10 ** (-SOUNDING_BELOW_PEAK_DB / 20)
    voiced_share = float(np.mean(voiced[sounding])) if sounding.any() else 0.0
    if voiced_share < MIN_VOICED_SHARE:
        return NoteEstimate("unpitched", None, round(1 - voiced_share, 3), onset, 0.0, round(voiced_share, 3))
    tracked = librosa.hz_to_midi(f0[sounding & voiced])
    midi_float = float(np.median(tracked))
    spread = float(np.percentile(tracked, 90) - np.percentile(tracked, 10))
    harmonic_share = _harmonic_share(piece, float(librosa.midi_to_hz(midi_float)), rate)
    if harmonic_share < MIN_HARMONIC_SHARE or spread > MAX_PITCH_SPREAD_SEMITONES:
        confidence = 1 - min(harmonic_share, 1.0)
        return NoteEstimate("polyphonic", None, round(confidence, 3), onset, round(harmonic_share, 3), voiced_share)
    confidence = float(np.mean(probability[sounding & voiced])) * harmonic_share
    midi = int(np.clip(np.round(midi_float), 0, 127))
    return NoteEstimate("pitched", midi, round(confidence, 3), onset, round(harmonic_share, 3), round(voiced_share, 3))


WARM_UP_MIDI = 57  # A3, 220 Hz


def warm_up() -> NoteEstimate:
    """Find the note of a synthetic tone once, so that librosa compiles its numba functions (the ones its import
    and its onset detection need) into their on-disk cache.

    The first note found in a fresh environment compiles them: about 35 s on a 2-core CPU, where each later
    process loads them from the cache in about 2 s. ``install.py`` calls this once after installing, so that a
    producer's first ``match`` or ``coach --target`` does not pay it. Returns what it heard (A3, pitched).
    """
    rate_hz = 48_000
    seconds = np.arange(rate_hz) / rate_hz
    f0_hz = 440.0 * 2 ** ((WARM_UP_MIDI - 69) / 12)
    tone = sum(np.sin(2 * np.pi * f0_hz * harmonic * seconds) / harmonic for harmonic in (1, 2, 3, 4))
    onset = seconds >= 0.1
    note = 0.3 * tone * np.exp(-2.0 * np.maximum(seconds - 0.1, 0.0)) * onset
    return find_note(note.astype(np.float32), rate_hz)
