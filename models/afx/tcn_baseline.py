"""Our conditioned TCN (:mod:`models.tcn`) trained on an afx task, as the comparison row of the bench.

The compressor recipe's network (16 channels, kernel 9, dilations 1, 10, 100, 1000: a receptive field of 8,889
samples, 0.56 s at 16 kHz), one control input per task knob (a constant 0 for tasks without one), trained on random
crops (16,384 target samples with the receptive field's history) with MAE + MR-STFT under :func:`models.fit.fit`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from models.afx.segment import Segment
from models.fit import FitProgress, FitResult, fit
from models.losses import MultiResolutionSTFTLoss
from models.networks import model_device
from models.tcn import ConditionedTCN, TCNConfig

CROP_SAMPLES = 16_384


def build_tcn(knobs: int) -> ConditionedTCN:
    return ConditionedTCN(TCNConfig(channels=16, kernel_size=9, dilation_growth=10, layers=4, cond_dim=max(1, knobs)))


def tcn_control(control: np.ndarray) -> torch.Tensor:
    """The TCN's control for a segment's (possibly empty) control."""
    return torch.as_tensor(control if len(control) else np.zeros(1), dtype=torch.float32)


def train_tcn(
    model: ConditionedTCN,
    training: list[Segment],
    heldout: list[Segment],
    max_seconds: float,
    seed: int = 0,
    batch_size: int = 4,
    steps: int = 1_000_000,
    progress: Callable[[FitProgress], None] | None = None,
    device: torch.device | str | None = None,
) -> FitResult:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    rf = model.receptive_field
    span = CROP_SAMPLES + rf - 1

    def crops(segments: list[Segment], picks: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, cs, ys = [], [], []
        for index, start in picks:
            segment = segments[index]
            dry = np.pad(segment.dry, (rf - 1, span))
            wet = np.pad(segment.wet, (0, span))
            xs.append(dry[start : start + span])
            ys.append(wet[start : start + CROP_SAMPLES])
            cs.append(tcn_control(segment.control))
        return torch.from_numpy(np.stack(xs))[:, None], torch.stack(cs), torch.from_numpy(np.stack(ys))[:, None]

    def next_batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        picks = [
            (int(i), int(rng.integers(0, len(training[i].dry)))) for i in rng.integers(0, len(training), batch_size)
        ]
        return crops(training, picks)

    check = crops(
        heldout,
        [(i, int(s)) for i in range(len(heldout)) for s in np.linspace(0, len(heldout[i].dry) - 1, 4).astype(int)],
    )
    mrstft = MultiResolutionSTFTLoss((512, 1024, 2048))

    def loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.l1_loss(estimate, target) + mrstft.to(estimate.device)(estimate, target)

    def validate(trained: ConditionedTCN) -> float:
        where = model_device(trained)
        with torch.no_grad():
            return float(loss(trained(check[0].to(where), check[1].to(where)), check[2].to(where)))

    return fit(
        model, next_batch, loss, steps=steps, max_seconds=max_seconds, learning_rate=2e-3,
        validate=validate, validate_every=50, progress=progress, device=device,
    )  # fmt: skip
