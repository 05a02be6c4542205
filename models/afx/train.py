"""Train one of the thesis's architectures on (dry, wet) audio, with the project's training loop.

    python -m models.afx.train --arch ceq --task lowpass --minutes 5 --out DIR [--name NAME] [--settings JSON]

Examples are cut at random positions of the (zero-padded) signals, framed as the model needs (frames with context
for the frame models, a receptive field for the WaveNet). Frame models first pretrain their front-end convolutions
and the tied synthesis on reconstructing dry and wet frames through the max positions only (thesis Sec. 4.2.1), then
train end to end. :func:`models.fit.fit` runs both stages (Adam, cosine decay, time box, best weights by
validation). The held-out loss of the model and of the dry input (the same loss with the dry frames as the estimate)
go into the sidecar.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.afx import architecture, build
from models.afx.framing import (
    AfxModel,
    FrameModel,
    consecutive_frames,
    example_span,
    examples,
    target_samples,
    told_clocks,
)
from models.afx.layers import unpool
from models.afx.losses import DEFAULT_LOSS, LOSSES
from models.afx.network import wrap
from models.afx.segment import Segment
from models.afx.silence import remove_silence_offset
from models.afx.tasks import pair, task
from models.errors import ReaTimbreError
from models.fit import FitProgress, FitResult, fit, raise_if_interrupted
from models.library import save_model
from models.networks import model_device

EVERY_BATCH = 64  # examples per forward pass when scoring every frame of held-out material


@dataclass(frozen=True)
class TrainSettings:
    """How long and how to train (the thesis used Adam at 1e-4 for hundreds of epochs; these are time-boxed)."""

    steps: int = 2000
    batch_size: int = 8
    learning_rate: float = 1e-3
    max_seconds: float | None = None
    pretrain_steps: int = 0  # frame models: steps of front-end pretraining first
    validation_examples: int = 16
    validate_every: int = 50
    seed: int = 0
    loss: str | None = None  # "eq49", "eq86" or "mae"; None: the thesis's loss for the architecture
    remove_silence_offset: bool = True  # shift the output bias after training so silence renders as silence


class ExampleSource:
    """Random training examples from a (dry, wet) pair, and a fixed validation set."""

    def __init__(self, model: AfxModel, dry: np.ndarray, wet: np.ndarray, seed: int):
        if dry.shape != wet.shape or dry.ndim != 1:
            raise ValueError(f"dry and wet must be (samples,) of one length, got {dry.shape} and {wet.shape}")
        self.model = model
        before, after = example_span(model)
        self.length = target_samples(model)
        pad = (before, after + self.length)
        self.dry = torch.nn.functional.pad(torch.from_numpy(np.asarray(dry, np.float32)), pad)
        self.wet = torch.nn.functional.pad(torch.from_numpy(np.asarray(wet, np.float32)), pad)
        self.first, self.last = before, before + len(dry) - 1  # targets start on a real sample
        self.rng = np.random.default_rng(seed)

    def draw(self, size: int) -> list[int]:
        """``size`` random example starts (positions in the padded signals)."""
        return self.rng.integers(self.first, self.last + 1, size).tolist()

    def spread(self, count: int) -> list[int]:
        """``count`` example starts evenly spread over the signal (the same every call)."""
        return np.linspace(self.first, self.last, count).astype(int).tolist()

    def at(self, starts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples whose targets start at ``starts``."""
        return examples(self.model, self.dry, self.wet, starts)

    def render_samples(self, starts: list[int]) -> torch.Tensor:
        """(len(starts), 1): the render sample each example's target starts at (0: the signal's first sample),
        what a model told its effect's clocks needs."""
        return torch.tensor([[float(start - self.first)] for start in starts])

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.at(self.draw(size))

    def fixed(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` examples evenly spread over the signal (the same every call)."""
        return self.at(self.spread(count))

    def every(self, step_samples: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Every example ``step_samples`` apart over the whole signal, in batches of :data:`EVERY_BATCH`, each
        with its render samples (see :meth:`render_samples`)."""
        starts = list(range(self.first, self.last + 1, step_samples))
        for first in range(0, len(starts), EVERY_BATCH):
            part = starts[first : first + EVERY_BATCH]
            yield *self.at(part), self.render_samples(part)


def segments_of(pairs: Segment | list[Segment] | tuple[np.ndarray, np.ndarray]) -> list[Segment]:
    """A pair of arrays (no knobs), one segment or a list of them, as a list of segments."""
    if isinstance(pairs, Segment):
        return [pairs]
    if isinstance(pairs, tuple):
        return [Segment(pairs[0], pairs[1], np.zeros(0, np.float32))]
    return list(pairs)


class SegmentSource:
    """Random examples over several segments (equal shares), each example with its segment's control. With
    ``clocked`` the control's last column is the render sample the example's target starts at in its segment
    (the segments are rendered from their first sample, where the effect's clocks start): what a model told its
    effect's clocks needs (:class:`_Unconditioned` splits it off)."""

    def __init__(self, model: AfxModel, segments: list[Segment], seed: int, clocked: bool = False):
        if not segments:
            raise ValueError("no training material")
        self.sources = [ExampleSource(model, s.dry, s.wet, seed + i) for i, s in enumerate(segments)]
        self.controls = [torch.as_tensor(np.asarray(s.control, np.float32)) for s in segments]
        self.clocked = clocked
        self.rng = np.random.default_rng(seed)

    def _control(self, index: int, source: ExampleSource, starts: list[int]) -> torch.Tensor:
        control = self.controls[index].expand(len(starts), -1)
        return torch.cat((control, source.render_samples(starts)), dim=-1) if self.clocked else control

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, cs, ys = [], [], []
        for i in self.rng.integers(0, len(self.sources), size):
            source = self.sources[i]
            starts = source.draw(1)
            x, y = source.at(starts)
            xs.append(x)
            ys.append(y)
            cs.append(self._control(i, source, starts))
        return torch.cat(xs), torch.cat(cs), torch.cat(ys)

    def fixed(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``count`` examples per segment, evenly spread (the same every call)."""
        xs, cs, ys = [], [], []
        for i, source in enumerate(self.sources):
            starts = source.spread(count)
            x, y = source.at(starts)
            xs.append(x)
            ys.append(y)
            cs.append(self._control(i, source, starts))
        return torch.cat(xs), torch.cat(cs), torch.cat(ys)


class _Unconditioned(nn.Module):
    """Adapts a model to :func:`models.fit.fit`'s ``model(x, control)`` call (an empty control for the thesis's
    unconditioned models; for a model told its effect's clocks, the control's last column is each example's render
    sample, see :class:`SegmentSource`); with ``pretraining`` it runs the pretraining network instead."""

    def __init__(self, model: AfxModel, pretraining: bool = False):
        super().__init__()
        if pretraining and not isinstance(model, FrameModel):
            raise ReaTimbreError(f"only frame models are pretrained, not a {type(model).__name__}")
        self.model = model
        self.pretraining = pretraining

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        if not self.pretraining and told_clocks(self.model):
            knobs, first_sample = control[:, :-1], control[:, -1].round().long()
            return self.model(x, knobs if knobs.shape[-1] else None, first_sample)
        if not self.pretraining:
            return self.model(x, control if control.shape[-1] else None)
        assert isinstance(self.model, FrameModel), "checked when pretraining was chosen"
        return reconstruct(self.model, x)


def reconstruct(model: FrameModel, frames: torch.Tensor) -> torch.Tensor:
    """The pretraining network (Sec. 4.2.1) of a frame model: the current frame through the front-end, unpooled at
    the recorded max positions only, times the residual, and synthesised; no latent space or back-end DNN."""
    current = frames.shape[1] // 2
    residual, _, latent, indices = model.front_end(frames[:, current : current + 1])
    return model.deconv(residual * unpool(latent, indices, frames.shape[-1]))


def train(
    model: AfxModel,
    arch: str,
    dry: np.ndarray | list[Segment],
    wet: np.ndarray | None,
    settings: TrainSettings,
    heldout: tuple[np.ndarray, np.ndarray] | list[Segment] | None = None,
    progress: Callable[[FitProgress], None] | None = None,
    device: torch.device | str | None = None,
) -> FitResult:
    """Train ``model`` (of architecture ``arch``) in place on ``dry`` -> ``wet`` (or on a list of segments, each
    with its knob settings, ``wet`` None); it ends with the best weights by the validation loss (on ``heldout`` if
    given, else on fixed examples of the training material), on ``device`` (default: where it is), and then (unless
    ``settings.remove_silence_offset`` is off) with its output bias shifted so that silence renders as silence
    (:mod:`models.afx.silence`; the record's ``silence_offset_removed``)."""
    torch.manual_seed(settings.seed)
    loss_fn = LOSSES[settings.loss or DEFAULT_LOSS[arch]]
    training = segments_of(dry if wet is None else (dry, wet))  # type: ignore[arg-type]
    clocked = told_clocks(model)
    source = SegmentSource(model, training, settings.seed, clocked)
    check = SegmentSource(model, segments_of(heldout or training), settings.seed + 1, clocked).fixed(
        max(1, settings.validation_examples // len(segments_of(heldout or training)))
    )

    if settings.pretrain_steps and isinstance(model, FrameModel):
        both = [Segment(np.concatenate((s.dry, s.wet)), np.concatenate((s.dry, s.wet)), s.control) for s in training]
        frames = SegmentSource(model, both, settings.seed + 2)
        centre = model.framing.context_frames

        def pretraining_batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x, control, _ = frames.batch(settings.batch_size)
            return x, control, x[:, centre : centre + 1]

        pretrained = fit(
            _Unconditioned(model, pretraining=True),
            pretraining_batch,
            LOSSES["mae"],
            steps=settings.pretrain_steps,
            learning_rate=settings.learning_rate,
            device=device,
        )
        raise_if_interrupted(pretrained.stopped_because)  # the training proper has not begun: nothing to keep

    def next_batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, control, y = source.batch(settings.batch_size)
        return x, control, y

    def validate(wrapped: _Unconditioned) -> float:
        where = model_device(wrapped)
        with torch.no_grad():
            return float(loss_fn(wrapped(check[0].to(where), check[1].to(where)), check[2].to(where)))

    result = fit(
        _Unconditioned(model),
        next_batch,
        loss_fn,
        steps=settings.steps,
        max_seconds=settings.max_seconds,
        learning_rate=settings.learning_rate,
        validate=validate,
        validate_every=settings.validate_every,
        progress=progress,
        device=device,
    )
    if not settings.remove_silence_offset:
        return result
    offset = remove_silence_offset(model, [segment.control for segment in training])
    return replace(result, notes={**result.notes, "silence_offset_removed": offset})


def dry_loss(
    model: AfxModel, arch: str, dry: np.ndarray | list[Segment], wet: np.ndarray | None, settings: TrainSettings
) -> float:
    """The loss of passing the input through unchanged, on the validation examples: the baseline to beat."""
    segments = segments_of(dry if wet is None else (dry, wet))  # type: ignore[arg-type]
    x, _, y = SegmentSource(model, segments, settings.seed + 1).fixed(
        max(1, settings.validation_examples // len(segments))
    )
    return float(LOSSES[settings.loss or DEFAULT_LOSS[arch]](dry_estimate(model, x, y), y))


def dry_estimate(model: AfxModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """What passing the input through gives for examples ``x`` with targets ``y``: the current frame (windowed as
    the targets are) or the receptive field's centred samples."""
    if isinstance(model, FrameModel):
        f = model.framing
        current = x[:, f.context_frames : f.context_frames + 1]
        return current * f.window(f.output_window) if f.input_window == "rect" else current
    half = model.receptive_field // 2
    return x[..., half : half + y.shape[-1]]


@torch.no_grad()
def every_frame_loss(
    model: AfxModel,
    arch: str,
    segments: list[Segment],
    loss: str | None = None,
    estimates: list[torch.Tensor] | None = None,
) -> dict[str, float | int]:
    """The architecture's loss (or ``loss``) of the model and of the dry input over every example of the segments
    (frames a hop apart, or the sliding model's outputs end to end), not only the validation examples that chose
    the best weights: ``{"model", "dry", "ratio", "examples"}``. Each batch's loss is weighted by its examples
    (the losses are means over frames of one size). ``estimates``, one per segment, are the model's outputs for
    those examples when they are already at hand (:func:`models.afx.framing.render_with_examples` gives them with
    the render); else the model computes them."""
    loss_fn = LOSSES[loss or DEFAULT_LOSS[arch]]
    step = model.framing.hop_samples if isinstance(model, FrameModel) else target_samples(model)
    wrapped = _Unconditioned(model).eval()
    where = model_device(wrapped)
    totals = {"model": 0.0, "dry": 0.0}
    count = 0
    if estimates is not None and len(estimates) != len(segments):
        raise ValueError(f"{len(estimates)} sets of estimates for {len(segments)} segments")
    for index, segment in enumerate(segments):
        source = ExampleSource(model, segment.dry, segment.wet, seed=0)
        control = torch.as_tensor(np.asarray(segment.control, np.float32))
        knobs = control.to(where) if control.numel() else None
        done = 0
        for x, y, first_samples in source.every(step):
            if estimates is not None:
                estimate = estimates[index][done : done + len(x)]
                if estimate.shape != y.shape:
                    raise ValueError(f"estimates {tuple(estimate.shape)} do not match the examples {tuple(y.shape)}")
            elif isinstance(model, FrameModel):  # consecutive frames: each input frame through the front-end once
                starts = first_samples[:, 0].round().long().to(where) if told_clocks(model) else None
                estimate = consecutive_frames(model, x.to(where), knobs, starts).cpu()
            else:
                controls = control.expand(len(x), -1)
                estimate = wrapped(x.to(where), controls.to(where)).cpu()
            done += len(x)
            totals["model"] += float(loss_fn(estimate, y)) * len(x)
            totals["dry"] += float(loss_fn(dry_estimate(model, x, y), y)) * len(x)
            count += len(x)
        if estimates is not None and done != len(estimates[index]):
            raise ValueError(f"{len(estimates[index])} estimates for {done} examples")
    model_loss, dry = totals["model"] / count, totals["dry"] / count
    return {"model": model_loss, "dry": dry, "ratio": model_loss / dry if dry else float("inf"), "examples": count}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.afx.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, help="ceq, cafx, wavenet, crafx, cwafx or csafx")
    parser.add_argument("--task", required=True, help="lowpass, overdrive, tremolo or reverb")
    parser.add_argument("--out", required=True, type=Path, help="folder for NAME.safetensors and NAME.json")
    parser.add_argument("--name", help="model name (default ARCH-TASK)")
    parser.add_argument("--minutes", type=float, default=10.0, help="time box of the end-to-end stage")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--pretrain-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of training material")
    parser.add_argument("--settings", default="{}", help="JSON object of architecture settings over the thesis's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        arch = architecture(args.arch)
        task(args.task)
        model = build(arch.name, json.loads(args.settings))
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rate = model.config.sample_rate
    dry, wet = pair(args.task, args.seconds, rate, args.seed)
    heldout = pair(args.task, max(10.0, args.seconds / 6), rate, args.seed + 1000)
    settings = TrainSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_seconds=args.minutes * 60,
        pretrain_steps=args.pretrain_steps,
        seed=args.seed,
    )
    result = train(model, arch.name, dry, wet, settings, heldout, progress=_printer())
    loss_name = settings.loss or DEFAULT_LOSS[arch.name]
    sidecar = {
        "sample_rate": rate,
        "knobs": [],
        **wrap(arch.name, model).describe(),
        "description": f"{arch.name} trained on the {args.task} task ({task(args.task).description})",
        "emulates": {"task": args.task, "effect": task(args.task).description},
        "training": {
            "command": "python -m models.afx.train " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "settings": asdict(settings),
            **result.record(),
        },
        "metrics": {
            "heldout": {
                "loss": loss_name,
                "model": result.best_validation,
                "dry": dry_loss(model, arch.name, *heldout, settings),
            }
        },
    }
    info = save_model(wrap(arch.name, model), sidecar, args.out, args.name or f"{arch.name}-{args.task}")
    print(f"wrote {info.weights_path.with_suffix('.json')}")
    return 0


def _printer() -> Callable[[FitProgress], None]:
    last = [0.0]

    def show(p: FitProgress) -> None:
        if p.elapsed_seconds - last[0] >= 10:
            last[0] = p.elapsed_seconds
            print(p.summary(), flush=True)

    return show


if __name__ == "__main__":
    raise SystemExit(main())
