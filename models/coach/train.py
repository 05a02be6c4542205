"""Training the coach from a family set: one CNN per effect, then the next-effect RNN.

Families are split by family into train / validation / test (85 / 10 / 5 %, as SerumRNN). Each model trains
with :func:`models.fit.fit` (Adam, cosine decay, validation every ``validate_every`` steps, early stopping
after ``patience`` checks without gain, a step and a time budget, Ctrl-C keeps the best weights), then is
scored on the test families and saved with its sidecar (:mod:`models.coach.store`). Training runs on
``TrainSettings.device`` (validation batches are copied there once); scoring and saving run on the CPU.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.coach.chains import Chains, load_chain_groups, sample_chain_examples
from models.coach.families import Families, load_families
from models.coach.nets import EffectCNN, NextEffectRNN
from models.coach.steps import (
    DEFAULT_STEP_ORDER,
    RNNExample,
    canonical_currents,
    canonical_prefix,
    ordered_effects,
    rnn_label,
    sample_effect_pairs,
    sample_rnn_batch,
)
from models.coach.store import NEXT_EFFECT_NAME, heads_for, load_state, read_sidecar, save_module
from models.errors import ReaTimbreError
from models.fit import INTERRUPTED, FitProgress, fit
from models.synth.profiles import EFFECT_NAMES, load_profile

VALIDATION_FRACTION = 0.10
TEST_FRACTION = 0.05
#: Size of the next-effect RNN that coach-train builds (stored in its sidecar; loading reads it from there).
#: Wider than NextEffectRNN's defaults (the first shipped RNN): on 211 training draws, 1,500 steps gave held-out
#: accuracy 0.880 against 0.870 and training accuracy 0.932 against 0.908 (the smaller one underfits).
NEXT_EFFECT_ARCHITECTURE = {"n_effects": len(EFFECT_NAMES), "features": 128, "hidden": 96, "widths": [32, 48, 48]}


@dataclass(frozen=True)
class TrainSettings:
    """Budgets and sizes of one coach training run."""

    cnn_steps: int = 3000
    rnn_steps: int = 2000
    cnn_batch: int = 64
    rnn_batch: int = 32
    cnn_seconds: float = 300.0
    rnn_seconds: float = 300.0
    learning_rate: float = 1e-3
    validate_every: int = 100
    patience: int = 6
    validation_examples: int = 512
    rnn_off_path_fraction: float = 0.25  # of RNN examples whose effects were added in a random order (steps.py)
    average_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights
    rnn_chain_fraction: float = 0.5  # of RNN batches drawn from chains (coach-chains), when chains are given
    rnn_presence_weight: float = 0.0  # > 0: the RNN also learns which effects the target has (auxiliary loss)
    init_from: str = ""  # a coach models folder whose weights each model starts from (fine-tuning)
    max_draws: int | None = None  # use only the first N complete draws of the data (fixes the split)
    keep_split: tuple[int, ...] = ()  # boundaries: the first N draws keep the split a run on N draws had
    memory_map: bool = False  # read the clips from the data folder's on-disk cache (more draws than RAM)
    seed: int = 0
    device: str = "cpu"  # torch device training runs on (resolved: cpu, cuda or cuda:N)
    bf16: bool = False  # bfloat16 autocast of the training forward passes (CUDA only)


def next_effect_architecture(settings: TrainSettings) -> dict[str, Any]:
    """The RNN coach-train builds: :data:`NEXT_EFFECT_ARCHITECTURE`, with a presence output when it is trained."""
    return {**NEXT_EFFECT_ARCHITECTURE, **({"presence": True} if settings.rnn_presence_weight > 0 else {})}


@dataclass
class Split:
    train: Families
    validation: Families
    test: Families


def _split_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test rows of ``n`` families: 85 / 10 / 5 % (at least one of each)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * TEST_FRACTION)))
    n_val = max(1, int(round(n * VALIDATION_FRACTION)))
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def split_families(
    families: Families, seed: int = 0, keep_split: Sequence[int] | int | None = None, consume: bool = False
) -> Split:
    """Split by family: 85 % train, 10 % validation, 5 % test (at least one family each when possible).

    ``keep_split`` N (or boundaries N1 < N2 < …): the families before each boundary split exactly as the run
    that had that many did, each stretch between boundaries (and after the last) on its own. Models trained on
    N draws can so be fine-tuned on more, again and again, without their training draws leaking into validation.
    ``consume``: reorder ``families`` in place and return views of it (no second copy of the clips; the caller
    must not use ``families`` afterwards).
    """
    n = len(families)
    if n < 3:
        raise ReaTimbreError(f"need at least 3 families to train (train, validation, test); got {n}")
    bounds = [keep_split] if isinstance(keep_split, int) else list(keep_split or [])
    bounds = [b for b in bounds if b < n]
    if bounds != sorted(set(bounds)):
        raise ReaTimbreError(f"keep-split boundaries must increase; got {', '.join(map(str, bounds))}")
    edges = [0, *bounds, n]
    if any(b - a < 3 for a, b in pairwise(edges)):
        shown = ", ".join(map(str, bounds))
        raise ReaTimbreError(f"keep split needs at least 3 families on each side of a boundary; got {shown} of {n}")
    parts: tuple[list[np.ndarray], ...] = ([], [], [])
    for start, end in pairwise(edges):
        for part, stretch_rows in zip(parts, _split_rows(end - start, seed), strict=True):
            part.append(stretch_rows + start)
    rows = [np.sort(np.concatenate(part)) for part in parts]
    if not consume or families.memory_mapped:  # memory-mapped subsets are views already
        return Split(*(families.subset(r) for r in rows))
    families.reorder_in_place(np.concatenate(rows))
    ends = np.cumsum([len(r) for r in rows])
    return Split(*(families.subset(slice(end - len(r), end)) for r, end in zip(rows, ends, strict=True)))


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _on(batch: tuple[torch.Tensor, ...], device: str) -> tuple[torch.Tensor, ...]:
    """A batch's tensors on ``device``."""
    return tuple(t.to(device) for t in batch)


def effect_columns(families: Families, effect: str) -> list[int]:
    """Columns of ``families.values`` holding ``effect``'s parameters, in profile order."""
    return [i for i, col in enumerate(families.columns) if col.split(".")[0] == effect]


def pair_batch(families: Families, rows: np.ndarray, effect: str) -> tuple[torch.Tensor, ...]:
    """(mels (B,2,128,88), mfccs (B,2,30,88), values (B, heads)) for (family, target, current) rows."""
    f, target, current = rows[:, 0], rows[:, 1], rows[:, 2]
    mels = np.stack([families.mel_db80[f, target], families.mel_db80[f, current]], axis=1)
    mfccs = np.stack([families.mfcc[f, target], families.mfcc[f, current]], axis=1)
    values = families.values[f][:, effect_columns(families, effect)]
    return _tensor(mels), _tensor(mfccs), _tensor(values)


def _one_hots(masks: tuple[int, ...] | list[int]) -> list[list[float]]:
    """The effects in each mask as a one-hot row over :data:`EFFECT_NAMES`."""
    return [[float(m >> i & 1) for i in range(len(EFFECT_NAMES))] for m in masks]


def _labels(target: int, current: int, step_order: tuple[str, ...]) -> tuple[int, int]:
    """An RNN example's labels: the next effect's index and the mask of effects the target has, the current not."""
    return rnn_label(target, current, step_order), target & ~current


def sequence_batch(
    families: Families, examples: list[RNNExample], step_order: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mels (B, 2+t, 128, 88): target then currents, used (B, 1+t, 5), labels (B, 2)) for an RNN batch;
    ``labels[:, 0]`` is the next effect, ``labels[:, 1]`` the mask of the effects still missing."""
    mels, used, labels = [], [], []
    for family, target, currents in examples:
        mels.append(families.mel_db80[family, [target, *currents]])
        used.append(_one_hots(currents))
        labels.append(_labels(target, currents[-1], step_order))
    return _tensor(np.stack(mels)), torch.tensor(used), torch.tensor(labels)


@dataclass
class ChainPart:
    """The chains of one split's draws, with the family row of each draw."""

    families: Families
    chains: Chains

    def __post_init__(self) -> None:
        self.chains = self.chains.on_draws(self.families.draw_index)
        self.row_of_draw = {int(d): i for i, d in enumerate(self.families.draw_index)}

    def batch(
        self, rows: np.ndarray, steps: int, step_order: tuple[str, ...]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Like :func:`sequence_batch` for chains after ``steps`` steps: target, the dry render, then the
        chain's currents; ``used`` before each current is what the chain had applied by then."""
        mels, used, labels = [], [], []
        for r in rows:
            family, target = self.row_of_draw[int(self.chains.draw_index[r])], int(self.chains.target_mask[r])
            masks = [0]
            for index in self.chains.applied[r, :steps]:
                masks.append(masks[-1] | 1 << int(index))
            mels.append(np.concatenate([self.families.mel_db80[family, [target, 0]], self.chains.mel_db80[r, :steps]]))
            used.append(_one_hots(masks))
            labels.append(_labels(target, masks[-1], step_order))
        return _tensor(np.stack(mels)), torch.tensor(used), torch.tensor(labels)


class _PairModel(nn.Module):
    """Adapter: :func:`fit` calls ``model(x, cond)``; here x = mel pairs, cond = MFCC pairs."""

    def __init__(self, cnn: EffectCNN) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, mels: torch.Tensor, mfccs: torch.Tensor) -> torch.Tensor:
        return self.cnn(mels[:, 0], mels[:, 1], mfccs[:, 0], mfccs[:, 1])


class _SequenceModel(nn.Module):
    """Adapter: x = target and current mels, cond = used one-hots (all sequences of one length); the output
    is the RNN's logits, followed by its presence logits if it has them."""

    def __init__(self, rnn: NextEffectRNN) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, mels: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((mels.shape[0],), mels.shape[1] - 1, dtype=torch.long)
        return self.rnn(mels[:, 0], mels[:, 1:], used, lengths, with_presence=True)


def next_effect_loss(output: torch.Tensor, labels: torch.Tensor, presence_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the next effect, plus ``presence_weight`` × the binary cross-entropy of the presence
    logits (if ``output`` has them) against the effects the target has and the current lacks."""
    n = len(EFFECT_NAMES)
    loss = nn.functional.cross_entropy(output[:, :n], labels[:, 0])
    if presence_weight > 0 and output.shape[1] > n:
        missing = (labels[:, 1:2] >> torch.arange(n, device=labels.device)) & 1
        loss = loss + presence_weight * nn.functional.binary_cross_entropy_with_logits(output[:, n:], missing.float())
    return loss


def _printer(name: str, enabled: bool) -> Callable[[FitProgress], None] | None:
    if not enabled:
        return None
    last = [0.0]

    def show(p: FitProgress) -> None:
        now = time.monotonic()
        if now - last[0] >= 5.0:
            last[0] = now
            best = "-" if p.best_validation is None else f"{p.best_validation:.4f}"
            print(
                f"  {name}: step {p.step} ({p.fraction:4.0%}) loss {p.train_loss:.4f} best val {best} "
                f"{p.elapsed_seconds:.0f}s, ~{p.remaining_seconds:.0f}s left",
                file=sys.stderr,
                flush=True,
            )

    return show


def cnn_test_metrics(cnn: EffectCNN, families: Families, effect: str, step_order: tuple[str, ...]) -> dict[str, Any]:
    """Held-out accuracy of an effect CNN on the canonical pairs of every test family and target subset."""
    bit = 1 << EFFECT_NAMES.index(effect)
    before = canonical_prefix(0b11111, step_order.index(effect), step_order)
    rows = np.array([(f, s, s & before) for f in range(len(families)) for s in range(32) if s & bit], np.int64)
    errors: dict[str, list[float]] = {h.name: [] for h in cnn.heads}
    for start in range(0, len(rows), 256):
        mels, mfccs, values = pair_batch(families, rows[start : start + 256], effect)
        predicted = cnn.predict(mels[:, 0], mels[:, 1], mfccs[:, 0], mfccs[:, 1])
        for b, settings in enumerate(predicted):
            for i, head in enumerate(cnn.heads):
                truth = float(values[b, i])
                errors[head.name].append(
                    abs(settings[head.name] - truth) if head.classes == 1 else float(settings[head.name] == truth)
                )
    out: dict[str, Any] = {"pairs": int(len(rows))}
    for head in cnn.heads:
        key = "mae_0_1" if head.classes == 1 else "accuracy"
        out[head.name] = {key: round(float(np.mean(errors[head.name])), 4)}
    return out


def _count_right(model: _SequenceModel, mels: torch.Tensor, used: torch.Tensor, labels: torch.Tensor) -> int:
    """How many of a batch's sequences the RNN's softmax (its presence logits aside) names right."""
    return int((model(mels, used)[:, : len(EFFECT_NAMES)].argmax(-1) == labels[:, 0]).sum())


@torch.no_grad()
def rnn_test_accuracy(rnn: NextEffectRNN, families: Families, step_order: tuple[str, ...]) -> dict[str, Any]:
    """Next-effect accuracy per step (teacher forced, every test family and target subset)."""
    rnn.eval()
    model = _SequenceModel(rnn)
    per_step = {}
    total_right = total = 0
    for t in range(len(step_order)):
        items = [
            (f, s, canonical_currents(s, t, step_order))
            for f in range(len(families))
            for s in range(1, 32)
            if len(ordered_effects(s, step_order)) > t
        ]
        right = 0
        for start in range(0, len(items), 128):
            mels, used, labels = sequence_batch(families, items[start : start + 128], step_order)
            right += _count_right(model, mels, used, labels)
        per_step[str(t + 1)] = round(right / len(items), 4)
        total_right, total = total_right + right, total + len(items)
    return {"per_step": per_step, "all": round(total_right / total, 4), "examples": total}


@torch.no_grad()
def rnn_chain_accuracy(rnn: NextEffectRNN, part: ChainPart, step_order: tuple[str, ...]) -> dict[str, Any]:
    """Next-effect accuracy on chains (currents set by the CNNs, as in the loop), per number of steps taken."""
    rnn.eval()
    model = _SequenceModel(rnn)
    lengths = part.chains.lengths
    per_step, total_right, total = {}, 0, 0
    for k in range(1, int(lengths.max(initial=0)) + 1):
        rows = np.flatnonzero(lengths >= k)
        right = 0
        for start in range(0, len(rows), 128):
            mels, used, labels = part.batch(rows[start : start + 128], k, step_order)
            right += _count_right(model, mels, used, labels)
        per_step[str(k + 1)] = round(right / len(rows), 4)  # the pick made after k steps is step k + 1
        total_right, total = total_right + right, total + len(rows)
    return {"per_step": per_step, "all": round(total_right / max(1, total), 4), "examples": total}


def train_effect_cnn(
    effect: str, split: Split, settings: TrainSettings, profile_name: str, step_order: tuple[str, ...], progress: bool
) -> tuple[EffectCNN, dict[str, Any]]:
    """Train one effect's CNN; returns it and its sidecar fields."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng([settings.seed, EFFECT_NAMES.index(effect)])
    cnn = EffectCNN(heads_for(load_profile(profile_name).effect(effect)))
    if settings.init_from:
        load_state(cnn, Path(settings.init_from), effect)
    model = _PairModel(cnn)
    val_rows = sample_effect_pairs(effect, len(split.validation), settings.validation_examples, rng, step_order)
    val_batches = [
        _on(pair_batch(split.validation, val_rows[i : i + 256], effect), settings.device)
        for i in range(0, len(val_rows), 256)
    ]

    def next_batch(step: int):
        rows = sample_effect_pairs(effect, len(split.train), settings.cnn_batch, rng, step_order)
        return pair_batch(split.train, rows, effect)

    def validate(m: nn.Module) -> float:
        return float(np.mean([float(cnn.loss(m(mels, mfccs), values)) for mels, mfccs, values in val_batches]))

    result = fit(
        model,
        next_batch,
        cnn.loss,
        steps=settings.cnn_steps,
        max_seconds=settings.cnn_seconds,
        learning_rate=settings.learning_rate,
        validate=validate,
        validate_every=settings.validate_every,
        patience=settings.patience,
        average_decay=settings.average_decay,
        progress=_printer(effect, progress),
        device=settings.device,
        bf16=settings.bf16,
    )
    cnn.cpu()
    info = result.record()
    return cnn, {"training": info, "test": cnn_test_metrics(cnn, split.test, effect, step_order)}


def chain_parts(split: Split, chain_dirs: tuple[str | Path, ...]) -> dict[str, ChainPart]:
    """The chains of each split's draws, read in one pass (no full set held beside them)."""
    names = ("train", "validation", "test")
    chains = load_chain_groups(list(chain_dirs), {name: getattr(split, name).draw_index for name in names})
    parts = {name: ChainPart(getattr(split, name), chains.pop(name)) for name in names}
    if not len(parts["train"].chains):
        raise ReaTimbreError("none of the chains is on a training draw of these coach-data folders")
    return parts


def train_next_effect(
    split: Split,
    settings: TrainSettings,
    step_order: tuple[str, ...],
    progress: bool,
    parts: dict[str, ChainPart] | None = None,
) -> tuple[NextEffectRNN, dict[str, Any]]:
    """Train the next-effect RNN (on family sequences, and on the chains of the training draws, ``parts`` from
    :func:`chain_parts`, for a share ``rnn_chain_fraction`` of the batches); returns it and its sidecar fields."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng([settings.seed, 99])
    rnn = NextEffectRNN(**next_effect_architecture(settings))
    if settings.init_from:  # a presence output the starting weights lack starts fresh
        load_state(rnn, Path(settings.init_from), NEXT_EFFECT_NAME, may_lack=("presence.",))
    model = _SequenceModel(rnn)
    parts = parts or {}
    val_batches = []
    for _ in range(max(1, settings.validation_examples // 64)):
        _, items = sample_rnn_batch(len(split.validation), 64, rng, step_order, settings.rnn_off_path_fraction)
        val_batches.append(sequence_batch(split.validation, items, step_order))
        if parts and len(parts["validation"].chains):
            k, rows = sample_chain_examples(parts["validation"].chains, 64, rng)
            val_batches.append(parts["validation"].batch(rows, k, step_order))

    def next_batch(step: int):
        if parts and rng.random() < settings.rnn_chain_fraction:
            k, rows = sample_chain_examples(parts["train"].chains, settings.rnn_batch, rng)
            return parts["train"].batch(rows, k, step_order)
        _, items = sample_rnn_batch(
            len(split.train), settings.rnn_batch, rng, step_order, settings.rnn_off_path_fraction
        )
        return sequence_batch(split.train, items, step_order)

    on_device = [_on(batch, settings.device) for batch in val_batches]

    def validate(m: nn.Module) -> float:  # the next effect's cross-entropy alone, comparable across runs
        return float(np.mean([float(next_effect_loss(m(x, u), y)) for x, u, y in on_device]))

    result = fit(
        model,
        next_batch,
        lambda output, labels: next_effect_loss(output, labels, settings.rnn_presence_weight),
        steps=settings.rnn_steps,
        max_seconds=settings.rnn_seconds,
        learning_rate=settings.learning_rate,
        validate=validate,
        validate_every=settings.validate_every,
        patience=settings.patience,
        average_decay=settings.average_decay,
        progress=_printer(NEXT_EFFECT_NAME, progress),
        device=settings.device,
        bf16=settings.bf16,
    )
    rnn.cpu()
    fields = {"training": result.record(), "test_next_effect_accuracy": rnn_test_accuracy(rnn, split.test, step_order)}
    if parts:
        fields["chains"] = {name: len(part.chains) for name, part in parts.items()}
        if len(parts["test"].chains):
            fields["test_chain_accuracy"] = rnn_chain_accuracy(rnn, parts["test"], step_order)
    return rnn, fields


def started_from(directory: Path, name: str) -> dict[str, Any]:
    """What a fine-tuned model started from: the training record of ``directory``'s model of that name."""
    earlier = read_sidecar(directory, name)
    keys = ("command", "data", "settings", "training", "test_next_effect_accuracy", "test_chain_accuracy", "test")
    return {"folder": str(directory), **{key: earlier[key] for key in keys if key in earlier}}


def train_coach(
    data_dirs: str | Path | list[str | Path],
    out_dir: str | Path,
    settings: TrainSettings = TrainSettings(),
    profile_name: str = "vital",
    step_order: tuple[str, ...] = DEFAULT_STEP_ORDER,
    only: tuple[str, ...] = (),
    command: str = "",
    progress: bool = True,
    chain_dirs: tuple[str | Path, ...] = (),
) -> dict[str, dict[str, Any]]:
    """Train the coach models (all, or those named in ``only``) from coach-data folders into ``out_dir``;
    ``chain_dirs`` (``coach-chains`` folders over the same data) add in-loop sequences to the RNN's training."""
    if isinstance(data_dirs, (str, Path)):
        data_dirs = [data_dirs]
    names = only or (*step_order, NEXT_EFFECT_NAME)
    with_mfcc = set(names) != {NEXT_EFFECT_NAME}
    families = load_families(data_dirs, settings.max_draws, with_mfcc, settings.memory_map, progress)
    n_families, presets, notes = len(families), families.presets, sorted({int(n) for n in families.note})
    split = split_families(families, settings.seed, settings.keep_split, consume=True)  # one copy of the clips
    del families
    out = Path(out_dir)
    unknown = sorted(set(names) - {*EFFECT_NAMES, NEXT_EFFECT_NAME})
    if unknown:
        raise ReaTimbreError(f"unknown coach model(s) {', '.join(unknown)}")
    parts = chain_parts(split, chain_dirs) if chain_dirs and NEXT_EFFECT_NAME in names else None
    common = {
        "profile": profile_name,
        "step_order": list(step_order),
        "data": {
            "folders": [str(d) for d in data_dirs],
            "families": n_families,
            "clips": n_families * 32,
            "presets": presets,
            "notes": notes,
            "split_families": {"train": len(split.train), "validation": len(split.validation), "test": len(split.test)},
            "chain_folders": [str(d) for d in chain_dirs],
        },
        "settings": asdict(settings),
        "command": command,
    }
    summaries = {}
    for name in names:
        if progress:
            print(f"coach-train: {name}", file=sys.stderr, flush=True)
        module: nn.Module
        sidecar: dict[str, Any]
        if name == NEXT_EFFECT_NAME:
            module, fields = train_next_effect(split, settings, step_order, progress, parts)
            sidecar = {"kind": "next_effect", "architecture": next_effect_architecture(settings)}
        else:
            cnn, fields = train_effect_cnn(name, split, settings, profile_name, step_order, progress)
            module = cnn
            heads = [h.to_json() for h in cnn.heads]
            sidecar = {"kind": "effect", "effect": name, "heads": heads, "architecture": {}}
        sidecar.update(common)
        if settings.init_from:
            sidecar["started_from"] = started_from(Path(settings.init_from), name)
        sidecar.update(fields)
        save_module(module, sidecar, out, name)
        summaries[name] = fields
        if fields["training"]["stopped_because"] == INTERRUPTED:
            break  # saved; the command passes the interrupt on once it has reported what was trained
    return summaries
