"""Test material of another origin than the training programs: sampled instruments, a drum loop, speech, a mix.

:mod:`models.material` synthesises everything the shipped effect models are trained on. The material here is made
in other ways: a General MIDI soundfont (Debian's ``fluid-soundfont-gm``: sampled piano, electric bass and drum kit)
played by the ``fluidsynth`` command line from MIDI written here with mido, speech from ``espeak-ng`` (Debian's
formant speech synthesiser, not recorded voices), and a mix of all four. Every clip is mono at
:data:`models.rates.SAMPLE_RATE_HZ`, peak-normalised to :data:`PEAK_DBFS`, and the same on every run (no randomness).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np

from models.audio_io import read_audio
from models.errors import ReaTimbreError
from models.rates import SAMPLE_RATE_HZ
from models.resample import resample

#: Where Debian's fluid-soundfont-gm puts the soundfont; ``$REATIMBRE_SOUNDFONT`` names another .sf2.
SOUNDFONT_PATHS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/soundfonts/FluidR3_GM.sf2"))
DEBIAN_PACKAGES = ("fluidsynth", "fluid-soundfont-gm", "espeak-ng")
PEAK_DBFS = -1.0  # every clip's peak, as mastered material sits
DEFAULT_SECONDS = 6.0
MIX_LEVELS = {"piano": 0.8, "bass": 0.7, "drums": 0.9, "speech": 0.8}  # each clip's share of the mix (peak-normalised)
MATERIALS = ("piano", "bass", "drums", "speech", "mix")
ORIGINS = {
    "piano": "FluidR3 GM soundfont, acoustic grand piano: chords and a melody, velocities 35-120 (fluidsynth)",
    "bass": "FluidR3 GM soundfont, finger electric bass: an eighth-note line, velocities 50-115 (fluidsynth)",
    "drums": "FluidR3 GM soundfont, standard kit: a kick/snare/hi-hat loop with accents (fluidsynth)",
    "speech": "espeak-ng, American English, 150 words a minute",
    "mix": "piano + bass + drums + speech, summed and peak-normalised",
}
SPEECH_TEXT = (
    "The quick brown fox jumps over the lazy dog. Seven silver spoons fell on the kitchen floor, "
    "and nobody said a word about it."
)
_TEMPO_BPM = 100
_TICKS_PER_BEAT = 480
_TOOL_SECONDS = 60  # a renderer that takes longer than this is stuck


def soundfont_path() -> Path | None:
    """The General MIDI soundfont to render with, or None when none is installed."""
    named = os.environ.get("REATIMBRE_SOUNDFONT")
    candidates = (Path(named),) if named else SOUNDFONT_PATHS
    return next((path for path in candidates if path.is_file()), None)


def missing_tools() -> list[str]:
    """What is missing to render the material (empty when everything is there), as Debian package names."""
    missing = []
    if shutil.which("fluidsynth") is None:
        missing.append("fluidsynth")
    if soundfont_path() is None:
        missing.append("fluid-soundfont-gm")
    if shutil.which("espeak-ng") is None:
        missing.append("espeak-ng")
    return missing


def _require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise ReaTimbreError(
            f"the other-origin test material needs {', '.join(missing)}: apt-get install {' '.join(missing)}"
        )


def _run(command: list[str]) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_TOOL_SECONDS)
    except subprocess.TimeoutExpired:
        raise ReaTimbreError(f"{command[0]} did not finish within {_TOOL_SECONDS} s") from None
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise ReaTimbreError(f"{command[0]} failed (exit {result.returncode}): {reason}")


def _fit(audio: np.ndarray, seconds: float) -> np.ndarray:
    """``audio`` cut or zero-padded to ``seconds``, peak-normalised to :data:`PEAK_DBFS`."""
    n = int(seconds * SAMPLE_RATE_HZ)
    out = np.zeros(n, np.float32)
    out[: min(n, audio.size)] = audio[:n]
    peak = float(np.max(np.abs(out)))
    if not peak > 0:
        raise ReaTimbreError("a rendered test clip came out silent")
    return (out * (10 ** (PEAK_DBFS / 20) / peak)).astype(np.float32)


def _read_mono(path: Path) -> np.ndarray:
    audio, rate = read_audio(path)
    return resample(np.asarray(audio, np.float32).mean(axis=0), rate, SAMPLE_RATE_HZ)


def _beats(count: float) -> int:
    return int(round(count * _TICKS_PER_BEAT))


def _track(events: list[tuple[float, float, int, int]], channel: int, program: int | None) -> mido.MidiTrack:
    """A track of notes (start beat, length in beats, MIDI note, velocity) on ``channel``."""
    messages: list[tuple[int, int, mido.Message]] = []
    for start, length, pitch, velocity in events:
        messages.append(
            (_beats(start), 1, mido.Message("note_on", channel=channel, note=pitch, velocity=int(velocity)))
        )
        messages.append((_beats(start + length), 0, mido.Message("note_off", channel=channel, note=pitch)))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(_TEMPO_BPM), time=0))
    if program is not None:
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    now = 0
    for tick, _, message in sorted(messages, key=lambda m: (m[0], m[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    return track


def _piano_events(bars: int) -> list[tuple[float, float, int, int]]:
    """I-vi-IV-V in C: a chord on each bar's first beat (soft to loud), a melody in eighths above it."""
    chords = [(48, 52, 55, 60), (45, 52, 57, 60), (41, 53, 57, 60), (43, 50, 55, 59)]
    melody = [72, 74, 76, 79, 76, 74, 72, 71]
    events = []
    for bar in range(bars):
        chord_velocity = (35, 70, 100, 120)[bar % 4]
        events += [(bar * 4.0, 3.5, pitch, chord_velocity) for pitch in chords[bar % 4]]
        for step, pitch in enumerate(melody):
            velocity = 45 + (step * 11 + bar * 17) % 70
            events.append((bar * 4.0 + step * 0.5, 0.45, pitch + (bar % 2) * 2, velocity))
    return events


def _bass_events(bars: int) -> list[tuple[float, float, int, int]]:
    roots = [36, 33, 29, 31]
    events = []
    for bar in range(bars):
        for step in range(8):
            pitch = roots[bar % 4] + (12 if step in (3, 7) else 0) + (7 if step == 5 else 0)
            velocity = 115 if step % 4 == 0 else 50 + (step * 13) % 45
            events.append((bar * 4.0 + step * 0.5, 0.4, pitch, velocity))
    return events


def _drum_events(bars: int) -> list[tuple[float, float, int, int]]:
    kick, snare, closed_hat, open_hat, crash = 36, 38, 42, 46, 49
    events: list[tuple[float, float, int, int]] = []
    for bar in range(bars):
        base = bar * 4.0
        events += [(base + b, 0.2, kick, 120 if b in (0.0, 2.0) else 95) for b in (0.0, 1.5, 2.0, 2.75)]
        events += [(base + b, 0.2, snare, 110 if b == 3.0 else 90) for b in (1.0, 3.0)]
        events += [(base + i * 0.5, 0.1, closed_hat, 40 + 45 * (i % 2 == 0)) for i in range(7)]
        events.append((base + 3.5, 0.4, open_hat, 80))
        if bar % 2 == 0:
            events.append((base, 1.0, crash, 100))
    return events


def _render_midi(tracks: list[mido.MidiTrack], seconds: float, folder: Path, stem: str) -> np.ndarray:
    """The tracks played through the soundfont by fluidsynth (its reverb and chorus off), mono, fitted."""
    return _fit(_play(tracks, folder, stem), seconds)


def _play(tracks: list[mido.MidiTrack], folder: Path, stem: str) -> np.ndarray:
    """The tracks played through the soundfont by fluidsynth (its reverb and chorus off), mono, as rendered."""
    soundfont = soundfont_path()
    assert soundfont is not None  # _require_tools checked it
    song = mido.MidiFile(ticks_per_beat=_TICKS_PER_BEAT)
    song.tracks.extend(tracks)
    midi_path, wav_path = folder / f"{stem}.mid", folder / f"{stem}.wav"
    song.save(midi_path)
    _run(
        ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", str(SAMPLE_RATE_HZ)]
        + ["-F", str(wav_path), "-T", "wav", str(soundfont), str(midi_path)]
    )
    return _read_mono(wav_path)


def _speech(seconds: float, folder: Path) -> np.ndarray:
    wav_path = folder / "speech.wav"
    _run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav_path), SPEECH_TEXT])
    return _fit(_read_mono(wav_path), seconds)


def other_origin_material(seconds: float = DEFAULT_SECONDS) -> dict[str, np.ndarray]:
    """The clips of :data:`MATERIALS`, each ``seconds`` long (mono, peak :data:`PEAK_DBFS`), by name."""
    if not 0.5 <= seconds <= 60:
        raise ReaTimbreError(f"the test material's length must be 0.5 to 60 seconds, got {seconds}")
    _require_tools()
    bars = int(np.ceil(seconds * _TEMPO_BPM / 60 / 4)) + 1
    with tempfile.TemporaryDirectory(prefix="reatimbre-other-origin-") as tmp:
        folder = Path(tmp)
        clips = {
            "piano": _render_midi([_track(_piano_events(bars), 0, 0)], seconds, folder, "piano"),
            "bass": _render_midi([_track(_bass_events(bars), 1, 33)], seconds, folder, "bass"),
            "drums": _render_midi([_track(_drum_events(bars), 9, None)], seconds, folder, "drums"),
            "speech": _speech(seconds, folder),
        }
    mix = np.zeros(int(seconds * SAMPLE_RATE_HZ), np.float32)
    for name, level in MIX_LEVELS.items():
        mix += level * clips[name]
    clips["mix"] = _fit(mix, seconds)
    return clips


#: General MIDI instruments (0-based program numbers) whose single notes test sound matching on sampled sounds.
GM_INSTRUMENTS: dict[str, int] = {
    "acoustic grand piano": 0, "electric piano": 4, "drawbar organ": 16, "nylon guitar": 24, "finger bass": 33,
    "violin": 40, "string ensemble": 48, "trumpet": 56, "alto sax": 65, "flute": 73, "square lead": 80,
    "warm pad": 89,
}  # fmt: skip
_NOTE_BEATS = 4.0  # each note's slot: 2.4 s at the material's 100 BPM
_LEAD_SECONDS = 0.05  # silence kept before each note's onset


def soundfont_notes(
    instruments: dict[str, int],
    notes: list[int],
    held_seconds: float = 0.75,
    clip_seconds: float = 1.5,
    velocity: int = 100,
) -> dict[tuple[str, int], np.ndarray]:
    """Single held notes of General MIDI instruments through the soundfont: (instrument, MIDI note) → a mono clip
    of ``clip_seconds`` from just before the note's onset, peak :data:`PEAK_DBFS`. Like the synths' training
    clips, each note is held ``held_seconds`` and then released inside the clip."""
    if not 0.1 <= held_seconds < clip_seconds <= _NOTE_BEATS * 60 / _TEMPO_BPM - _LEAD_SECONDS:
        raise ReaTimbreError(
            f"notes need 0.1 <= held_seconds < clip_seconds <= 2.3, got {held_seconds}, {clip_seconds}"
        )
    if not notes or any(not 0 <= n <= 127 for n in notes):
        raise ReaTimbreError(f"notes must be MIDI numbers 0..127, got {notes}")
    _require_tools()
    held_beats = held_seconds * _TEMPO_BPM / 60
    out: dict[tuple[str, int], np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="reatimbre-soundfont-notes-") as tmp:
        for index, (name, program) in enumerate(instruments.items()):
            events = [(1.0 + i * _NOTE_BEATS, held_beats, note, velocity) for i, note in enumerate(notes)]
            audio = _play([_track(events, index % 9, program)], Path(tmp), f"instrument-{index}")
            for i, note in enumerate(notes):
                start = int(round(((1.0 + i * _NOTE_BEATS) * 60 / _TEMPO_BPM - _LEAD_SECONDS) * SAMPLE_RATE_HZ))
                out[(name, note)] = _fit(audio[start:], clip_seconds)
    return out
