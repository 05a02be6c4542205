"""Steer a new neural effect from one dry/wet pair (Steinmetz & Reiss 2021), fast on a laptop CPU.

The pair (see :mod:`models.steer_pair`) is split in time into training, validation and held-out parts. The
conditioned TCN, with its receptive field matched to the effect's memory, learns to turn the dry into the wet
while its two controls are held at 0, with the paper's multi-resolution STFT loss; after steering, the controls
become two knobs in [-5, 5] whose effect the user can explore (:mod:`models.explore`). Training stops at the time
budget or on a validation plateau and keeps the best weights (Ctrl-C too). The model is saved into the user's
library with a sidecar that records the pair, what was done to it, and the held-out error beside the dry input's.

Speed choices, for 2 CPU cores: 16 channels instead of the paper's 32 (a quarter of the convolution work), long
training crops so little compute goes on receptive-field context, skipping silent crops, a learning-rate warm-up
and cosine decay over the time budget, and a moving average of the weights as the model that is validated and kept.
The TCN has a gain path (:class:`models.tcn.TCNConfig`): it starts as the identity, so training begins at the dry
input's error, and level changes are a bounded gain to learn rather than a waveform to rebuild. The short recipe
adds a waveform (ESR) term to the loss and takes the gain from a level detector rather than from the TCN: peak and
RMS levels over windows of 1 sample to 93 ms, and a per-sample gain computer over them
(:class:`models.tcn.GainComputer`). With the gain from the TCN over per-sample log levels, a steered compressor
compressed a steady square wave 7 dB harder than the real one (noise of the same peak 1 dB less) and, after every
pause, let loud onsets through for milliseconds (its dilated taps still saw the silence); on the compressor pair of
``benchmarks/steer_speed.py`` (2,255 steps, one thread) other material's MR-STFT was 2.3 times the held-out error
(0.417 against 0.184). With the detector and gain computer: 0.102 against 0.089-0.093 (1.10-1.14, two training
seeds), and on the seed-1 pair 0.146 against 0.140 (1.04, was 0.368 against 0.315).

A reverb (``--memory auto`` finds a long, dense impulse response; :mod:`models.steer_memory`) gets the ``reverb``
recipe instead: a :class:`models.reverb_tail.ReverbTail`, whose impulse response (a learned early part and a 4.5 s
tail of decaying noise per octave band) is predicted from the controls and applied by FFT convolution. A 2-second
TCN cannot hold a 2.5 s hall's tail; this network holds a 3 s T60 at the cost of an FFT per crop. Its loss adds
FFT sizes of 8192 and 16384 to the paper's, whose log magnitudes follow each band's decay. It does not start as
the dry sound but from the pair's impulse response as ``--memory auto`` estimated it (regularised deconvolution over
2 s): its first 0.5 s as the early taps, and each band's gain and T60 fitted to that band's decay above the
estimate's noise floor (:meth:`models.reverb_tail.ReverbTail.start_from`); training then refines the whole.

On CUDA (``device``) each step takes ``cuda_batch_scale`` times the recipe's crops: on an H200 a step of 16 short
crops runs at about the speed of one of 2 (issue 27's measurements), so a step sees 8 times the material. The
validation and held-out parts are rendered on the same device; the time budget is the same on every device.
"""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models import evaluation
from models.device import DeviceChoice, default_device, module_device
from models.errors import ReaTimbreError
from models.fit import FitProgress, fit
from models.knobs import Knob
from models.library import SHIPPED_DIR, ModelInfo, check_model_name, save_model
from models.losses import PAPER_FFT_SIZES, MultiResolutionSTFTLoss, error_to_signal_ratio
from models.reverb_tail import ReverbTail, ReverbTailConfig
from models.steer_memory import MemoryChoice, choose_memory, estimate_response_outside
from models.steer_pair import AudioSource, Pair, prepare_pair
from models.tcn import ConditionedTCN, TCNConfig
from models.userdirs import user_models_dir

STEER_KNOBS = (
    Knob("c1", "", -5.0, 5.0, 0.0, conditioning="raw", description="steering control 1 (0: the steered effect)"),
    Knob("c2", "", -5.0, 5.0, 0.0, conditioning="raw", description="steering control 2 (0: the steered effect)"),
)
VALIDATION_SHARE = 0.1  # of the pair, where it has signal, as near the middle as that allows
HELDOUT_SHARE = 0.15  # of the pair, where it has signal, as near the end as that allows
ACTIVE_BELOW_PEAK_DB = 40.0  # a 10 ms frame is signal when the dry or wet is within this of the pair's loudest
ACTIVITY_FRAME_SECONDS = 0.01
ACTIVITY_TIE = 0.02  # windows whose shares of signal differ by less than this count as equal
CLEARLY_BETTER_RATIO = 0.9  # the model's held-out MR-STFT must be below this share of the dry input's
SILENT_CROP_RMS = 1e-4  # training crops whose target is quieter than this (-80 dBFS) are drawn again
EVALUATION_RESERVE_SECONDS = 10.0  # of the time budget kept for the held-out evaluation and saving


@dataclass(frozen=True)
class SteerRecipe:
    """How a steered model of one memory class is built and trained."""

    config: TCNConfig | ReverbTailConfig
    segment_samples: int  # output samples per training crop
    batch_size: int
    learning_rate: float
    warmup_fraction: float  # of the budget, learning rate rising linearly
    average_decay: float  # per step, of the weight average that is validated and kept (0: none)
    esr_weight: float  # waveform (ESR) term beside the MR-STFT loss
    validate_every: int  # steps
    patience: int  # validations without improvement before stopping
    cuda_batch_scale: int = 1  # on CUDA a step takes batch_size * cuda_batch_scale crops
    fft_sizes: tuple[int, ...] = PAPER_FFT_SIZES  # of the training loss's MR-STFT

    def batch_size_on(self, device: torch.device) -> int:
        """Crops per training step on ``device``: the recipe's batch, scaled up on CUDA."""
        return self.batch_size * (self.cuda_batch_scale if device.type == "cuda" else 1)


RECIPES: dict[str, SteerRecipe] = {
    # ~294 ms receptive field (202 ms of convolutions, 93 ms of level windows): dynamics, distortion, filters.
    "short": SteerRecipe(
        TCNConfig(
            channels=16,
            kernel_size=9,
            dilation_growth=10,
            layers=4,
            gain_path=True,
            level_input=True,
            level_windows=(1, 16, 64, 256, 1024, 4096),  # 0.02 ms .. 93 ms
            level_rms=True,
            gain_computer=16,
        ),
        segment_samples=16_384,
        batch_size=2,
        learning_rate=2e-3,
        warmup_fraction=0.1,
        average_decay=0.99,
        esr_weight=0.5,
        validate_every=60,
        patience=15,
        cuda_batch_scale=8,
    ),
    # ~2.0 s receptive field: reverb, delay.
    "long": SteerRecipe(
        TCNConfig(channels=16, kernel_size=9, dilation_growth=10, layers=5, gain_path=True),
        segment_samples=131_072,
        batch_size=1,
        learning_rate=5e-3,
        warmup_fraction=0.1,
        average_decay=0.9,
        esr_weight=0.0,
        validate_every=40,
        patience=8,
        cuda_batch_scale=8,
    ),
    # A reverb's impulse response, predicted from the controls: a 22,050-tap early part (0.5 s, started from the
    # pair's measured response, which is coherent that far) and a 4.5 s tail of decaying
    # noise in 10 octave bands (T60 up to 3 s). Long FFTs in the loss teach each band's decay.
    "reverb": SteerRecipe(
        ReverbTailConfig(tail_seconds=4.5, early_taps=22_050, bands=10, cond_dim=2, early_scale=0.05),
        segment_samples=32_768,
        batch_size=4,
        learning_rate=2e-3,
        warmup_fraction=0.05,
        average_decay=0.9,
        esr_weight=0.0,
        validate_every=20,
        patience=25,  # a hall keeps improving slowly: with 10, the seed-1 Hall stopped at 166 s at 0.533
        cuda_batch_scale=8,
        fft_sizes=(*PAPER_FFT_SIZES, 8192, 16384),
    ),
}
SteeredNetwork = ConditionedTCN | ReverbTail


@dataclass(frozen=True)
class Regions:
    """Target-sample ranges of the pair: where training crops may end, validation, and held-out."""

    train: tuple[tuple[int, int], ...]
    validation: tuple[int, int]
    heldout: tuple[int, int]


def signal_frames(pair: Pair) -> np.ndarray:
    """Per 10 ms frame of the pair: True where the dry or the wet is within 40 dB of the pair's loudest frame."""
    frame = int(ACTIVITY_FRAME_SECONDS * pair.sample_rate)
    count = pair.dry.shape[1] // frame
    levels = [
        10 * np.log10(np.mean(np.square(a[:, : count * frame].reshape(a.shape[0], count, frame)), axis=(0, 2)) + 1e-20)
        for a in (pair.dry, pair.wet)
    ]
    level = np.maximum(*levels)
    return level > level.max() - ACTIVE_BELOW_PEAK_DB


def _best_window(share: Callable[[int], float], starts: list[int], prefer: Callable[[int], float]) -> int:
    """The start with the largest share of signal; near-ties (ACTIVITY_TIE) go to the preferred position."""
    best = max(share(s) for s in starts)
    return min((s for s in starts if share(s) >= best - ACTIVITY_TIE), key=prefer)


def split_regions(samples: int, active: np.ndarray | None = None) -> Regions:
    """Held-out (15 %) and validation (10 %) windows where the pair has signal, training everywhere else.

    ``active`` marks the frames with signal (equal frames spanning the pair; None: all of it). Of the windows
    with the largest share of signal (within 2 %), the held-out one is the latest and the validation one, outside
    it, the nearest to the middle: on a pair with signal throughout, the last 15 % and the middle 10 %.
    """
    active = np.ones(100, bool) if active is None or not active.any() else np.asarray(active, bool)
    frames = active.size
    cumulative = np.concatenate([[0], np.cumsum(active)])
    to_samples = samples / frames

    def window(share_of_pair: float, taken: tuple[int, int] | None, prefer: Callable[[int], float]) -> tuple[int, int]:
        length = max(1, int(round(share_of_pair * frames)))
        step = max(1, frames // 200)
        starts = [s for s in range(0, frames - length + 1, step)] + [frames - length]
        if taken is not None:
            starts = [s for s in starts if s + length <= taken[0] or s >= taken[1]]
        start = _best_window(lambda s: (cumulative[s + length] - cumulative[s]) / length, starts, prefer)
        return start, start + length

    held = window(HELDOUT_SHARE, None, lambda s: -s)
    middle = frames / 2
    length = max(1, int(round(VALIDATION_SHARE * frames)))
    valid = window(VALIDATION_SHARE, held, lambda s: abs(s + length / 2 - middle))
    heldout = (int(held[0] * to_samples), samples if held[1] == frames else int(held[1] * to_samples))
    validation = (int(valid[0] * to_samples), int(valid[1] * to_samples))
    edges = sorted([(0, 0), validation, heldout, (samples, samples)])
    train = tuple((a[1], b[0]) for a, b in zip(edges, edges[1:], strict=False) if b[0] > a[1])
    return Regions(train, validation, heldout)


class CropSource:
    """Random training crops from the training regions of a pair: (dry with context, zero control, wet)."""

    def __init__(self, pair: Pair, regions: Regions, recipe: SteerRecipe, seed: int, batch_size: int | None = None):
        self.rf = recipe.config.receptive_field
        self.dry = np.pad(pair.dry, ((0, 0), (self.rf - 1, 0)))  # silence before the start, as when rendering
        self.wet = pair.wet
        longest = max(end - start for start, end in regions.train)
        self.length = min(recipe.segment_samples, longest)
        self.spans = [(s, e) for s, e in regions.train if e - s >= self.length]
        weights = np.array([e - s - self.length + 1 for s, e in self.spans], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.batch_size = batch_size or recipe.batch_size
        self.rng = np.random.default_rng(seed)

    def _crop(self) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(16):
            start, end = self.spans[self.rng.choice(len(self.spans), p=self.weights)]
            first = int(self.rng.integers(start, end - self.length + 1))
            channel = int(self.rng.integers(self.dry.shape[0]))
            target = self.wet[channel, first : first + self.length]
            if np.sqrt(np.mean(np.square(target))) > SILENT_CROP_RMS:
                break
        return self.dry[channel, first : first + self.length + self.rf - 1], target

    def batch(self, _step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dry, wet = zip(*(self._crop() for _ in range(self.batch_size)), strict=True)
        return (
            torch.from_numpy(np.stack(dry))[:, None, :],
            torch.zeros(self.batch_size, len(STEER_KNOBS)),
            torch.from_numpy(np.stack(wet))[:, None, :],
        )


def render_region(model: SteeredNetwork, dry: np.ndarray, region: tuple[int, int]) -> np.ndarray:
    """The model's output (channels, samples) for target samples ``region`` of ``dry``, controls at 0, rendered on
    the model's device."""
    rf = model.receptive_field
    start, end = region
    padded = np.pad(dry, ((0, 0), (rf - 1, 0)))
    device = module_device(model)
    x = torch.from_numpy(np.ascontiguousarray(padded[:, start : end + rf - 1]))[:, None, :].to(device)
    with torch.inference_mode():
        return model(x, torch.zeros(x.shape[0], len(STEER_KNOBS), device=device))[:, 0, :].cpu().numpy()


def _validation_fn(pair: Pair, region: tuple[int, int]) -> Callable[[SteeredNetwork], float]:
    target = torch.from_numpy(np.ascontiguousarray(pair.wet[:, region[0] : region[1]]))
    mrstft = MultiResolutionSTFTLoss()
    return lambda model: float(mrstft(torch.from_numpy(render_region(model, pair.dry, region)), target))


def heldout_metrics(model: SteeredNetwork, pair: Pair, region: tuple[int, int]) -> dict[str, dict[str, float]]:
    """MR-STFT, ESR and loudness error on the held-out part, for the model and for the dry input."""
    start, end = region
    target = pair.wet[:, start:end]
    return {
        "model": evaluation.compare(render_region(model, pair.dry, region), target, pair.sample_rate),
        "dry": evaluation.compare(pair.dry[:, start:end], target, pair.sample_rate),
    }


@dataclass(frozen=True)
class Verdict:
    """Whether the steered model is clearly closer to the wet than doing nothing (the dry input) is."""

    ratio: float  # model's held-out MR-STFT / the dry input's
    worse_than_dry: bool  # not clearly better: ratio >= CLEARLY_BETTER_RATIO
    message: str


def run_summary(
    name: str,
    pair: Pair,
    metrics: dict,
    verdict: Verdict,
    receptive_field_samples: int,
    steps: int,
    seconds: float,
    stopped_because: str,
    memory: str,
) -> dict:
    """What a steering run reports, whether its model is saved or not: the held-out verdict against the dry input,
    the pair's alignment and how training went (``path``/``saved`` are filled in once the model is saved)."""
    return {
        "model": name,
        "path": None,
        "saved": False,
        "worse_than_dry": verdict.worse_than_dry,
        "heldout_ratio_to_dry": verdict.ratio,
        "message": verdict.message,
        "heldout_mrstft": metrics["model"]["mrstft"],
        "heldout_dry_mrstft": metrics["dry"]["mrstft"],
        "heldout": metrics,
        "latency_samples": pair.latency_samples,
        "latency_seconds": pair.latency_samples / pair.sample_rate,
        "memory": memory,
        "receptive_field_samples": receptive_field_samples,
        "steps": steps,
        "seconds": seconds,
        "stopped_because": stopped_because,
        "notes": pair.notes,
    }


def judge_against_dry(model_mrstft: float, dry_mrstft: float, memory: str, minutes: float) -> Verdict:
    """The verdict on a steered model, with a suggestion in plain words when it is not clearly better than dry."""
    ratio = model_mrstft / dry_mrstft if dry_mrstft > 0 else math.inf
    if ratio < CLEARLY_BETTER_RATIO:
        return Verdict(round(ratio, 4), False, f"held-out error {ratio:.2f} of the dry input's: the model is better")
    if dry_mrstft <= 0:
        return Verdict(math.inf, True, "the wet is identical to the dry on the held-out part: nothing to learn")
    than = "worse than" if ratio >= 1.0 else "hardly better than"
    tries = [] if memory != "short" else ["--memory long (if the effect has a tail or echoes)"]
    tries += [f"more --minutes than {minutes:g}", "a longer pair with more varied material"]
    return Verdict(
        round(ratio, 4),
        True,
        f"the steered model is {than} doing nothing: its held-out error is {ratio:.2f} times the dry input's "
        f"(a model must get below {CLEARLY_BETTER_RATIO:g}). Try {', '.join(tries[:-1])} or {tries[-1]}.",
    )


def _loss_fn(recipe: SteerRecipe, crop_samples: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The recipe's loss on crops of ``crop_samples`` (FFT sizes over twice the crop are left out)."""
    mrstft = MultiResolutionSTFTLoss([n for n in recipe.fft_sizes if n // 2 < crop_samples] or [min(recipe.fft_sizes)])

    def loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = mrstft(estimate, target)
        if recipe.esr_weight:
            value = value + recipe.esr_weight * error_to_signal_ratio(estimate.reshape(1, -1), target.reshape(1, -1))
        return value

    return loss


def _start_reverb(
    model: ReverbTail, pair: Pair, regions: Regions, validate: Callable[[SteeredNetwork], float], say: Callable
) -> dict[str, list[float]] | None:
    """Start the reverb network from the impulse response of the pair's training part (validation and held-out
    parts silenced) if that beats starting as the dry sound on the validation part; the fitted bands, or None."""
    dry_start = validate(model)
    before = copy.deepcopy(model.state_dict())
    fitted = model.start_from(*estimate_response_outside(pair, (regions.validation, regions.heldout)))
    measured_start = validate(model)
    if measured_start >= dry_start:
        model.load_state_dict(before)
        say(
            f"reverb network starts as the dry sound (the measured impulse response validates at "
            f"{measured_start:.3f}, the dry start at {dry_start:.3f})"
        )
        return None
    t60s = ", ".join(f"{t:.2f}" for t in fitted["t60_seconds"]) or "none measurable"
    say(
        f"reverb network started from the pair's impulse response (validation {measured_start:.3f}, the dry start "
        f"{dry_start:.3f}): band T60s {t60s} s"
    )
    return fitted


def check_new_model_name(name: str, overwrite: bool = False, directory: Path | None = None) -> Path:
    """The directory a steered model called ``name`` goes to; refuses clashes before any training is done."""
    check_model_name(name)
    directory = directory or user_models_dir()
    if (SHIPPED_DIR / f"{name}.json").exists():
        raise ReaTimbreError(f"{name!r} is a shipped effect; choose another name")
    if not overwrite and ((directory / f"{name}.json").exists() or (directory / f"{name}.safetensors").exists()):
        raise ReaTimbreError(f"a user effect called {name!r} already exists; choose another name or use --overwrite")
    return directory


def _describe(source: AudioSource) -> str:
    return "array" if isinstance(source, np.ndarray) else str(Path(source).resolve())


def steer_model(
    dry: AudioSource,
    wet: AudioSource,
    name: str,
    memory: str = "auto",
    minutes: float = 3.0,
    progress: Callable[[FitProgress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    *,
    sample_rate: int | None = None,
    report: Callable[[str], None] | None = None,
    keep_latency: bool = False,
    overwrite: bool = False,
    steps: int | None = None,
    directory: Path | None = None,
    seed: int = 0,
    recipe: SteerRecipe | None = None,
    device: DeviceChoice | None = None,
    bf16: bool = False,
    keep_anyway: bool = False,
) -> dict:
    """Steer a new effect from ``dry`` and ``wet`` (paths, or arrays with ``sample_rate``) and save it as ``name``.

    ``progress`` gets each training step's loss and time left; ``report`` gets one line per decision (offset
    removed, memory chosen, ...). Returns a summary with the model's name and its held-out MR-STFT beside the dry
    input's. Everything is checked before training, and nothing is written unless training produced a model.
    ``recipe`` replaces the chosen memory class's recipe (e.g. a smaller model for tests). ``device`` (default: the
    CPU) is where it trains and is evaluated; ``bf16`` autocasts the training forward passes (CUDA only).

    A model whose held-out MR-STFT is not below :data:`CLEARLY_BETTER_RATIO` of the dry input's is not saved unless
    ``keep_anyway``: the summary then has ``worse_than_dry`` true, ``saved`` false and a ``message`` in plain words
    with what to try (it goes to ``report`` too).
    """
    say = report or (lambda _line: None)
    device = device or default_device()
    if bf16 and not device.is_cuda:
        raise ReaTimbreError(f"bf16 needs CUDA; {device.describe()}")
    if not isinstance(minutes, (int, float)) or not math.isfinite(minutes) or not 0.05 <= minutes <= 240:
        raise ReaTimbreError(f"minutes must be between 0.05 and 240, got {minutes!r}")
    directory = check_new_model_name(name, overwrite, directory)

    def check_cancel() -> None:  # between the stages before training (training itself polls should_cancel)
        if should_cancel is not None and should_cancel():
            raise ReaTimbreError("steering cancelled")

    pair = prepare_pair(dry, wet, sample_rate, keep_latency=keep_latency)
    check_cancel()
    for note in pair.notes:
        say(note)
    choice: MemoryChoice = choose_memory(pair, memory)
    check_cancel()
    say(choice.reason)
    recipe = recipe or RECIPES[choice.memory]
    regions = split_regions(pair.dry.shape[1], signal_frames(pair))

    torch.manual_seed(seed)
    model: SteeredNetwork = (
        ReverbTail(recipe.config) if isinstance(recipe.config, ReverbTailConfig) else ConditionedTCN(recipe.config)
    )
    validate = _validation_fn(pair, regions.validation)
    start = _start_reverb(model, pair, regions, validate, say) if isinstance(model, ReverbTail) else None
    batch_size = recipe.batch_size_on(device.device)
    source = CropSource(pair, regions, recipe, seed, batch_size)
    say(f"{device.describe()}; {batch_size} crops of {source.length} samples per step" + (", bf16" if bf16 else ""))
    budget_seconds = max(5.0, minutes * 60 - EVALUATION_RESERVE_SECONDS)
    result = fit(
        model,
        source.batch,
        _loss_fn(recipe, source.length),
        steps=steps or 1_000_000,
        max_seconds=budget_seconds,
        learning_rate=recipe.learning_rate,
        warmup_fraction=recipe.warmup_fraction,
        average_decay=recipe.average_decay,
        validate=validate,
        validate_every=max(1, min(recipe.validate_every, (steps or 1_000_000) // 2)),
        patience=recipe.patience,
        progress=progress,
        should_stop=should_cancel,
        device=device.device,
        bf16=bf16,
    )
    if result.stopped_because == "cancelled":
        raise ReaTimbreError("steering cancelled; no model was saved")
    metrics = heldout_metrics(model, pair, regions.heldout)
    verdict = judge_against_dry(metrics["model"]["mrstft"], metrics["dry"]["mrstft"], choice.memory, minutes)
    if isinstance(model, ReverbTail):
        tail_seconds = model.config.tail_seconds  # the impulse response's length
    else:
        tail_seconds = 0.0 if choice.memory == "short" else round(min(5.0, max(2.0, choice.tail_seconds or 0.0)), 2)
    rate = pair.sample_rate
    sidecar = {
        "description": f"Steered from {Path(_describe(dry)).name} -> {Path(_describe(wet)).name}",
        "sample_rate": rate,
        "tail_seconds": tail_seconds,
        "knobs": [k.to_dict() for k in STEER_KNOBS],
        "steered": {
            "dry": _describe(dry),
            "wet": _describe(wet),
            "pair_seconds": round(pair.seconds, 3),
            "removed_latency_samples": pair.latency_samples,
            "removed_latency_seconds": round(pair.latency_samples / rate, 6),
            "correlation": round(pair.correlation, 4),
            "memory": choice.memory,
            "memory_reason": choice.reason,
            "measured_tail_seconds": choice.tail_seconds,
            "memory_evidence": choice.evidence,
            "notes": pair.notes,
        },
        "training": {
            "method": "steering (Steinmetz & Reiss 2021): controls held at 0 on one dry/wet pair",
            "recipe": {k: v for k, v in asdict(recipe).items() if k != "config"},
            "regions_samples": asdict(regions),
            "started_from_impulse_response": start,
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "stopped_because": result.stopped_because,
            "seed": seed,
            "batch_size": batch_size,
            "device": device.record(),
            "bf16": bf16,
            "torch": torch.__version__,
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        "metrics": {
            "heldout": metrics,
            "heldout_set": {
                "part": "15 % of the aligned pair where it has signal (latest such window)",
                "samples": regions.heldout,
            },
            "heldout_ratio_to_dry": verdict.ratio,
            "worse_than_dry": verdict.worse_than_dry,
            "kept_anyway": verdict.worse_than_dry,
            "mrstft_fft_sizes": [32, 128, 512, 2048],
            "validation_history": result.history,
        },
    }
    summary = {
        **run_summary(name, pair, metrics, verdict, model.receptive_field, result.steps, result.seconds,
                      result.stopped_because, choice.memory),
        "memory_reason": choice.reason,
        "device": device.name(),
    }  # fmt: skip
    if verdict.worse_than_dry and not keep_anyway:
        return summary
    info: ModelInfo = save_model(model, sidecar, directory, name)
    return {**summary, "model": info.name, "path": str(info.weights_path), "saved": True}
