"""Training the multi-task VAE on match-data folders (one per synth), with a time budget.

Batches draw training clips of every synth uniformly (or with each synth's share of a batch set by
``synth_share_power``); the loss is spectrogram MSE + ``param_weight`` × the masked
parameter loss + the warm-up KL weight × KL. Every ``validate_every`` steps the validation clips (patches the
training never sees) are scored without sampling; the weights with the best validation loss are kept (in the
``separate`` variant, each synth's VAE from the step where its own synth's validation loss was lowest). With
``average_decay`` > 0 it is an exponential moving average of the weights that is validated and kept. Ctrl-C (or
SIGTERM) stops training at once and keeps the best weights validated so far, as :func:`models.fit.fit` does.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from models.asp.data import MatchData
from models.asp.losses import hypotheses_loss, kl_divergence, kl_weight, spectrogram_loss
from models.asp.nets import Architecture, AspModel
from models.errors import ReaTimbreError
from models.fit import INTERRUPTED, terminate_as_interrupt, update_average
from models.synth.spaces import Layout


@dataclass(frozen=True)
class TrainSettings:
    variant: str = "joint_encoder"
    latent: int = 64
    channels: int = 16
    hidden: int = 128
    batch: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seconds: float = 300.0
    max_steps: int = 1_000_000
    warmup_steps: int = 500
    beta: float = 1e-3
    param_weight: float = 1.0
    continuous_weight: float = 20.0  # see models.asp.losses.parameter_loss; 20 measured better than 1 (docs/match.md)
    hypotheses: int = 1  # whole patches each parameter decoder proposes (models.asp.nets)
    choice_weight: float = 0.5  # weight of the hypotheses' score loss, beside the parameter loss
    cosine_decay: bool = True  # learning rate from its value to 0 over the budget (steps or seconds)
    synth_share_power: float = 1.0  # a synth's share of each batch ∝ its training clips ** this (see batch_rows)
    average_decay: float = 0.0  # > 0: validate and keep a moving average of the weights (this decay per step)
    validate_every: int = 100
    seed: int = 0

    def validate(self) -> None:
        if self.batch < 1 or self.max_steps < 1 or self.validate_every < 1:
            raise ReaTimbreError("batch, steps and validation interval must be positive")
        if not self.seconds > 0 or not self.learning_rate > 0:
            raise ReaTimbreError("the time budget and learning rate must be positive")
        if (
            self.beta < 0
            or self.param_weight < 0
            or self.warmup_steps < 0
            or self.weight_decay < 0
            or self.continuous_weight < 0
            or self.choice_weight < 0
        ):
            raise ReaTimbreError("beta, parameter and continuous weights, warm-up and weight decay must be 0 or more")
        if not 0.0 <= self.average_decay < 1.0:
            raise ReaTimbreError(f"the weight average's decay must be 0..1 (0: none), got {self.average_decay}")
        if not 0.0 <= self.synth_share_power <= 1.0:
            raise ReaTimbreError(f"the synths' share power must be 0..1, got {self.synth_share_power}")
        if self.channels < 2 or self.channels % 2 or self.hidden < 1:
            raise ReaTimbreError("channels must be an even number of 2 or more, hidden 1 or more")


@dataclass
class Pooled:
    """Clips of several synths in one set of arrays (parameter vectors zero-padded)."""

    mel: np.ndarray  # float16 (n, 128, 88)
    params: np.ndarray  # float32 (n, padded)
    synth: np.ndarray  # int64 (n,)
    split: np.ndarray


def pool(datasets: Sequence[MatchData]) -> tuple[Pooled, tuple[Layout, ...]]:
    layouts = tuple(Layout.from_json(d.space["layout"]) for d in datasets)
    padded = max(layout.size for layout in layouts)
    params = np.zeros((sum(len(d.note) for d in datasets), padded), dtype=np.float32)
    start = 0
    for d in datasets:
        params[start : start + len(d.note), : d.params.shape[1]] = d.params
        start += len(d.note)
    return (
        Pooled(
            mel=np.concatenate([d.mel_db80 for d in datasets]),
            params=params,
            synth=np.concatenate([np.full(len(d.note), s, dtype=np.int64) for s, d in enumerate(datasets)]),
            split=np.concatenate([d.split for d in datasets]),
        ),
        layouts,
    )


def row_probabilities(synth: np.ndarray, power: float) -> np.ndarray | None:
    """Sampling probabilities of training rows whose synths are ``synth``, so that a synth's share of a batch is
    proportional to its clip count raised to ``power``: 1 draws clips uniformly (a synth with many clips fills most
    of each batch), 0.5 by the square root, 0 each synth equally. None where that is uniform."""
    counts = np.bincount(synth)
    present = counts > 0
    if power == 1.0 or present.sum() < 2:
        return None
    share = np.zeros(len(counts))
    share[present] = counts[present].astype(np.float64) ** power
    probabilities = share[synth] / counts[synth]  # each synth's rows together hold its share
    return probabilities / probabilities.sum()


def batch_rows(rng: np.random.Generator, rows: np.ndarray, size: int, probabilities: np.ndarray | None) -> np.ndarray:
    """One batch of training rows: uniform without replacement, or drawn with ``probabilities`` (with replacement:
    a row of a synth with few clips may come twice)."""
    if probabilities is None:
        return rng.choice(rows, min(size, len(rows)), replace=False)
    return rng.choice(rows, size, replace=True, p=probabilities)


def batch_tensors(data: Pooled, rows: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(data.mel[rows].astype(np.float32)).to(device),
        torch.from_numpy(data.params[rows]).to(device),
        torch.from_numpy(data.synth[rows]).to(device),
    )


def losses(
    model: AspModel, batch: tuple[torch.Tensor, ...], settings: TrainSettings, beta: float, sample: bool = True
) -> dict[str, torch.Tensor]:
    """The training loss and its parts, each a mean over the batch's rows."""
    mel, params, synth = batch
    out = model(mel, synth, sample=sample)
    spec = spectrogram_loss(out.mel, mel)
    param, choice = hypotheses_loss(
        out.hypotheses, out.scores, params, synth, model.architecture.layouts, settings.continuous_weight
    )
    kl = kl_divergence(out.mu, out.logvar)

    def total(spec: torch.Tensor, param: torch.Tensor, choice: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
        return spec + settings.param_weight * (param + settings.choice_weight * choice) + beta * kl

    values = {
        "total": total(spec, param, choice, kl),
        "spectrogram": spec,
        "parameters": param,
        "choice": choice,
        "kl": kl,
    }
    if not sample:  # validation: each synth's own losses too, to see which synth stops improving when
        for s, name in enumerate(model.architecture.synths):
            rows = torch.nonzero(synth == s).flatten()
            if rows.numel():
                param_s, choice_s = hypotheses_loss(
                    out.hypotheses[rows],
                    out.scores[rows],
                    params[rows],
                    synth[rows],
                    model.architecture.layouts,
                    settings.continuous_weight,
                )
                values[f"parameters_{name}"] = param_s
                values[f"total_{name}"] = total(
                    spectrogram_loss(out.mel[rows], mel[rows]),
                    param_s,
                    choice_s,
                    kl_divergence(out.mu[rows], out.logvar[rows]),
                )
    return values


@torch.no_grad()
def evaluate_loss(
    model: AspModel, data: Pooled, rows: np.ndarray, settings: TrainSettings, device: torch.device
) -> dict[str, float]:
    """Mean losses over ``rows`` without sampling; ``parameters_<synth>`` and ``total_<synth>`` are means over that
    synth's rows."""
    model.eval()
    synths = model.architecture.synths
    synth_of = {f"{part}_{name}": s for s, name in enumerate(synths) for part in ("parameters", "total")}
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}  # the rows each sum covers: a per-synth value is a mean over that synth's rows
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        values = losses(model, batch_tensors(data, chunk, device), settings, settings.beta, sample=False)
        chunk_synths = np.bincount(data.synth[chunk], minlength=len(synths))
        for key, value in values.items():
            weight = int(chunk_synths[synth_of[key]]) if key in synth_of else len(chunk)
            sums[key] = sums.get(key, 0.0) + float(value) * weight
            counts[key] = counts.get(key, 0) + weight
    model.train()
    return {key: total / max(1, counts[key]) for key, total in sums.items()}


def vae_keys(model: AspModel, synth: int) -> list[str]:
    """The state-dict keys of one synth's own VAE in the ``separate`` variant (its encoder, spectrogram decoder
    and parameter decoder)."""
    prefixes = tuple(f"{part}.{synth}." for part in ("encoders", "spectrogram_decoders", "parameter_decoders"))
    return [key for key in model.state_dict() if key.startswith(prefixes)]


class BestWeights:
    """The weights with the lowest validation loss seen so far. In the ``separate`` variant each synth's VAE is
    an independent model, so each keeps the step where its own synth's validation loss was lowest (a pooled loss
    would stop every VAE where the sum is lowest, after a synth with few patches has started to overfit); the
    joint variants share weights across synths and keep the step with the lowest pooled loss."""

    def __init__(self, model: AspModel) -> None:
        self.per_synth = model.architecture.variant == "separate"
        self.state = copy.deepcopy(model.state_dict())
        self.pooled: dict[str, Any] = {"total": float("inf")}
        self.synth_steps: dict[str, int] = {}
        self._synth_loss: dict[str, float] = {}
        self._vae_keys = [vae_keys(model, s) for s in range(len(model.architecture.synths))] if self.per_synth else []

    def offer(self, model: AspModel, validation: dict[str, float], step: int) -> None:
        if not self.per_synth:
            if validation["total"] < self.pooled["total"]:
                self.state, self.pooled = copy.deepcopy(model.state_dict()), {**validation, "step": step}
            return
        state = model.state_dict()
        kept, steps, losses = dict(self.state), dict(self.synth_steps), dict(self._synth_loss)
        for s, name in enumerate(model.architecture.synths):
            loss = validation.get(f"total_{name}")  # None: no validation clip of this synth, keep its latest
            if loss is None or loss < losses.get(name, float("inf")):
                if loss is not None:
                    losses[name] = loss
                steps[name] = step
                for key in self._vae_keys[s]:
                    kept[key] = state[key].detach().clone()
        self.state, self.synth_steps, self._synth_loss = kept, steps, losses  # one step's offer, whole or not at all


def learning_rate_at(settings: TrainSettings, step: int, seconds: float) -> float:
    """The learning rate after ``step`` steps and ``seconds`` of training: constant, or a half cosine from
    ``learning_rate`` to 0 over whichever budget (steps or wall-clock seconds) is the nearer to its end."""
    if not settings.cosine_decay:
        return settings.learning_rate
    done = min(1.0, max(step / settings.max_steps, seconds / settings.seconds))
    return settings.learning_rate * 0.5 * (1.0 + math.cos(math.pi * done))


def train_asp(
    datasets: Sequence[MatchData],
    settings: TrainSettings,
    device: torch.device | str = "cpu",
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[AspModel, dict[str, Any]]:
    """Train one variant on the datasets' training clips; returns the best-validation model and a report."""
    settings.validate()
    device = torch.device(device)
    if len({d.synth for d in datasets}) != len(datasets):
        raise ReaTimbreError("give one match-data folder per synth")
    data, layouts = pool(datasets)
    train_rows = np.flatnonzero(data.split == 0)
    val_rows = np.flatnonzero(data.split == 1)
    if not len(train_rows) or not len(val_rows):
        raise ReaTimbreError("the data needs training and validation clips (render more patches)")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    architecture = Architecture(
        settings.variant,
        tuple(d.synth for d in datasets),
        layouts,
        settings.latent,
        settings.channels,
        settings.hidden,
        settings.hypotheses,
    )
    model = AspModel(architecture).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    average = copy.deepcopy(model) if settings.average_decay > 0 else None
    judged = average if average is not None else model  # the weights that are validated and kept
    kept = BestWeights(judged)
    probabilities = row_probabilities(data.synth[train_rows], settings.synth_share_power)
    started = time.perf_counter()
    step = 0
    validated_at = -1
    stopped_because = "step budget"
    try:
        with terminate_as_interrupt():
            while step < settings.max_steps:
                if time.perf_counter() - started >= settings.seconds:
                    stopped_because = "time budget"
                    break
                rows = batch_rows(rng, train_rows, settings.batch, probabilities)
                kl = kl_weight(step, settings.warmup_steps, settings.beta)
                values = losses(model, batch_tensors(data, rows, device), settings, kl)
                for group in optimiser.param_groups:
                    group["lr"] = learning_rate_at(settings, step, time.perf_counter() - started)
                optimiser.zero_grad()
                values["total"].backward()
                optimiser.step()
                step += 1
                if average is not None:
                    update_average(average, model, min(settings.average_decay, step / (step + 10)))
                if step % settings.validate_every == 0 or step == settings.max_steps:
                    validation = evaluate_loss(judged, data, val_rows, settings, device)
                    kept.offer(judged, validation, step)
                    validated_at = step
                    if on_progress is not None:
                        on_progress(
                            {
                                "step": step,
                                "seconds": time.perf_counter() - started,
                                "train": float(values["total"].detach()),
                                "validation": validation,
                            }
                        )
    except KeyboardInterrupt:
        if validated_at < 0:
            raise  # nothing validated yet: nothing worth keeping
        stopped_because = INTERRUPTED  # the weights may be mid-update: keep only what was validated
    if validated_at != step and stopped_because != INTERRUPTED:
        kept.offer(judged, evaluate_loss(judged, data, val_rows, settings, device), step)
    model.load_state_dict(kept.state)
    best = kept.pooled
    if kept.per_synth:  # the VAEs come from different steps: score them together as kept
        best = {**evaluate_loss(model, data, val_rows, settings, device), "step": max(kept.synth_steps.values())}
        best["synth_steps"] = dict(kept.synth_steps)
    model.eval()
    report = {
        "settings": asdict(settings),
        "steps": step,
        "stopped_because": stopped_because,
        "seconds": round(time.perf_counter() - started, 1),
        "best_validation": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in best.items()},
        "clips": {
            d.synth: {split: int(np.sum(d.split == i)) for i, split in enumerate(("train", "validation", "test"))}
            for d in datasets
        },
        "data": [d.folder for d in datasets],
    }
    return model, report
