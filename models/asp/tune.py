"""Tuning a trained matcher by ear: its parameter decoders fine-tuned on how their guesses render.

The parameter losses of :mod:`models.asp.losses` reward a guess that is near the true patch, slot by slot; a user
hears its render. Where many settings sound alike (an FM voice, a human preset) the regression's guess lands
between them, near in parameters and far in sound (docs/history/match-30.md). Tuning optimises what is heard:
the log-spectral distance (dB, :func:`models.metrics.lsd_db`) between the render of each training clip's guess at
the clip's note and the clip itself.

The synths are not differentiable, so the gradient is estimated from renders. Per clip, ``pairs`` antithetic pairs
``p + sigma * e`` and ``p - sigma * e`` around the guess's continuous slots ``p`` (0..1 units, clipped) give the
evolution-strategies estimate ``mean((LSD+ - LSD-) * e) / (2 sigma)`` of the distance's gradient at ``p``; each pair
plays one class per one-hot group, drawn from the decoder's probabilities sharpened by ``temperature``, and those
draws learn by REINFORCE (the pair's mean distance against the clip's mean over its pairs). Only the parameter
decoders learn by default: the encoder, whose latent means are then computed once, and the spectrogram decoder
stay as trained, so the latent and the other synths' guesses (for a decoder of one synth) do not move. With
``encoder`` the encoders learn too (the latent means are computed afresh each step), so a latent that blurs sounds
apart (the joint encoder's nearest latent is a farther-sounding patch than its nearest spectrogram) can sharpen; a
shared encoder or decoder is tuned only with the data of every synth it serves. Where classes sound alike (or a
synth's renders vary more than its classes do, as Kars's plucks), REINFORCE wanders between them; ``class_anchor``
adds the true classes' cross-entropy, weighted, so the tie goes to the truth.

The synths take turns by wall-clock time (the one tuned least so far goes next), as their renders cost from under
1 ms (Kars) to about 26 ms (Vital). Every ``validate_seconds`` each synth's one guess is rendered for its fixed
validation clips; each decoder (with ``encoder``: each group of modules that share synths) keeps the weights whose
validation distance (the mean over the synths it serves) was the smallest, starting from the trained weights, so
tuning never hands back a decoder that validated worse than it came. Ctrl-C or SIGTERM stops it with what was
validated so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.asp.data import MatchData
from models.asp.nets import AspModel, prediction_vector
from models.errors import ReaTimbreError
from models.fit import INTERRUPTED, terminate_as_interrupt
from models.synth.spaces import Layout

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
"""``map(fn, items)`` in item order: in this process or a :func:`models.scaleout.worker_pool`."""

RenderTask = tuple[str, np.ndarray, int, np.ndarray]
"""Synth name, encoded patch vectors (n, k), MIDI note, target dB-mel/80 (128, 88)."""

Measure = Callable[[RenderTask], list[float]]
"""A module-level function: a :data:`RenderTask` → each vector's render distance (LSD, dB) from the target."""


@dataclass(frozen=True)
class TuneSettings:
    """How a matcher is tuned by ear (units in the names; see the module docstring)."""

    seconds: float
    sigma: float = 0.05  # step of the antithetic pairs, in 0..1 units of each continuous slot
    pairs: int = 6  # antithetic pairs per clip (two renders each)
    batch: int = 24  # clips per step
    learning_rate: float = 2e-4
    temperature: float = 0.7  # the class draws' sharpening: probabilities ** (1 / temperature)
    validate_seconds: float = 60.0
    validation_clips: int = 100  # per synth, fixed for the whole run
    training_clips: int = 20_000  # per synth: the clips whose latent means are computed and tuned on
    max_steps: int = 1_000_000
    seed: int = 0
    encoder: bool = False  # the encoders learn too (else only the parameter decoders)
    class_anchor: float = 0.0  # weight of the true classes' cross-entropy (nats) beside the heard distance

    def validate(self) -> None:
        if not self.seconds > 0:
            raise ReaTimbreError(f"the tuning time must be positive, got {self.seconds} s")
        if not 0.0 < self.sigma <= 0.5:
            raise ReaTimbreError(f"sigma must be in (0, 0.5], got {self.sigma}")
        if self.pairs < 1 or self.batch < 1 or self.validation_clips < 1 or self.training_clips < 1:
            raise ReaTimbreError("pairs, batch, validation clips and training clips must be at least 1")
        if not self.learning_rate > 0 or not self.temperature > 0 or not self.validate_seconds > 0:
            raise ReaTimbreError("the learning rate, temperature and validation interval must be positive")
        if not self.class_anchor >= 0:
            raise ReaTimbreError(f"the class anchor must be 0 or more, got {self.class_anchor}")


@dataclass(eq=False)
class _Synth:
    """One synth's part of a tuning run (compared by identity)."""

    name: str
    index: int  # in the model
    layout: Layout
    data: MatchData
    train_rows: np.ndarray
    train_latents: torch.Tensor | None  # latent means, when the encoder stays as trained
    validation_rows: np.ndarray
    validation_latents: torch.Tensor | None
    seconds: float = 0.0
    steps: int = 0
    validation_lsd_db: float = float("nan")  # the latest
    trained_lsd_db: float = float("nan")  # the trained weights'


def render_distances(task: RenderTask) -> list[float]:
    """The match synths' :data:`Measure`: each vector decoded to the synth's patch, rendered as the training clips
    were (:func:`models.asp.infer.render_mel`) and compared with the target (LSD, dB)."""
    from models.asp.data import worker_synth
    from models.asp.infer import render_mel
    from models.metrics import lsd_db

    name, vectors, note, target = task
    synth = worker_synth(name)
    return [float(lsd_db(render_mel(synth, synth.space.decode(vector), note), target)) for vector in vectors]


def _decoder_raw(model: AspModel, latents: torch.Tensor, index: int) -> torch.Tensor:
    """Raw parameter outputs (B, padded) of synth ``index`` for latent means."""
    synth = torch.full((latents.shape[0],), index, dtype=torch.long)
    raw, _ = model.decode_hypotheses(latents, synth)
    return raw[:, 0]


@torch.no_grad()
def _latent_means(model: AspModel, data: MatchData, rows: np.ndarray, index: int) -> torch.Tensor:
    return torch.cat([_encoded(model, data, rows[start : start + 256], index) for start in range(0, len(rows), 256)])


def _encoded(model: AspModel, data: MatchData, rows: np.ndarray, index: int) -> torch.Tensor:
    """Latent means (B, latent) of the clips ``rows`` of synth ``index`` (with gradients, if enabled)."""
    mel = torch.from_numpy(data.mel_db80[rows].astype(np.float32))
    return model.encode(mel, torch.full((mel.shape[0],), index, dtype=torch.long))[0]


def _targets(data: MatchData, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
    return [(int(data.note[r]), data.mel_db80[r].astype(np.float32)) for r in rows]


@torch.no_grad()
def _validation_lsd_db(model: AspModel, part: _Synth, measure: Measure, mapper: Mapper) -> float:
    """Mean LSD (dB) of the one guess (latent mean; decoding takes each group's likeliest class) over the synth's
    validation clips."""
    latents = part.validation_latents
    if latents is None:
        latents = _latent_means(model, part.data, part.validation_rows, part.index)
    vectors = prediction_vector(_decoder_raw(model, latents, part.index), part.layout).numpy()
    tasks = [
        (part.name, vectors[i : i + 1], note, target)
        for i, (note, target) in enumerate(_targets(part.data, part.validation_rows))
    ]
    return float(np.mean([distances[0] for distances in mapper(measure, tasks)]))


def _step(
    model: AspModel,
    part: _Synth,
    settings: TuneSettings,
    rng: np.random.Generator,
    optimiser: torch.optim.Optimizer,
    measure: Measure,
    mapper: Mapper,
) -> float:
    """One step on a batch of the synth's training clips; returns the batch's mean render distance (dB)."""
    layout = part.layout
    picked = rng.integers(len(part.train_rows), size=settings.batch)
    if part.train_latents is None:
        latents = _encoded(model, part.data, part.train_rows[picked], part.index)
    else:
        latents = part.train_latents[picked]
    raw = _decoder_raw(model, latents, part.index)
    vector = prediction_vector(raw, layout)
    continuous = np.asarray(layout.continuous, dtype=np.int64)
    guess = vector.detach().numpy().astype(np.float64)
    noise = rng.standard_normal((settings.batch, settings.pairs, len(continuous)))
    classes = np.zeros((settings.batch, settings.pairs, len(layout.groups)), dtype=np.int64)
    tasks = []
    for b, row in enumerate(part.train_rows[picked]):
        vectors = np.empty((settings.pairs * 2, layout.size), dtype=np.float32)
        for k in range(settings.pairs):
            drawn = guess[b].copy()
            for g, (start, count) in enumerate(layout.groups):
                weights = np.clip(guess[b, start : start + count], 1e-12, None) ** (1.0 / settings.temperature)
                classes[b, k, g] = rng.choice(count, p=weights / weights.sum())
                drawn[start : start + count] = 0.0
                drawn[start + classes[b, k, g]] = 1.0
            for j, sign in enumerate((1.0, -1.0)):
                if len(continuous):
                    drawn[continuous] = np.clip(guess[b, continuous] + sign * settings.sigma * noise[b, k], 0.0, 1.0)
                vectors[2 * k + j] = drawn
        tasks.append((part.name, vectors, int(part.data.note[row]), part.data.mel_db80[row].astype(np.float32)))
    distances = np.asarray(mapper(measure, tasks)).reshape(settings.batch, settings.pairs, 2)
    loss = raw.new_zeros(())
    if len(continuous):
        slope = ((distances[:, :, 0] - distances[:, :, 1])[:, :, None] * noise).mean(axis=1) / (2.0 * settings.sigma)
        index = torch.from_numpy(continuous)
        loss = loss + (vector[:, index] * torch.from_numpy(slope).float()).sum() / settings.batch
    if layout.groups:
        pair_distance = distances.mean(axis=2)
        advantage = torch.from_numpy(pair_distance - pair_distance.mean(axis=1, keepdims=True)).float()
        for g, (start, count) in enumerate(layout.groups):
            log_p = torch.log_softmax(raw[:, start : start + count] / settings.temperature, dim=1)
            drawn_log_p = log_p.gather(1, torch.from_numpy(classes[:, :, g]))
            loss = loss + (drawn_log_p * advantage).sum() / (settings.batch * settings.pairs)
        if settings.class_anchor:  # where classes sound alike, the true one breaks the tie
            truth = torch.from_numpy(part.data.params[part.train_rows[picked]].astype(np.float32))
            for start, count in layout.groups:
                true_class = truth[:, start : start + count].argmax(dim=1)
                cross_entropy = nn.functional.cross_entropy(raw[:, start : start + count], true_class)
                loss = loss + settings.class_anchor * cross_entropy / len(layout.groups)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return float(distances.mean())


def tune_by_ear(
    model: AspModel,
    datasets: Sequence[MatchData],
    settings: TuneSettings,
    mapper: Mapper,
    measure: Measure = render_distances,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Tune ``model``'s parameter decoders (in place) for the synths of ``datasets``, rendering through
    ``measure`` mapped by ``mapper``; returns a report. In the report, a synth's ``validation_lsd_db_tuned`` is
    its distance when the kept weights were validated (a synth whose renders vary, as Kars's plucks do, measures a
    little differently each time)."""
    settings.validate()
    if model.architecture.hypotheses != 1:
        raise ReaTimbreError("tuning by ear needs a model with one hypothesis per decoder")
    if len({d.synth for d in datasets}) != len(datasets):
        raise ReaTimbreError("give one match-data folder per synth")
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    model.eval()
    parts: list[_Synth] = []
    for data in datasets:
        index = model.synth_index(data.synth)
        layout = model.architecture.layouts[index]
        if Layout.from_json(data.space["layout"]) != layout:
            raise ReaTimbreError(
                f"{data.folder}: its {data.synth} parameters are not the ones this model was trained on"
            )
        train, validation = data.rows("train"), data.rows("validation")
        if not len(train) or not len(validation):
            raise ReaTimbreError(f"{data.folder} needs training and validation clips")
        train = np.sort(rng.choice(train, min(len(train), settings.training_clips), replace=False))
        validation = np.sort(rng.choice(validation, min(len(validation), settings.validation_clips), replace=False))
        fixed = not settings.encoder
        parts.append(
            _Synth(
                data.synth,
                index,
                layout,
                data,
                train,
                _latent_means(model, data, train, index) if fixed else None,
                validation,
                _latent_means(model, data, validation, index) if fixed else None,
            )
        )
    for module in model.parameters():
        module.requires_grad_(False)
    tuned = _tuned_units(model, parts, settings.encoder)
    params = [p for unit in tuned for module in unit.modules for p in module.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.Adam(params, lr=settings.learning_rate)
    kept = {i: unit.state() for i, unit in enumerate(tuned)}
    kept_lsd: dict[int, float] = {}
    kept_at: dict[int, int] = {i: 0 for i in kept}
    kept_synth_lsd: dict[str, float] = {}

    def validate(step: int) -> None:
        for part in parts:
            part.validation_lsd_db = _validation_lsd_db(model, part, measure, mapper)
            if step == 0:
                part.trained_lsd_db = part.validation_lsd_db
        for i, unit in enumerate(tuned):
            score = float(np.mean([p.validation_lsd_db for p in unit.served]))
            if score < kept_lsd.get(i, float("inf")):
                kept_lsd[i], kept_at[i], kept[i] = score, step, unit.state()
                kept_synth_lsd.update({p.name: p.validation_lsd_db for p in unit.served})

    started = time.perf_counter()
    step, stopped_because = 0, "step budget"
    try:
        with terminate_as_interrupt():
            validate(0)
            validated = time.perf_counter()
            while step < settings.max_steps:
                if time.perf_counter() - started >= settings.seconds:
                    stopped_because = "time budget"
                    break
                part = min(parts, key=lambda p: p.seconds)
                began = time.perf_counter()
                batch_lsd = _step(model, part, settings, rng, optimiser, measure, mapper)
                part.seconds += time.perf_counter() - began
                part.steps += 1
                step += 1
                if time.perf_counter() - validated >= settings.validate_seconds:
                    validate(step)
                    validated = time.perf_counter()
                    if on_progress is not None:
                        on_progress(
                            {
                                "step": step,
                                "seconds": time.perf_counter() - started,
                                "batch_lsd_db": batch_lsd,
                                "validation_lsd_db": {p.name: p.validation_lsd_db for p in parts},
                            }
                        )
            validate(step)  # the last steps' weights
    except KeyboardInterrupt:
        if not kept_lsd:
            raise  # nothing validated yet
        stopped_because = INTERRUPTED
    for i, state in kept.items():
        tuned[i].load(state)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return {
        "settings": asdict(settings),
        "steps": step,
        "stopped_because": stopped_because,
        "seconds": round(time.perf_counter() - started, 1),
        "synths": {
            part.name: {
                "steps": part.steps,
                "seconds": round(part.seconds, 1),
                "training_clips": len(part.train_rows),
                "validation_clips": len(part.validation_rows),
                "validation_lsd_db_trained": round(part.trained_lsd_db, 3),
                "validation_lsd_db_tuned": round(kept_synth_lsd[part.name], 3),
                "kept_at_step": kept_at[next(i for i, unit in enumerate(tuned) if part in unit.served)],
            }
            for part in parts
        },
        "data": [d.folder for d in datasets],
        "tuned": sorted(name for unit in tuned for name in unit.names),
    }


@dataclass(eq=False)
class _Unit:
    """Modules tuned and kept together: the synths of the run they serve share at least one of them."""

    names: list[str]  # "parameter_decoders.0", "encoders.0", ...
    modules: list[nn.Module]
    served: list[_Synth]

    def state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: _copy(module) for name, module in zip(self.names, self.modules, strict=True)}

    def load(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        for name, module in zip(self.names, self.modules, strict=True):
            module.load_state_dict(state[name])


def _tuned_units(model: AspModel, parts: Sequence[_Synth], encoder: bool) -> list[_Unit]:
    """The modules to tune, grouped into units of shared synths. A module serving a synth of the model that is
    not in the run would move that synth's guesses unchecked, so it is refused."""
    shared_decoder = model.architecture.variant == "joint_decoder"
    synths = model.architecture.synths

    def owners(part_index: int) -> list[str]:
        names = [f"parameter_decoders.{0 if shared_decoder else part_index}"]
        if encoder:
            names.append(f"encoders.{0 if len(model.encoders) == 1 else part_index}")
        return names

    run = {part.index for part in parts}
    for name in {n for part in parts for n in owners(part.index)}:
        serving = {s for s in range(len(synths)) if name in owners(s)}
        if serving - run:
            missing = ", ".join(synths[s] for s in sorted(serving - run))
            raise ReaTimbreError(
                f"tuning {name} moves the guesses of every synth it serves: give the data of {missing} too"
            )
    units: list[_Unit] = []
    for part in parts:
        names = owners(part.index)
        joined = [u for u in units if set(u.names) & set(names)]
        for unit in joined:
            units.remove(unit)
        merged = list(dict.fromkeys([n for u in joined for n in u.names] + names))
        served = [p for u in joined for p in u.served] + [part]
        units.append(_Unit(merged, [model.get_submodule(n) for n in merged], served))
    return units


def _copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
