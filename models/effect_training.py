"""Train the shipped effect models (``reatimbre train-effect``) on generated material through real DSP effects.

Training pairs are made on the fly: a crop of generated material (``models.material``), random knob positions, and
the reference effect (``models.effects``) applied to the crop with enough warm-up that its state is settled. The
held-out set is material from a different seed, rendered whole (with the effect's tail) on a 3x3 grid of knob
positions; its MR-STFT, ESR and loudness error, for the model and for the dry input, go into the sidecar.

On CUDA each step takes ``cuda_batch_scale`` times the recipe's batch (same crop length): a GPU runs a batch of 16
crops about as fast as one of 2, so a step sees several times the material in the same time. The held-out set and
the validation crops stay the same on every device.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from models import evaluation
from models.device import (
    DeviceChoice,
    default_device,
    module_device,
)
from models.effects import ReferenceEffect, reference_effect
from models.fit import FitProgress, fit
from models.library import ModelInfo, NeuralEffect, load_info, save_model
from models.losses import PAPER_FFT_SIZES, MultiResolutionSTFTLoss, error_to_signal_ratio, frame_level_distance_db
from models.material import make_program
from models.networks import architecture_record
from models.pedals.biquads import BiquadConfig
from models.pedals.divider import DividerConfig
from models.pedals.drive import DriveConfig
from models.pedals.echo import EchoConfig
from models.pedals.swept_delay import SweptDelayConfig
from models.rates import SAMPLE_RATE_HZ
from models.reverb_fit import DecayCurveLoss, ResponseSource, ResponseView
from models.reverb_tail import ReverbTail, ReverbTailConfig
from models.tcn import ConditionedTCN, TCNConfig
from models.waveshaper import ConditionedWaveshaper, WaveshaperConfig


class PedalNetworkConfig(Protocol):
    """A pedal-board network's configuration (``models.pedals``): it builds its network for the effect it models
    (knob count, LFO, latency), and says how many samples of past input one output sample needs."""

    @property
    def receptive_field(self) -> int: ...

    def build(self, effect: ReferenceEffect) -> torch.nn.Module: ...


NetworkConfig = TCNConfig | ReverbTailConfig | WaveshaperConfig | PedalNetworkConfig
IMPULSE_LEVEL = 0.5  # peak of the click of a recipe's impulse rows


@dataclass(frozen=True)
class Recipe:
    """How to train one shipped effect."""

    config: NetworkConfig  # the network: a conditioned TCN, or a reverb's early response and banded tail
    segment_samples: int  # output samples per training example
    batch_size: int
    steps: int
    minutes: float
    esr_weight: float  # weight of the waveform (ESR) term beside the MR-STFT loss
    # Pedals only: the ESR of each crop, averaged (every crop counts alike whatever its level), rather than one ESR
    # over the whole batch (which the loudest crops dominate). For an effect whose response depends on level.
    esr_per_crop: bool = False
    level_weight: float = 0.0  # per dB of the frame-level term (losses.frame_level_distance_db), also in validation
    band_weight: float = 0.0  # per dB of the long-term band-level term (losses.band_level_distance_db); pedals only
    crop_gain_db: tuple[float, float] = (0.0, 0.0)  # a random gain on each crop, its peak kept at most CROP_PEAK_DB
    warmup_fraction: float = 0.0  # of the budget, learning rate rising linearly
    edge_share: float = 0.0  # chance that a knob's training position is its end (0 or 1, even odds), not uniform
    average_decay: float = 0.0  # per step, of the weight average that is validated and kept (0: none)
    learning_rate: float = 2e-3
    train_clips: int = 24
    heldout_clips: int = 6
    clip_seconds: float = 12.0
    heldout_seconds: float = 8.0
    grid: tuple[float, ...] = (0.1, 0.5, 0.9)  # knob positions of the held-out grid
    cuda_batch_scale: int = 1  # on CUDA a step takes batch_size * cuda_batch_scale crops
    fft_sizes: tuple[int, ...] = PAPER_FFT_SIZES  # of the training loss's MR-STFT (long ones teach a reverb's decay)
    impulse_rows: int = 0  # extra rows per batch whose dry is one click at the crop's start (a reverb's decay, bare)
    # A ReverbTail only: when > 0 each step fits the network's impulse response to the real effect's at this many
    # knob draws (models.reverb_fit) instead of rendering material crops; material crops still validate.
    response_rows: int = 0
    response_early_weight: float = 1.0  # of the early part's waveform error beside the decay curves (dB)

    def batch_size_on(self, device: torch.device) -> int:
        """Crops per training step on ``device``: the recipe's batch, scaled up on CUDA."""
        return self.batch_size * (self.cuda_batch_scale if device.type == "cuda" else 1)


RECIPES: dict[str, Recipe] = {
    # A gain path (output = input x gain + residual) with a gain computer over peak and RMS levels (0.02 to 93 ms),
    # as the steering recipe for dynamics: it starts as the identity and learns a gain in dB, where a plain TCN
    # rebuilding the waveform compressed too little (up to 6 LU too loud on the knob grid). The gain spans +-60 dB: at
    # threshold -50 dB and ratio 20 the real compressor takes 40 dB off the loudest passages, which a +-30 dB range
    # (saturating before it) left 1.3 LU too loud. Knobs sit at their ends often (the grid's corners).
    "compressor": Recipe(
        TCNConfig(
            channels=16,
            kernel_size=9,
            dilation_growth=10,
            layers=4,
            gain_path=True,
            level_input=True,
            level_windows=(1, 16, 64, 256, 1024, 4096),
            level_rms=True,
            gain_computer=16,
            max_gain_db=60.0,
        ),
        segment_samples=16_384,
        batch_size=4,
        steps=6000,
        minutes=25,
        esr_weight=1.0,
        level_weight=0.3,
        crop_gain_db=(-6.0, 24.0),
        edge_share=0.5,
        warmup_fraction=0.05,
        average_decay=0.99,
        cuda_batch_scale=8,
    ),
    # A waveshaper (a curve of tanh units, then a 128-tap FIR, both from the knobs) has the shape of the real chain
    # (a clipper, then a low-pass), where a TCN of the same training stayed 2.6 times closer than dry on sampled
    # instruments and 2 LU too loud at low tone. Crops up to 12 dB louder (mastered material peaks near 0 dBFS).
    "overdrive": Recipe(
        WaveshaperConfig(units=16, taps=128),
        segment_samples=4_096,
        batch_size=16,
        steps=12_000,
        minutes=25,
        esr_weight=1.0,
        level_weight=0.05,
        crop_gain_db=(-6.0, 12.0),
        edge_share=0.25,
        warmup_fraction=0.05,
        average_decay=0.99,
        cuda_batch_scale=4,
    ),
    # Trained on the real effect's impulse responses (models.reverb_fit), which hold its whole decay, rather than
    # on 0.74 s crops of material, which do not: the material-trained network's T60 hardly followed size (issue 31).
    # The early part (372 ms of free taps) carries most of a hall's energy as an exact waveform.
    "reverb": Recipe(
        ReverbTailConfig(
            sample_rate=SAMPLE_RATE_HZ,
            tail_seconds=4.0,
            early_taps=16_384,
            bands=10,
            cond_dim=2,
            cond_hidden=64,
            early_scale=0.01,
            fade_samples=2048,
        ),
        segment_samples=32_768,
        batch_size=4,
        steps=6000,
        minutes=30,
        esr_weight=0.0,
        learning_rate=5e-3,
        edge_share=0.25,
        average_decay=0.99,
        cuda_batch_scale=8,
        fft_sizes=(*PAPER_FFT_SIZES, 8192, 16384),
        impulse_rows=1,
        response_rows=4,
        response_early_weight=4.0,
    ),
}

# The pedal board's conditioned TCNs (issue 29, ``reatimbre train-effect --arch tcn``), trained by
# models.pedals.training on a CPU budget of minutes each.
PEDAL_TCN_RECIPES: dict[str, Recipe] = {
    "fuzz": Recipe(
        TCNConfig(
            channels=16,
            kernel_size=3,
            dilation_growth=2,
            layers=8,
            gain_path=True,
            level_input=True,
            level_windows=(1, 64, 512),
        ),
        segment_samples=4_096,
        batch_size=8,
        steps=3000,
        minutes=8,
        esr_weight=1.0,
        train_clips=12,
        cuda_batch_scale=4,
    ),
    "amp": Recipe(
        TCNConfig(channels=16, kernel_size=5, dilation_growth=4, layers=5),
        segment_samples=4_096,
        batch_size=8,
        steps=3000,
        minutes=8,
        esr_weight=1.0,
        train_clips=12,
        cuda_batch_scale=4,
    ),
    "octave": Recipe(
        TCNConfig(channels=16, kernel_size=5, dilation_growth=4, layers=5),
        segment_samples=4_096,
        batch_size=8,
        steps=3000,
        minutes=8,
        esr_weight=0.0,
        train_clips=12,
        cuda_batch_scale=4,
    ),
    "chorus": Recipe(
        TCNConfig(channels=12, kernel_size=5, dilation_growth=4, layers=5, cond_dim=3, out_channels=8),
        segment_samples=8_192,
        batch_size=4,
        steps=3000,
        minutes=8,
        esr_weight=0.0,
        train_clips=12,
        cuda_batch_scale=4,
    ),
    "delay": Recipe(
        TCNConfig(channels=8, kernel_size=9, dilation_growth=10, layers=5, cond_dim=3),
        segment_samples=32_768,
        batch_size=2,
        steps=3000,
        minutes=8,
        esr_weight=0.0,
        train_clips=12,
        cuda_batch_scale=8,
    ),
    "filter": Recipe(
        TCNConfig(channels=12, kernel_size=5, dilation_growth=4, layers=6),
        segment_samples=8_192,
        batch_size=4,
        steps=3000,
        minutes=8,
        esr_weight=1.0,
        train_clips=12,
        cuda_batch_scale=4,
    ),
}

# The pedal board's own networks (``--arch ours``, the default; the shipped pedals).
# Fuzz and amp: a gray-box drive chain (models.pedals.drive: a pre-filter, a tanh-unit curve and a post-filter of
# biquads and free taps, all from the knobs), the shape of both chains. Crops up to 12 dB louder and knobs often at
# their ends, as the overdrive's recipe; a 4096-point STFT in the loss for the low end. In 10 minutes on a loaded
# CPU the fuzz came closest with ESR 1.0 and level 0.2 (0.275 of dry, against 0.359 with ESR 0.25 and level 0.5),
# the amp the other way round (0.289 against 0.348); 8192-sample crops with an 8192-point STFT did worse for both.
DRIVE_RECIPE = Recipe(
    DriveConfig(),
    segment_samples=4_096,
    batch_size=8,
    steps=20_000,
    minutes=10,
    esr_weight=0.25,
    level_weight=0.5,
    crop_gain_db=(-6.0, 12.0),
    edge_share=0.25,
    warmup_fraction=0.02,
    average_decay=0.99,
    learning_rate=3e-3,
    train_clips=12,
    cuda_batch_scale=4,
    fft_sizes=(*PAPER_FFT_SIZES, 4096),  # 11 Hz bins: a cabinet's low resonance, a high-pass under the bass
)
RECIPES["fuzz"] = replace(DRIVE_RECIPE, esr_weight=1.0, level_weight=0.2, band_weight=0.5)

RECIPES["amp"] = replace(
    DRIVE_RECIPE,
    config=DriveConfig(output_eq_taps=4096, output_eq_fft=16_384, pre_highpass=True, settle_fraction=0.7),
    minutes=30,
    level_weight=1.5,
    band_weight=0.5,
)

# A gray-box divider (models.pedals.divider): a flip-flop divider as a fixed primitive, its detection low-pass and
# hysteresis measured on the training pairs, a knob-conditioned sub filter and dry gain measured, then learnt; the
# TCN (which cannot learn a divider) stayed at half the dry input's distance. A small learning rate: the measured
# start is already close, and 5e-3 first undid part of it.
RECIPES["octave"] = Recipe(
    DividerConfig(),
    segment_samples=4_096,
    batch_size=8,
    steps=4000,
    minutes=10,
    esr_weight=0.0,
    learning_rate=1e-3,
    warmup_fraction=0.02,
    average_decay=0.99,
    train_clips=12,
    cuda_batch_scale=4,
)

# A gray-box chorus (models.pedals.swept_delay): the input and one voice on an LFO-swept delay line, every part from
# the knobs, started from delays measured on the training pairs.
RECIPES["chorus"] = Recipe(
    SweptDelayConfig(),
    segment_samples=16_384,
    batch_size=4,
    steps=3000,
    minutes=8,
    esr_weight=1.0,
    train_clips=12,
    cuda_batch_scale=4,
)

# A gray-box echo (models.pedals.echo): the input and a feedback delay line, every part from the knobs, started from
# the echo delay and gains measured on the training pairs.
RECIPES["delay"] = Recipe(
    EchoConfig(),
    segment_samples=32_768,
    batch_size=4,
    steps=3000,
    minutes=8,
    esr_weight=1.0,
    learning_rate=5e-4,  # from a measured start that is already close: small steps
    train_clips=12,
    cuda_batch_scale=4,
)

# A gray-box filter (models.pedals.biquads): a curve, a cascade of second-order sections and a curve, all from the
# knobs, trained through the FFT of each crop with 16384 samples of warm-up (a resonant 150 Hz ladder rings that long).
# The real ladder's resonance falls when it is driven hard (cutoff 223 Hz, resonance 0.81: its peak is 16.4 dB on
# noise at -40 dBFS, 15.5 dB at -6 and 14.3 dB at -1), which one linear cascade cannot follow: its peak settles
# between the levels it is trained on. So each crop's ESR counts alike (one ESR over the batch is the loudest
# crops'), crops are 0 to 18 dB quieter than the programs (whose steady test signals up to -1 dBFS are far hotter
# than played material), and an 8192-point STFT (5 Hz bins) resolves the peak. Knobs at their ends half the time
# (rather than a quarter) did worse on the validation crops.
RECIPES["filter"] = Recipe(
    BiquadConfig(sections=3, units=8, receptive_field=16_384, level_trim_points=5),
    segment_samples=8_192,
    batch_size=8,
    steps=20_000,
    minutes=10,
    esr_weight=1.0,
    esr_per_crop=True,
    fft_sizes=(*PAPER_FFT_SIZES, 8192),
    level_weight=0.05,
    crop_gain_db=(-18.0, 0.0),
    edge_share=0.25,
    warmup_fraction=0.02,
    average_decay=0.99,
    learning_rate=5e-3,
    train_clips=12,
    cuda_batch_scale=4,
)


CROP_PEAK_DB = -0.5  # a crop's random gain never lifts its peak above this


def build_model(config: NetworkConfig) -> torch.nn.Module:
    """A freshly initialised network of a recipe's configuration."""
    if isinstance(config, ReverbTailConfig):
        return ReverbTail(config)
    if isinstance(config, WaveshaperConfig):
        return ConditionedWaveshaper(config)
    if isinstance(config, TCNConfig):
        return ConditionedTCN(config)
    raise ValueError(f"a {type(config).__name__} is built by models.pedals.training, for its effect")


class PairSource:
    """Random (dry, control, wet) training crops of ``clips`` through a reference effect."""

    def __init__(
        self,
        effect: ReferenceEffect,
        recipe: Recipe,
        clips: list[np.ndarray],
        seed: int,
        batch_size: int | None = None,
    ):
        self.effect = effect
        self.recipe = recipe
        self.batch_size = batch_size or recipe.batch_size
        self.rf = recipe.config.receptive_field
        self.warm = int(effect.memory_seconds * SAMPLE_RATE_HZ)
        self.rng = np.random.default_rng(seed)
        self.pad = self.warm + self.rf
        self.clips = [np.concatenate([np.zeros(self.pad, np.float32), clip]) for clip in clips]

    def _example(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        length = self.recipe.segment_samples
        for _ in range(8):
            clip = self.clips[self.rng.integers(len(self.clips))]
            end = int(self.rng.integers(self.pad + length, len(clip) + 1))
            window = self._gained(clip[end - length - self.rf + 1 - self.warm : end])
            positions = self._positions()
            values = {k.name: k.value_at(p) for k, p in zip(self.effect.knobs, positions, strict=True)}
            wet = self.effect.process(window[None, :], SAMPLE_RATE_HZ, values)[0, -length:]
            if np.sqrt(np.mean(wet**2)) > 1e-4:
                break
        return window[self.warm :], positions.astype(np.float32), wet

    def _positions(self) -> np.ndarray:
        """Knob positions in 0..1: uniform, except that each knob sits at one of its ends with the recipe's
        ``edge_share`` (the ends, where a one-sided fit is weakest and users often leave a knob)."""
        count = len(self.effect.knobs)
        positions = self.rng.random(count)
        at_end = self.rng.random(count) < self.recipe.edge_share
        return np.where(at_end, (self.rng.random(count) < 0.5).astype(float), positions)

    def _gained(self, window: np.ndarray) -> np.ndarray:
        """``window`` at a random gain from the recipe's range (louder and denser than the programs' levels for a
        compressor), lowered where it would peak above :data:`CROP_PEAK_DB`."""
        low, high = self.recipe.crop_gain_db
        if low == high == 0.0:
            return window
        gain = 10 ** (self.rng.uniform(low, high) / 20)
        peak = float(np.max(np.abs(window)))
        if peak > 0:
            gain = min(gain, 10 ** (CROP_PEAK_DB / 20) / peak)
        return (window * gain).astype(np.float32)

    def _impulse(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A click at the crop's first output sample, at random knob positions, and the effect's response."""
        length = self.recipe.segment_samples
        window = np.zeros(self.warm + self.rf - 1 + length, np.float32)
        window[self.warm + self.rf - 1] = IMPULSE_LEVEL
        positions = self.rng.random(len(self.effect.knobs))
        values = {k.name: k.value_at(p) for k, p in zip(self.effect.knobs, positions, strict=True)}
        wet = self.effect.process(window[None, :], SAMPLE_RATE_HZ, values)[0, -length:]
        return window[self.warm :], positions.astype(np.float32), wet

    def batch(self, _step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        examples = [self._example() for _ in range(self.batch_size)]
        examples += [self._impulse() for _ in range(self.recipe.impulse_rows)]
        xs, cs, ys = zip(*examples, strict=True)
        return (
            torch.from_numpy(np.stack(xs))[:, None, :],
            torch.from_numpy(np.stack(cs)),
            torch.from_numpy(np.stack(ys))[:, None, :],
        )


def training_material(recipe: Recipe, seed: int) -> list[np.ndarray]:
    """The training programs."""
    rng = np.random.default_rng(seed)
    return [make_program(recipe.clip_seconds, SAMPLE_RATE_HZ, rng) for _ in range(recipe.train_clips)]


def heldout_material(recipe: Recipe, seed: int) -> list[np.ndarray]:
    """Held-out programs, from a seed the training material never uses."""
    rng = np.random.default_rng(seed + 1_000_003)
    return [make_program(recipe.heldout_seconds, SAMPLE_RATE_HZ, rng) for _ in range(recipe.heldout_clips)]


def evaluate(
    model: NeuralEffect, effect: ReferenceEffect, clips: list[np.ndarray], grid: tuple[float, ...]
) -> dict[str, dict[str, float]]:
    """Held-out figures for the model and for the dry input, each clip on every knob-grid point, tails included."""
    tail = np.zeros(int(effect.tail_seconds * SAMPLE_RATE_HZ), np.float32)
    model_rows, dry_rows = [], []
    for clip, positions in itertools.product(clips, itertools.product(grid, repeat=len(effect.knobs))):
        values = {k.name: k.value_at(p) for k, p in zip(effect.knobs, positions, strict=True)}
        dry = np.concatenate([clip, tail])[None, :]
        target = effect.process(dry, SAMPLE_RATE_HZ, values)
        model_rows.append(evaluation.compare(model.process(dry, values), target, SAMPLE_RATE_HZ))
        dry_rows.append(evaluation.compare(dry, target, SAMPLE_RATE_HZ))
    return {"model": evaluation.mean_metrics(model_rows), "dry": evaluation.mean_metrics(dry_rows)}


def _validation_fn(
    effect: ReferenceEffect, recipe: Recipe, heldout: list[np.ndarray], seed: int
) -> Callable[[torch.nn.Module], float]:
    """MR-STFT (plus the recipe's level term) on a fixed batch of held-out crops, for model selection while
    training, on the model's device."""
    held = PairSource(effect, recipe, heldout, seed + 7)
    batches = [held.batch(0) for _ in range(2)]
    mrstft = MultiResolutionSTFTLoss()

    def score(estimate: torch.Tensor, target: torch.Tensor) -> float:
        value = mrstft(estimate, target)
        if recipe.level_weight:
            value = value + recipe.level_weight * frame_level_distance_db(estimate, target)
        return float(value.item())

    def validate(model: torch.nn.Module) -> float:
        device = module_device(model)
        return float(np.mean([score(model(x.to(device), c.to(device)), y.to(device)) for x, c, y in batches]))

    return validate


def _widened_gain(saved: torch.nn.Module, config: NetworkConfig) -> ConditionedTCN | None:
    """``saved`` with its gain path widened to ``config``'s range, when that range is all that differs from the
    recipe's network (a warm start: :meth:`ConditionedTCN.with_gain_range`); None otherwise."""
    if not (isinstance(saved, ConditionedTCN) and isinstance(config, TCNConfig) and saved.config.gain_path):
        return None
    if saved.config.max_gain_db == config.max_gain_db:
        return None
    if replace(saved.config, max_gain_db=config.max_gain_db) != config:
        return None
    return saved.with_gain_range(config.max_gain_db)


def _pairs_description(recipe: Recipe) -> str:
    """The sidecar's line on what each training step sees."""
    ends = f" (each at an end with chance {recipe.edge_share:g})" if recipe.edge_share else ""
    if recipe.response_rows:
        return (
            f"{recipe.response_rows} impulse responses per step, knob positions uniform in 0..1{ends}, target = the "
            "reference effect's response to a click (models.reverb_fit: energy decay curves per band and the early "
            "waveform); material crops validate"
        )
    gains = (
        f"; each crop at a random gain of {recipe.crop_gain_db[0]:g} to {recipe.crop_gain_db[1]:g} dB "
        f"(its peak at most {CROP_PEAK_DB:g} dBFS)"
        if recipe.crop_gain_db != (0.0, 0.0)
        else ""
    )
    return f"random crops, knob positions uniform in 0..1{ends}, target = reference effect on the crop{gains}"


def _material_loss(recipe: Recipe) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss on rendered material crops: MR-STFT (the recipe's FFT sizes) plus its ESR and level terms."""
    mrstft = MultiResolutionSTFTLoss(recipe.fft_sizes)

    def loss_fn(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = mrstft(estimate, target)
        if recipe.esr_weight:
            # Pooled over the batch so that one quiet crop cannot dominate the step.
            loss = loss + recipe.esr_weight * error_to_signal_ratio(estimate.reshape(1, -1), target.reshape(1, -1))
        if recipe.level_weight:
            loss = loss + recipe.level_weight * frame_level_distance_db(estimate, target)
        return loss

    return loss_fn


def _response_training(
    model: torch.nn.Module, effect: ReferenceEffect, recipe: Recipe, seed: int, device: torch.device, start: bool
) -> tuple[ResponseView, Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]], DecayCurveLoss]:
    """What :func:`models.fit.fit` trains when the recipe fits impulse responses: the network seen as knobs ->
    response, batches of real responses at random knob draws, and the decay-curve loss. With ``start`` (a fresh
    network) the network first takes the real response at knob positions 0."""
    if not isinstance(model, ReverbTail) or not isinstance(recipe.config, ReverbTailConfig):
        raise ValueError("training on impulse responses needs a ReverbTail network")
    length = recipe.config.tail_length
    responses = ResponseSource(effect, length, SAMPLE_RATE_HZ, seed, recipe.edge_share)
    if start:
        # from the real response at knob positions 0 (its band levels, decays and early taps): a network that starts
        # as the identity would first raise its decays to their ceiling, where the sigmoid no longer learns
        model.start_from(responses.responses(np.zeros((1, len(effect.knobs))))[0], np.zeros(length))
    rows = recipe.response_rows * (recipe.cuda_batch_scale if device.type == "cuda" else 1)
    loss = DecayCurveLoss(recipe.config, length, early_weight=recipe.response_early_weight).to(device)
    return ResponseView(model), responses.next_batch(rows), loss


def train_effect(
    name: str,
    out_dir: Path,
    *,
    recipe: Recipe | None = None,
    seed: int = 0,
    command: str | None = None,
    progress: Callable[[FitProgress], None] | None = None,
    model_name: str | None = None,
    resume: ModelInfo | None = None,
    device: DeviceChoice | None = None,
    bf16: bool = False,
) -> ModelInfo:
    """Train a model of the reference effect ``name`` and save it (with its sidecar) into ``out_dir``
    as ``model_name`` (default: the effect's name). ``resume`` continues from a saved model of the same recipe
    (at a quarter of the learning rate); its training record is kept in the new sidecar. ``device`` (default: the
    CPU) is where it trains; ``bf16`` autocasts its forward passes (CUDA only)."""
    effect = reference_effect(name)
    recipe = recipe or RECIPES[name]
    device = device or default_device()
    batch_size = recipe.batch_size_on(device.device)
    torch.manual_seed(seed)
    source = PairSource(effect, recipe, training_material(recipe, seed), seed, batch_size)
    heldout = heldout_material(recipe, seed)
    model = build_model(recipe.config)
    learning_rate = recipe.learning_rate
    widened_from_db = None  # the gain range of a resumed network whose range the recipe widens
    if resume is not None:
        saved = load_info(resume).model
        widened = _widened_gain(saved, recipe.config)
        if widened is not None:
            assert isinstance(saved, ConditionedTCN)  # _widened_gain widens only these
            widened_from_db, saved = saved.config.max_gain_db, widened
        # Both records complete and as JSON has them: a sidecar may leave out settings at their defaults, and JSON
        # turns tuples (a TCN's level windows) into lists.
        if json.loads(json.dumps(architecture_record(saved))) != json.loads(json.dumps(architecture_record(model))):
            raise ValueError(f"cannot resume {resume.name}: its architecture differs from the recipe's")
        model.load_state_dict(saved.state_dict())
        learning_rate /= 4
    material_score = _validation_fn(effect, recipe, heldout, seed)

    def validate(trained: torch.nn.Module) -> float:
        """Held-out material crops pick the weights, also when the network trains on impulse responses."""
        return material_score(trained.network if isinstance(trained, ResponseView) else trained)

    trained: torch.nn.Module = model
    next_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = source.batch
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    if recipe.response_rows:
        trained, next_batch, loss_fn = _response_training(model, effect, recipe, seed, device.device, resume is None)
    else:
        loss_fn = _material_loss(recipe)
    result = fit(
        trained,
        next_batch,
        loss_fn,
        steps=recipe.steps,
        max_seconds=recipe.minutes * 60,
        learning_rate=learning_rate,
        warmup_fraction=recipe.warmup_fraction if resume is None else 0.0,
        average_decay=recipe.average_decay,
        validate=validate,
        validate_every=max(1, min(100, recipe.steps // 4)),
        progress=progress,
        device=device.device,
        bf16=bf16,
    )
    knobs = list(effect.knobs)
    draft = ModelInfo(name, "user", Path(), {"sample_rate": SAMPLE_RATE_HZ, "knobs": [k.to_dict() for k in knobs]})
    metrics = evaluate(NeuralEffect(draft, model), effect, heldout, recipe.grid)
    sidecar = {
        "description": effect.description,
        "sample_rate": SAMPLE_RATE_HZ,
        "tail_seconds": effect.tail_seconds,
        "knobs": [k.to_dict() for k in knobs],
        "emulates": effect.describe(),
        "training": {
            "command": command or f"reatimbre train-effect --effect {name}",
            "data": {
                "material": "models.material.make_program: notes, chords, plucks, drums, noise bursts, "
                "speech-like syllables, Vital notes; levels -40..-1 dBFS with pauses",
                "train_clips": recipe.train_clips,
                "clip_seconds": recipe.clip_seconds,
                "pairs": _pairs_description(recipe),
                "seed": seed,
            },
            "recipe": {k: v for k, v in asdict(recipe).items() if k != "config"},
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "device": device.record(),
            "bf16": bf16,
            "resumed_from": resume.sidecar["training"] if resume is not None else None,
            **(
                {"gain_range_widened": f"+-{widened_from_db:g} dB to +-{recipe.config.max_gain_db:g} dB at the start"}
                if widened_from_db is not None and isinstance(recipe.config, TCNConfig)
                else {}
            ),
            "stopped_because": result.stopped_because,
            "torch": torch.__version__,
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        "metrics": {
            "heldout": metrics,
            "heldout_set": {
                "clips": recipe.heldout_clips,
                "clip_seconds": recipe.heldout_seconds,
                "tail_seconds": effect.tail_seconds,
                "knob_grid_positions": list(recipe.grid),
                "seed": seed + 1_000_003,
            },
            "mrstft_fft_sizes": [32, 128, 512, 2048],
            "validation_history": result.history,
        },
    }
    return save_model(model, sidecar, out_dir, model_name or name)
