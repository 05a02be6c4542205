"""``reatimbre match``: infer a patch per synth for a target sound, render each, and rank the synths.

The target is resampled to 44.1 kHz; its main note is found with :func:`models.pitch.find_note` (or given); the
1.01 s clip from the note's onset gives the dB-mel spectrogram the model encodes. For each synth the model's
parameter decoder gives an encoded vector, decoded to the synth's native patch
(:meth:`~models.synth.spaces.ParameterSpace.decode`), rendered at the target's note exactly as the training
clips were (held 0.75 s, full velocity) and compared with the target: the log-spectral distance (dB) ranks them.

Which octave. Pitch tracking is octave-ambiguous: a stack of fifths is heard at its implied root, an octave
below the note that plays it, in a target and in an inferred patch alike. So unless the note was given, each
patch is rendered at the detected note and an octave either side, and plays the one closest to the target;
that note is the patch's (``SynthMatch.note``), and ``--then-coach`` hands it to the coach.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from models.asp.nets import AspModel, prediction_vector
from models.asp.refine import guide_from_guesses, refine_patch
from models.asp.time_budget import Deadline
from models.errors import ReaTimbreError
from models.metrics import lsd_db
from models.pitch import NoteEstimate, find_note
from models.rates import SAMPLE_RATE_HZ
from models.resample import resample
from models.synth.features import CLIP_SAMPLES, clip_features, clip_mel_db80
from models.synth.match_synths import MatchSynth, match_synth

DEFAULT_NOTE = 48
#: guesses rendered per synth by ``match`` (the latent means' patch and draws from the model's uncertainty)
DEFAULT_CANDIDATES = 12
MAX_CANDIDATES = 64
NOTE_SECONDS = 0.75
VELOCITY = 1.0

#: A match this far (log-spectral distance, dB) is reported as far: a rough start, not the target's sound. Between
#: the held-out tables' nearest training patch (6.6-8.1 dB per synth but Kars) and a random one (17-22 dB, Kars 7).
FAR_LSD_DB = 12.0


@dataclass(frozen=True)
class Target:
    """The target as the model sees it: its clip's dB-mel/80 spectrogram and the note to render."""

    mel_db80: np.ndarray  # (128, 88)
    note: int
    estimate: NoteEstimate | None  # None when the note was given
    onset_seconds: float


@dataclass
class SynthMatch:
    """One synth's inferred patch, its render's distance to the target, and the patch file it makes."""

    synth: str
    native: dict[str, float]
    note: int  # the MIDI note the patch plays to sound closest to the target
    lsd_db: float
    patch_bytes: bytes
    patch_suffix: str
    seconds: float  # wall clock, loading the synth on first use included
    cpu_seconds: float
    host_values: dict[int, float]  # the whole patch as a host (REAPER) addresses it: parameter index → 0..1
    host_values_by_name: dict[str, float] = field(default_factory=dict)  # … or by parameter name (Dexed)
    renders: int = 0  # renders compared with the target: candidate notes, guesses and refinement
    cut_short: bool = False  # the time budget stopped the guesses or the refinement before their count
    load_seconds: float = 0.0  # of ``seconds``, loading the synth (first use only): outside the time budget

    @property
    def far(self) -> bool:
        """Whether the patch renders too far from the target to pass for it (:data:`FAR_LSD_DB` or more)."""
        return self.lsd_db >= FAR_LSD_DB


def prepare_target(
    audio: np.ndarray, sample_rate_hz: int, note: int | None = None, start_seconds: float = 0.0
) -> Target:
    """The target's clip features; ``note`` None detects it (an unpitched or unclear target gets C3, MIDI 48).
    ``start_seconds``: where the target begins in ``audio`` (a REAPER item's offset into its file); the main
    note is looked for from there on (``onset_seconds`` counts from there)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if not np.isfinite(start_seconds) or start_seconds < 0:
        raise ReaTimbreError(f"the target's start must be 0 or more seconds, got {start_seconds}")
    first = int(round(start_seconds * sample_rate_hz))
    if start_seconds and first >= audio.shape[1]:
        raise ReaTimbreError(f"the target's start {start_seconds:g} s is past the end of its audio")
    audio = audio[:, first:]
    if audio.size == 0 or not np.isfinite(audio).all():
        raise ReaTimbreError("the target audio is empty or holds NaN/infinite samples")
    estimate = find_note(audio, sample_rate_hz)
    if estimate.kind == "silent":
        raise ReaTimbreError("the target is silent")
    chosen = note if note is not None else (estimate.midi if estimate.midi is not None else DEFAULT_NOTE)
    if not 0 <= chosen <= 127:
        raise ReaTimbreError(f"--note must be a MIDI note 0..127, got {chosen}")
    audio = resample(audio, sample_rate_hz, SAMPLE_RATE_HZ)
    start = int(round(estimate.onset_seconds * SAMPLE_RATE_HZ))
    clip = audio[:, start : start + CLIP_SAMPLES]
    clip = np.pad(clip, ((0, 0), (0, CLIP_SAMPLES - clip.shape[1])))
    return Target(
        clip_features(clip).mel_db80, int(chosen), None if note is not None else estimate, estimate.onset_seconds
    )


@torch.no_grad()
def infer_vectors(model: AspModel, mel_db80: np.ndarray, synth: str) -> np.ndarray:
    """Encoded parameter vectors (n, k) of synth ``synth`` for spectrograms (n, 128, 88): the latent means decoded."""
    index = model.synth_index(synth)
    device = next(model.parameters()).device
    mel = torch.from_numpy(np.asarray(mel_db80, dtype=np.float32)).to(device)
    synths = torch.full((mel.shape[0],), index, dtype=torch.long, device=device)
    out = model(mel, synths, sample=False)
    return prediction_vector(out.params, model.architecture.layouts[index]).cpu().numpy()


@torch.no_grad()
def candidate_vectors(model: AspModel, mel_db80: np.ndarray, synth: str, count: int, seed: int = 0) -> np.ndarray:
    """``count`` encoded parameter vectors per spectrogram, (n, count, k): first the latent means decoded (what
    :func:`infer_vectors` gives); then, for a model with several hypotheses, its other hypotheses at the latent
    means, best-scored first; then draws from the model's own uncertainty — a latent drawn from the encoder's
    posterior, decoded, each one-hot group's class drawn from the decoder's probabilities. Rendering them and
    keeping the closest (:func:`closest_candidate`) checks the model's guesses by ear; it uses nothing but the
    model and the synth (no training data)."""
    if not 1 <= count <= MAX_CANDIDATES:
        raise ReaTimbreError(f"candidates must be 1..{MAX_CANDIDATES}, got {count}")
    index = model.synth_index(synth)
    layout = model.architecture.layouts[index]
    device = next(model.parameters()).device
    mel = torch.from_numpy(np.asarray(mel_db80, dtype=np.float32)).to(device)
    synths = torch.full((mel.shape[0],), index, dtype=torch.long, device=device)
    mu, logvar = model.encode(mel, synths)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    out = np.empty((mel.shape[0], count, layout.size), dtype=np.float32)
    raw, scores = model.decode_hypotheses(mu, synths)
    order = scores.argsort(dim=1, descending=True)
    rows = torch.arange(mel.shape[0], device=device)
    hypotheses = min(count, raw.shape[1])
    for c in range(hypotheses):
        out[:, c] = prediction_vector(raw[rows, order[:, c]], layout).cpu().numpy()
    for c in range(hypotheses, count):
        noise = torch.randn(mu.shape, generator=generator).to(device)
        vector = prediction_vector(model.decode_params(mu + noise * torch.exp(0.5 * logvar), synths), layout)
        for start, classes in layout.groups:
            probabilities = vector[:, start : start + classes].cpu().clamp_min(0.0) + 1e-12
            picks = torch.multinomial(probabilities, 1, generator=generator).flatten().to(device)
            vector[:, start : start + classes] = nn.functional.one_hot(picks, classes).to(vector.dtype)
        out[:, c] = vector.cpu().numpy()
    return out


def closest_candidate(
    synth: MatchSynth, vectors: np.ndarray, target_mel_db80: np.ndarray, note: int
) -> tuple[int, dict[str, float], float]:
    """Render each candidate vector (c, k) at ``note``; the index, native patch and LSD (dB) of the closest."""
    natives = [synth.space.decode(vector) for vector in vectors]
    index, distance, _ = closest_native(synth, natives, target_mel_db80, note)
    return index, natives[index], distance


def closest_native(
    synth: MatchSynth,
    natives: list[dict[str, float]],
    target_mel_db80: np.ndarray,
    note: int,
    deadline: Deadline | None = None,
) -> tuple[int, float, int]:
    """Render the native patches at ``note`` in order (while ``deadline``, if given, leaves time for one more); the
    index and LSD (dB) of the closest rendered (0 and infinity if none was) and how many were rendered."""
    deadline = deadline if deadline is not None else Deadline(time.perf_counter(), None)
    best, best_distance, rendered = 0, float("inf"), 0
    for index, native in enumerate(natives):
        if not deadline.has_time():
            break
        with deadline.timing():
            distance = float(lsd_db(render_mel(synth, native, note), target_mel_db80))
        rendered += 1
        if distance < best_distance:
            best, best_distance = index, distance
    return best, best_distance, rendered


def render_mel(synth: MatchSynth, native: dict[str, float], note: int) -> np.ndarray:
    """A native patch's note rendered as the training clips were, as dB-mel/80, on the patch rendered before it
    (``from_init`` False: see :meth:`MatchSynth.apply`)."""
    audio = synth.render(native, note, VELOCITY, NOTE_SECONDS, CLIP_SAMPLES / SAMPLE_RATE_HZ, from_init=False)
    return clip_mel_db80(audio)


def render_distance(synth: MatchSynth, note: int, target_mel_db80: np.ndarray) -> Callable[[dict[str, float]], float]:
    """A native patch → the LSD (dB) of its render at ``note`` from the target: what refining searches by."""

    def measure(native: dict[str, float]) -> float:
        return float(lsd_db(render_mel(synth, native, note), target_mel_db80))

    return measure


def heard_distance(
    synth: MatchSynth, native: dict[str, float], note: int, target_mel_db80: np.ndarray, lsd: float
) -> float:
    """The distance a user will hear for the patch chosen at ``lsd`` (dB): ``lsd`` itself for a synth that renders
    a patch the same every time; else that of one more render, since the closest of several noisy renders is
    partly the luckiest (amsynth's refined patches were 0.3 dB, Kars's best of 12 1.4 dB closer than they sound)."""
    return lsd if synth.repeatable else render_distance(synth, note, target_mel_db80)(native)


def candidate_notes(target: Target) -> list[int]:
    """The notes a patch is tried at: the given note; else the detected (or default) note and an octave either
    side (see the module docstring)."""
    if target.estimate is None:
        return [target.note]
    return [n for n in (target.note, target.note - 12, target.note + 12) if 0 <= n <= 127]


def match_target(
    model: AspModel,
    target: Target,
    synths: list[str] | None = None,
    adapters: dict[str, MatchSynth] | None = None,
    name: str = "matched",
    candidates: int = 1,
    refine: int | None = 0,
    seconds_per_synth: float | None = None,
) -> list[SynthMatch]:
    """Infer, render and score a patch per synth (default: every synth the model knows), best first.

    The latent means' patch is tried at each candidate note (an octave either side unless the note was given);
    with ``candidates`` above 1, that many minus one more of the model's guesses (:func:`candidate_vectors`) are
    rendered at the chosen note and the closest is kept. Then ``refine`` more renders search around it
    (:func:`models.asp.refine.refine_patch`, guided by where the guesses disagree; None: the synth's own
    :attr:`MatchSynth.refine_renders`). ``seconds_per_synth`` bounds each synth's answer from when the synth is loaded
    (a first use loads it; the server keeps synths loaded): the further guesses and the refinement stop when one more
    render would not end in time (the candidate notes are always rendered)."""
    names = list(model.architecture.synths) if not synths else synths
    adapters = adapters if adapters is not None else {}
    notes = candidate_notes(target)
    results = []
    for synth_name in names:
        started, started_cpu = time.perf_counter(), time.process_time()
        adapter = adapters.setdefault(synth_name, match_synth(synth_name))
        _ = adapter.synth  # loaded before the budget starts: a load is no render (the server keeps synths loaded)
        loaded = time.perf_counter()
        deadline = Deadline(loaded, seconds_per_synth)
        vectors = candidate_vectors(model, target.mel_db80[None], synth_name, candidates)[0]
        native = adapter.space.decode(vectors[0])
        deadline.keep_seconds(adapter.finish_seconds)
        with deadline.timing(len(notes)):
            distances = {note: float(lsd_db(render_mel(adapter, native, note), target.mel_db80)) for note in notes}
        note = min(distances, key=lambda n: (distances[n], abs(n - target.note)))
        distance, chosen = distances[note], vectors[0]
        if not adapter.repeatable:
            deadline.keep_renders(1)  # heard_distance renders the kept patch once more
        rendered, cut_short = len(notes), False
        if candidates > 1:
            others = [adapter.space.decode(vector) for vector in vectors[1:]]
            index, other_distance, tried = closest_native(adapter, others, target.mel_db80, note, deadline)
            rendered, cut_short = rendered + tried, tried < len(others)
            if other_distance < distance:
                native, distance, chosen = others[index], other_distance, vectors[1 + index]
        renders = adapter.renders_refining(refine)
        if renders > 0:
            measure = deadline.timed(render_distance(adapter, note, target.mel_db80))
            guide = guide_from_guesses(vectors, adapter.space.layout())  # moves most what the guesses disagree on
            refined = refine_patch(
                adapter.space, chosen, distance, measure, renders, guide=guide, in_time=deadline.has_time
            )
            native, distance = refined.native, refined.lsd_db
            stopped = refined.renders < renders and not deadline.has_time()  # not the search running out of moves
            rendered, cut_short = rendered + refined.renders, cut_short or stopped
        distance = heard_distance(adapter, native, note, target.mel_db80, distance)  # what ranks the synths
        finishing = time.perf_counter()
        patch = adapter.patch_file_bytes(native, f"{name} ({synth_name})")  # leaves the synth holding the patch
        host = {
            adapter.synth.host_index(key): round(adapter.synth.normalized_value(key), 7)
            for key in adapter.host_controls()
        }
        by_name = {key: round(value, 7) for key, value in adapter.host_values_by_name().items()}
        adapter.finish_seconds = time.perf_counter() - finishing  # the next answer's budget keeps this much
        seconds, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        results.append(
            SynthMatch(
                synth_name,
                native,
                note,
                distance,
                patch,
                adapter.patch_suffix,
                seconds,
                cpu,
                host,
                by_name,
                rendered + (0 if adapter.repeatable else 1),
                cut_short,
                loaded - started,
            )
        )
    return sorted(results, key=lambda r: r.lsd_db)


def summary(results: list[SynthMatch], target: Target) -> dict[str, Any]:
    """What ``match`` reports as JSON."""
    return {
        "note": target.note,
        "note_detected": target.estimate is not None,
        "onset_seconds": round(target.onset_seconds, 4),
        "ranking": [
            {
                "synth": r.synth,
                "note": r.note,
                "lsd_db": round(r.lsd_db, 3),
                "far": r.far,
                "seconds": round(r.seconds, 3),
                "cpu_seconds": round(r.cpu_seconds, 3),
                "renders": r.renders,
                "cut_short": r.cut_short,
                "load_seconds": round(r.load_seconds, 3),
                "parameters": r.native,
                "host_values": {str(index): value for index, value in sorted(r.host_values.items())},
                "host_values_by_name": r.host_values_by_name,
            }
            for r in results
        ],
    }
