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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.afx import architecture, build
from models.afx.files import save_afx_model
from models.afx.framing import AfxModel, FrameModel, example_span, examples, target_samples
from models.afx.layers import unpool
from models.afx.losses import DEFAULT_LOSS, LOSSES
from models.afx.tasks import pair, task
from models.errors import ReaTimbreError
from models.fit import FitProgress, FitResult, fit


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

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = self.rng.integers(self.first, self.last + 1, size).tolist()
        return examples(self.model, self.dry, self.wet, starts)

    def fixed(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` examples evenly spread over the signal (the same every call)."""
        starts = np.linspace(self.first, self.last, count).astype(int).tolist()
        return examples(self.model, self.dry, self.wet, starts)


class _Unconditioned(nn.Module):
    """Adapts a model to :func:`models.fit.fit`'s ``model(x, control)`` call (the thesis's models take no
    controls); with ``pretraining`` it runs the pretraining network instead."""

    def __init__(self, model: AfxModel, pretraining: bool = False):
        super().__init__()
        if pretraining and not isinstance(model, FrameModel):
            raise ReaTimbreError(f"only frame models are pretrained, not a {type(model).__name__}")
        self.model = model
        self.pretraining = pretraining

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        if not self.pretraining:
            return self.model(x)
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
    dry: np.ndarray,
    wet: np.ndarray,
    settings: TrainSettings,
    heldout: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Callable[[FitProgress], None] | None = None,
) -> FitResult:
    """Train ``model`` (of architecture ``arch``) in place on ``dry`` -> ``wet``; it ends with the best weights by
    the validation loss (on ``heldout`` if given, else on fixed examples of the training pair)."""
    torch.manual_seed(settings.seed)
    loss_fn = LOSSES[settings.loss or DEFAULT_LOSS[arch]]
    source = ExampleSource(model, dry, wet, settings.seed)
    check = ExampleSource(model, *(heldout or (dry, wet)), settings.seed + 1).fixed(settings.validation_examples)
    no_control = torch.zeros(settings.batch_size, 0)

    if settings.pretrain_steps and isinstance(model, FrameModel):
        frames = ExampleSource(model, np.concatenate((dry, wet)), np.concatenate((dry, wet)), settings.seed + 2)
        centre = model.framing.context_frames

        def pretraining_batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x, _ = frames.batch(settings.batch_size)
            return x, no_control, x[:, centre : centre + 1]

        pretraining = _Unconditioned(model, pretraining=True)
        fit(
            pretraining,
            pretraining_batch,
            LOSSES["mae"],
            steps=settings.pretrain_steps,
            learning_rate=settings.learning_rate,
        )

    def next_batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = source.batch(settings.batch_size)
        return x, no_control, y

    def validate(wrapped: _Unconditioned) -> float:
        return float(loss_fn(wrapped.model(check[0]), check[1]))

    seconds = settings.max_seconds
    return fit(
        _Unconditioned(model),
        next_batch,
        loss_fn,
        steps=settings.steps,
        max_seconds=seconds,
        learning_rate=settings.learning_rate,
        validate=validate,
        validate_every=settings.validate_every,
        progress=progress,
    )


def dry_loss(model: AfxModel, arch: str, dry: np.ndarray, wet: np.ndarray, settings: TrainSettings) -> float:
    """The loss of passing the input through unchanged, on the validation examples: the baseline to beat."""
    x, y = ExampleSource(model, dry, wet, settings.seed + 1).fixed(settings.validation_examples)
    if isinstance(model, FrameModel):
        f = model.framing
        current = x[:, f.context_frames : f.context_frames + 1]
        estimate = current * f.window(f.output_window) if f.input_window == "rect" else current
    else:
        half = model.receptive_field // 2
        estimate = x[..., half : half + y.shape[-1]]
    return float(LOSSES[settings.loss or DEFAULT_LOSS[arch]](estimate, y))


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
    info = save_afx_model(model, arch.name, args.out, args.name or f"{arch.name}-{args.task}", sidecar)
    print(f"wrote {info}")
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
