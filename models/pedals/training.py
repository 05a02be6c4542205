"""Train and judge the pedal-board models (``reatimbre train-effect --effect fuzz|amp|octave|chorus|delay|filter``).

Training pairs come as for the other shipped effects (random crops of generated programs through the real effect,
random knob positions), with the McCool paper's test signals (sines, squares, saws, chirps) added to the programs.
``arch`` picks the network: ``ours`` (the default: the network of the effect's recipe in
``models.effect_training.RECIPES``, the one that ships), ``tcn`` (:class:`~models.pedals.lfo_tcn.LFOTCN`, a
conditioned TCN with a dry path, told the LFO's phase for an effect with an LFO and declaring the latency of one with
a latency; recipes in ``PEDAL_TCN_RECIPES``), or the paper's ``mccool-cnn`` and ``mccool-lstm`` baselines.

A network may ask more of training through two optional members: ``restarts_with_render`` (True when its output
depends on everything since the render began, like a divider's parity: training crops then start the real effect
where the network's input starts, as for an effect with an LFO) and ``start_from(next_batch)`` (called once before
gradient descent with the training batch source, ``step -> (dry, control, wet)``, for a network that measures its
starting point on the training pairs), ``finish_from(next_batch)`` (called once after it with crops of
:data:`FINISH_SEGMENT_SAMPLES`, for a part measured on the training pairs at the end, such as the drive chain's
matching equaliser) and ``takes_weights_of(saved)`` (for
``resume``: load a saved network whose architecture differs only by what ``finish_from`` measures), and
``settle_fraction`` with ``hold_late_parts(held)`` (a fresh run first trains that share of its budget with the
network's late parts held, measures ``finish_from``, then trains the rest at a quarter of the learning rate, as a
resumed run would, with them free).

The held-out judgement (:func:`judge`) renders clips of another origin (``models.pedals.heldout``) at every point
of the 3-per-knob grid, with the real effect's and the model's latencies removed, and records per point the MR-STFT
distance of the model and of the dry input to the real effect, their ratio, and the loudness error.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.device import DeviceChoice, default_device, module_device
from models.effect_training import PEDAL_TCN_RECIPES, RECIPES, Recipe
from models.effects import ReferenceEffect, reference_effect
from models.evaluation import loudness_lufs, mrstft_distance
from models.fit import FitProgress, FitResult, fit
from models.library import ModelInfo, load_info, render_stream, save_model
from models.losses import (
    MultiResolutionSTFTLoss,
    band_level_distance_db,
    error_to_signal_ratio,
    frame_level_distance_db,
)
from models.material import GENERATORS, TEST_SIGNALS, make_program
from models.modulation import modulation_distance
from models.networks import BlockStream, architecture_record
from models.pedals.baselines import McCoolCNN, McCoolLSTM
from models.pedals.heldout import heldout_clips
from models.pedals.lfo_tcn import LFOTCN, lfo_clock
from models.rates import SAMPLE_RATE_HZ
from models.reverb_tail import ReverbTailConfig
from models.tcn import TCNConfig
from models.waveshaper import WaveshaperConfig

ARCHS = ("ours", "tcn", "mccool-cnn", "mccool-lstm")
ARCH_LABELS = {"ours": "ours", "tcn": "our TCN", "mccool-cnn": "McCool CNN", "mccool-lstm": "McCool LSTM"}
MATERIAL_KINDS = [*GENERATORS, *TEST_SIGNALS]
LFO_HARMONICS = 2
LFO_HIDDEN = 16
GRID = (0.1, 0.5, 0.9)
HELDOUT_SECONDS = 4.0
GOAL_RATIO = {"fuzz": 0.3, "amp": 0.3, "octave": 0.3, "filter": 0.3, "chorus": 0.5, "delay": 0.5}
SEGMENT_GOAL = 0.95  # share of one-second segments whose render must be nearer the real effect than the dry input


FINISH_SEGMENT_SAMPLES = 16_384  # finish_from measures on crops this long (0.37 s: 2.7 Hz FFT bins for a low end)


def model_name_for(effect: str, arch: str) -> str:
    """The library name a trained model gets: the effect's for ours, ``EFFECT-ARCH`` for the others."""
    return effect if arch == "ours" else f"{effect}-{arch}"


def pedal_recipe(effect: str, arch: str) -> Recipe:
    """The recipe ``arch`` trains ``effect`` with: the TCN's for ``tcn``, the effect's own otherwise (the baselines
    take its crops, batch and budget)."""
    if arch == "tcn":
        return PEDAL_TCN_RECIPES[effect]
    return RECIPES[effect]


def build_network(arch: str, effect: ReferenceEffect, recipe: Recipe) -> nn.Module:
    """A fresh network of ``arch`` for ``effect`` (its knob count, LFO and latency)."""
    knobs = len(effect.knobs)
    if arch == "mccool-cnn":
        return McCoolCNN(window=128, channels=8, kernel_size=5, hidden=32, knobs=knobs)
    if arch == "mccool-lstm":
        return McCoolLSTM(hidden=32, layers=2, knobs=knobs, warmup=1024)
    if arch not in ("ours", "tcn"):
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    config = recipe.config
    if not isinstance(config, TCNConfig):
        if arch == "tcn" or isinstance(config, ReverbTailConfig | WaveshaperConfig):
            raise ValueError(f"the {effect.name} recipe's network is a {type(config).__name__}, not a pedal's")
        return config.build(effect)
    lfo = None
    if effect.lfo is not None:
        lfo = {**lfo_clock(effect), "voices": config.out_channels, "harmonics": LFO_HARMONICS, "hidden": LFO_HIDDEN}
    # A recipe whose TCN has its own gain path (input x gain, for effects whose level swings, like a fuzz's) needs
    # no dry path beside it: that would add the input twice.
    return LFOTCN(config, lfo, effect.latency_samples, SAMPLE_RATE_HZ, dry_path=not config.gain_path)


class CropSource:
    """Random (dry, knobs, wet) training crops of ``clips`` through ``effect``, for a network that needs
    ``receptive_field`` samples of input per output sample. The effect runs from ``memory_seconds`` before the
    network's input (0 for an LFO effect, or with ``restart``: the crop then starts the effect, and its LFO, where
    the network does). Knob positions sit at an end with ``edge_share`` (as ``Recipe.edge_share``); each crop gets a
    random gain from ``crop_gain_db``, its peak kept at most -0.5 dBFS (as ``Recipe.crop_gain_db``)."""

    def __init__(
        self,
        effect: ReferenceEffect,
        clips: list[np.ndarray],
        receptive_field: int,
        segment: int,
        batch: int,
        seed: int,
        *,
        restart: bool = False,
        edge_share: float = 0.0,
        crop_gain_db: tuple[float, float] = (0.0, 0.0),
    ):
        self.effect, self.rf, self.segment, self.batch_size = effect, receptive_field, segment, batch
        self.edge_share, self.crop_gain_db = edge_share, crop_gain_db
        self.warm = 0 if restart else int(effect.memory_seconds * SAMPLE_RATE_HZ)
        self.rng = np.random.default_rng(seed)
        self.pad = self.warm + self.rf
        self.clips = [np.concatenate([np.zeros(self.pad, np.float32), clip]) for clip in clips]

    def example(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        for _ in range(8):
            clip = self.clips[self.rng.integers(len(self.clips))]
            end = int(self.rng.integers(self.pad + self.segment, len(clip) + 1))
            window = self._gained(clip[end - self.segment - self.rf + 1 - self.warm : end])
            positions = self._positions()
            values = {k.name: k.value_at(p) for k, p in zip(self.effect.knobs, positions, strict=True)}
            wet = self.effect.process(window[None, :], SAMPLE_RATE_HZ, values)[0, -self.segment :]
            if np.sqrt(np.mean(wet**2)) > 1e-4:
                break
        return window[self.warm :], positions.astype(np.float32), wet

    def _positions(self) -> np.ndarray:
        count = len(self.effect.knobs)
        at_end = self.rng.random(count) < self.edge_share
        return np.where(at_end, (self.rng.random(count) < 0.5).astype(float), self.rng.random(count))

    def _gained(self, window: np.ndarray) -> np.ndarray:
        low, high = self.crop_gain_db
        if low == high == 0.0:
            return window
        gain = 10 ** (self.rng.uniform(low, high) / 20)
        peak = float(np.max(np.abs(window)))
        if peak > 0:
            gain = min(gain, 10 ** (-0.5 / 20) / peak)
        return (window * gain).astype(np.float32)

    def batch(self, _step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, cs, ys = zip(*(self.example() for _ in range(self.batch_size)), strict=True)
        return (
            torch.from_numpy(np.stack(xs))[:, None, :],
            torch.from_numpy(np.stack(cs)),
            torch.from_numpy(np.stack(ys))[:, None, :],
        )


def render(stream: BlockStream, audio: np.ndarray, latency: int) -> np.ndarray:
    """``audio`` (samples,) through a network stream, ``latency`` samples removed (the end padded with silence)."""
    return render_stream(stream, audio[None, :], latency)[0]


def real_render(effect: ReferenceEffect, audio: np.ndarray, knobs: dict[str, float]) -> np.ndarray:
    """``audio`` (samples,) through the real effect, its latency removed."""
    latency = effect.latency_samples
    padded = np.concatenate([audio, np.zeros(latency, np.float32)])[None, :]
    return effect.process(padded, SAMPLE_RATE_HZ, knobs)[0, latency:]


def _log_mel_db(audio: np.ndarray) -> np.ndarray:
    import librosa  # imported here: slow to import, and only the judgement needs it

    mel = librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE_HZ, n_fft=2048, hop_length=512, n_mels=64)
    return 10 * np.log10(np.maximum(mel, 1e-10))


def nearer_segments(model: np.ndarray, real: np.ndarray, dry: np.ndarray) -> list[bool]:
    """For each whole one-second segment where the real effect or the dry input is audible (above -60 dBFS RMS):
    whether the model's log-mel spectrogram is nearer (mean absolute dB) to the real effect's than the dry's is.
    The issue's listening proxy."""
    second = SAMPLE_RATE_HZ
    verdicts = []
    for start in range(0, len(real) - second + 1, second):
        part = slice(start, start + second)
        if max(np.sqrt(np.mean(real[part] ** 2)), np.sqrt(np.mean(dry[part] ** 2))) < 1e-3:
            continue
        target = _log_mel_db(real[part])
        verdicts.append(
            bool(np.mean(np.abs(_log_mel_db(model[part]) - target)) < np.mean(np.abs(_log_mel_db(dry[part]) - target)))
        )
    return verdicts


def grid_points(effect: ReferenceEffect, grid: tuple[float, ...] = GRID) -> list[dict[str, float]]:
    """Knob values at every point of the grid (each knob at each of ``grid``'s positions)."""
    return [
        {k.name: k.value_at(p) for k, p in zip(effect.knobs, positions, strict=True)}
        for positions in itertools.product(grid, repeat=len(effect.knobs))
    ]


def judge(
    network: nn.Module, effect: ReferenceEffect, clips: dict[str, np.ndarray], grid: tuple[float, ...] = GRID
) -> dict:
    """Held-out figures at every grid point, each clip rendered whole with the effect's tail (see the module doc)."""
    network = network.eval().cpu()
    latency = int(network.latency_samples)  # type: ignore[arg-type]
    tail = np.zeros(int(effect.tail_seconds * SAMPLE_RATE_HZ), np.float32)
    points: list[dict] = []
    segments_nearer: list[bool] = []
    ratios: list[float] = []
    loudness_errors: list[float] = []
    for knobs in grid_points(effect, grid):
        control = torch.tensor([k.position(knobs[k.name]) for k in effect.knobs], dtype=torch.float32)
        model_d, dry_d, model_l, real_l = [], [], [], []
        for clip in clips.values():
            dry = np.concatenate([clip, tail])
            real = real_render(effect, dry, knobs)
            out = render(network.stream(control), dry, latency)  # type: ignore[operator]
            segments_nearer.extend(nearer_segments(out, real, dry))
            model_d.append(mrstft_distance(out[None], real[None]))
            dry_d.append(mrstft_distance(dry[None], real[None]))
            model_l.append(loudness_lufs(out[None], SAMPLE_RATE_HZ))
            real_l.append(loudness_lufs(real[None], SAMPLE_RATE_HZ))
        ratios.append(float(np.mean(model_d) / np.mean(dry_d)))
        loudness_errors.append(float(np.max(np.abs(np.array(model_l) - np.array(real_l)))))
        points.append(
            {
                "knobs": {k: round(v, 4) for k, v in knobs.items()},
                "mrstft_model": float(np.mean(model_d)),
                "mrstft_dry": float(np.mean(dry_d)),
                "ratio": ratios[-1],
                "loudness_error_db": loudness_errors[-1],
            }
        )
    goal = GOAL_RATIO.get(effect.name)
    geometric_mean = float(math.exp(np.mean(np.log(ratios))))
    never_worse = max(ratios) < 1.0
    summary: dict[str, object] = {
        "geometric_mean_ratio": geometric_mean,
        "worst_ratio": max(ratios),
        "never_worse_than_dry": never_worse,
        "max_loudness_error_db": max(loudness_errors),
        "goal_ratio": goal,
        "segments_nearer_real_than_dry": float(np.mean(segments_nearer)) if segments_nearer else None,
        "meets_goals": bool(
            never_worse
            and (goal is None or geometric_mean <= goal)
            and max(loudness_errors) <= 1.0
            and bool(segments_nearer)
            and float(np.mean(segments_nearer)) >= SEGMENT_GOAL
        ),
    }
    if effect.lfo is not None:
        summary["modulation"] = modulation_check(network, effect)
    seconds = max(len(clip) for clip in clips.values()) / SAMPLE_RATE_HZ
    return {"summary": summary, "points": points, "clips": list(clips), "clip_seconds": round(seconds, 3)}


def steady_chord(seconds: float = 6.0) -> np.ndarray:
    """A sustained A-minor sawtooth chord: steady, so any movement of its spectrum comes from the effect."""
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    chord = np.zeros_like(t)
    for f0 in (110.0, 130.8, 164.8):
        for h in range(1, int(15_000 / f0)):
            chord += np.sin(2 * np.pi * h * f0 * t) / h
    return (0.3 * chord / np.max(np.abs(chord))).astype(np.float32)


def modulation_check(network: nn.Module, effect: ReferenceEffect, grid: tuple[float, ...] = GRID) -> dict:
    """Modulation-spectrum distance to the real effect (``models.modulation``) of the model's and of the dry
    steady chord, at each rate on the grid (other knobs at the grid's top: the deepest, wettest sweep)."""
    assert effect.lfo is not None
    chord = steady_chord()
    rows = []
    for position in grid:
        knobs = {k.name: k.value_at(position if k.name == effect.lfo.rate_knob else grid[-1]) for k in effect.knobs}
        control = torch.tensor([k.position(knobs[k.name]) for k in effect.knobs], dtype=torch.float32)
        real = real_render(effect, chord, knobs)
        out = render(network.stream(control), chord, int(network.latency_samples))  # type: ignore[operator,arg-type]
        rows.append(
            {
                "knobs": {k: round(v, 4) for k, v in knobs.items()},
                "model": modulation_distance(out, real, SAMPLE_RATE_HZ),
                "dry": modulation_distance(chord, real, SAMPLE_RATE_HZ),
            }
        )
    return {"signal": "steady sawtooth chord, 6 s", "points": rows}


def _arch_note(arch: str) -> str:
    if arch == "ours":
        return ""
    if arch == "tcn":
        return " (our conditioned TCN, for comparison)"
    return f" ({arch} baseline of the McCool paper)"


def waveform_error(estimate: torch.Tensor, target: torch.Tensor, *, per_crop: bool) -> torch.Tensor:
    """The ESR of a batch of crops (B, 1, T): each crop's, averaged (``per_crop``: every crop counts alike whatever
    its level), or one over the whole batch (the loudest crops dominate it)."""
    shape = (-1, target.shape[-1]) if per_crop else (1, -1)
    return error_to_signal_ratio(estimate.reshape(shape), target.reshape(shape))


def train_pedal(
    name: str,
    out_dir: Path,
    *,
    arch: str = "ours",
    recipe: Recipe | None = None,
    seed: int = 0,
    command: str | None = None,
    progress: Callable[[FitProgress], None] | None = None,
    model_name: str | None = None,
    device: DeviceChoice | None = None,
    heldout_seconds: float = HELDOUT_SECONDS,
    resume: ModelInfo | None = None,
) -> ModelInfo:
    """Train ``arch`` on the pedal effect ``name``, judge it on held-out clips of another origin, save it.
    ``resume`` continues from a saved model of the same architecture, at a quarter of the learning rate and with no
    warm-up; its training record is kept in the new sidecar."""
    effect = reference_effect(name)
    recipe = recipe or pedal_recipe(name, arch)
    device = device or default_device()
    torch.manual_seed(seed)
    network = build_network(arch, effect, recipe)
    restart = bool(getattr(network, "restarts_with_render", False))
    learning_rate = recipe.learning_rate
    if resume is not None:
        saved = load_info(resume).model
        # Both records as JSON has them: a sidecar turns tuples into lists.
        takes_weights_of = getattr(network, "takes_weights_of", None)
        if json.loads(json.dumps(architecture_record(saved))) == json.loads(json.dumps(architecture_record(network))):
            network.load_state_dict(saved.state_dict())
        elif takes_weights_of is None or not takes_weights_of(saved):
            raise ValueError(f"cannot resume {resume.name}: its architecture differs from the recipe's")
        learning_rate /= 4
    rf = int(network.receptive_field)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    material = [
        make_program(recipe.clip_seconds, SAMPLE_RATE_HZ, rng, MATERIAL_KINDS) for _ in range(recipe.train_clips)
    ]
    source = CropSource(
        effect,
        material,
        rf,
        recipe.segment_samples,
        recipe.batch_size_on(device.device),
        seed,
        restart=restart,
        edge_share=recipe.edge_share,
        crop_gain_db=recipe.crop_gain_db,
    )
    validation_rng = np.random.default_rng(seed + 1_000_003)
    validation_clips = [
        make_program(recipe.heldout_seconds, SAMPLE_RATE_HZ, validation_rng, MATERIAL_KINDS) for _ in range(2)
    ]
    held = CropSource(
        effect, validation_clips, rf, recipe.segment_samples, recipe.batch_size, seed + 7, restart=restart
    )
    batches = [held.batch(0) for _ in range(2)]
    # The recipe's STFT sizes, but none that cannot frame a crop (its centre padding needs n_fft < 2 x the crop).
    mrstft = MultiResolutionSTFTLoss([n for n in recipe.fft_sizes if n < 2 * recipe.segment_samples])

    def spectral_terms(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MR-STFT plus the recipe's weighted level and band terms: what validation scores, so that a level-weighted
        run keeps what it gains there."""
        score = mrstft(estimate, target)
        if recipe.level_weight:
            score = score + recipe.level_weight * frame_level_distance_db(estimate, target)
        if recipe.band_weight:
            score = score + recipe.band_weight * band_level_distance_db(estimate, target, SAMPLE_RATE_HZ)
        return score

    def validate(model: nn.Module) -> float:
        """The held-out crops' :func:`spectral_terms`."""
        where = module_device(model)
        with torch.no_grad():
            scores = [spectral_terms(model(x.to(where), c.to(where)), y.to(where)).item() for x, c, y in batches]
        return float(np.mean(scores))

    def loss_fn(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = spectral_terms(estimate, target)
        if recipe.esr_weight:
            loss = loss + recipe.esr_weight * waveform_error(estimate, target, per_crop=recipe.esr_per_crop)
        return loss

    start_from = getattr(network, "start_from", None)
    if start_from is not None and resume is None:
        start_from(source.batch)

    def run(share: float, rate: float, warmup: float) -> FitResult:
        """Gradient descent for ``share`` of the recipe's budget."""
        return fit(
            network,
            source.batch,
            loss_fn,
            steps=max(1, round(recipe.steps * share)),
            max_seconds=recipe.minutes * 60 * share,
            learning_rate=rate,
            warmup_fraction=warmup,
            average_decay=recipe.average_decay,
            validate=validate,
            validate_every=max(1, min(50, recipe.steps // 4)),
            progress=progress,
            device=device.device,
        )

    finish_from = getattr(network, "finish_from", None)

    long_crops = (  # only for a network that measures a part after gradient descent
        CropSource(
            effect,
            material,
            rf,
            max(recipe.segment_samples, FINISH_SEGMENT_SAMPLES),
            recipe.batch_size,
            seed + 11,
            restart=restart,
            edge_share=recipe.edge_share,
            crop_gain_db=recipe.crop_gain_db,
        )
        if finish_from is not None
        else None
    )

    def finish() -> None:
        """``finish_from`` on the next crops of :data:`FINISH_SEGMENT_SAMPLES` samples."""
        assert finish_from is not None and long_crops is not None
        network.eval()
        finish_from(long_crops.batch)

    settle = float(getattr(network, "settle_fraction", 0.0)) if resume is None else 0.0
    hold_late_parts = getattr(network, "hold_late_parts", None)
    if settle and hold_late_parts is not None and finish_from is not None:
        hold_late_parts(True)
        settled = run(settle, learning_rate, recipe.warmup_fraction)
        hold_late_parts(False)
        finish()
        result = settled.then(run(1.0 - settle, learning_rate / 4, 0.0))
    else:
        result = run(1.0, learning_rate, recipe.warmup_fraction if resume is None else 0.0)
    if finish_from is not None:
        finish()
    verdict = judge(network, effect, heldout_clips(heldout_seconds, SAMPLE_RATE_HZ))
    sidecar = {
        "description": effect.description + _arch_note(arch),
        "sample_rate": SAMPLE_RATE_HZ,
        "tail_seconds": effect.tail_seconds,
        "knobs": [k.to_dict() for k in effect.knobs],
        "emulates": effect.describe(),
        "training": {
            "command": command
            or f"reatimbre train-effect --effect {name}" + ("" if arch == "ours" else f" --arch {arch}"),
            "arch": arch,
            "data": {
                "material": "models.material.make_program with the paper's test signals: notes, chords, plucks, "
                "drums, noise bursts, speech-like syllables, Vital notes, sines, squares, saws, chirps; "
                "levels -40..-1 dBFS with pauses",
                "train_clips": recipe.train_clips,
                "clip_seconds": recipe.clip_seconds,
                "pairs": "random crops, knob positions uniform in 0..1 (each at an end with the recipe's edge_share), "
                "target = reference effect on the crop"
                + (", which starts where the network's input starts" if restart else ""),
                "start": "measured on the training pairs before gradient descent (the network's start_from; its "
                "architecture record holds what was measured)"
                if start_from is not None and resume is None
                else ("the resumed model's weights" if resume is not None else "the network's initialisation"),
                "seed": seed,
                **(
                    {"finish": "measured on the training pairs after gradient descent (the network's finish_from)"}
                    if finish_from is not None
                    else {}
                ),
                **(
                    {
                        "stages": f"{settle:.0%} of the budget with the network's late parts held, then finish_from, "
                        "then the rest at a quarter of the learning rate (as a resumed run), then finish_from again"
                    }
                    if settle
                    else {}
                ),
            },
            "recipe": {k: v for k, v in asdict(recipe).items() if k != "config"},
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "device": device.record(),
            "stopped_because": result.stopped_because,
            "learning_rate": learning_rate,
            "resumed_from": resume.sidecar["training"] if resume is not None else None,
            "torch": torch.__version__,
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        "metrics": {
            "heldout": {  # grid means, in the shape every model's sidecar has (``reatimbre models`` shows it)
                who: {"mrstft": float(np.mean([p[f"mrstft_{who}"] for p in verdict["points"]]))}
                for who in ("model", "dry")
            },
            "heldout_other_origin": verdict,
            "validation_history": result.history,
        },
    }
    return save_model(network, sidecar, out_dir, model_name or model_name_for(name, arch))
