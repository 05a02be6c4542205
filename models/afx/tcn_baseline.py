"""Our conditioned TCN (:mod:`models.tcn`) trained on an afx task, as the comparison row of the bench, and the same
TCN told the phases of the effect's LFOs (:class:`~models.pedals.lfo_tcn.LFOTCN`) for a task that declares them.

``tcn``: the compressor recipe's network (16 channels, kernel 9, dilations 1, 10, 100, 1000: a receptive field of
8,889 samples, 0.56 s at 16 kHz), one control input per task knob (a constant 0 for tasks without one).

``lfo-tcn`` (tasks with ``clocks``, the Leslie's): an :class:`LFOTCN` whose inner TCN (16 channels, kernel 3,
dilations 1 .. 64: 255 samples, enough for the crossover and the rotors' Doppler delays of up to 14 samples) gives
16 voices, mixed per sample by a network of the rotors' phases (3 harmonics each) and the knob; a dry path, so it
starts as the dry sound. The rotors restart at a render's first sample, so each training crop is told where in its
segment's render it starts: the mixer sees every horn and woofer phase, and every difference between them.

``rotors`` (tasks with ``clocks``): the gray-box :class:`~models.afx.rotor_network.RotorNetwork`, one learned band
filter, swept gain and swept Doppler delay per clock, told the phases and their place in the render the same way.

All train on random crops (16,384 target samples with the receptive field's history) with MAE + MR-STFT under
:func:`models.fit.fit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from models.afx.rotor_network import RotorNetwork
from models.afx.segment import Segment
from models.afx.tasks import Task
from models.fit import FitProgress, FitResult, fit
from models.losses import MultiResolutionSTFTLoss
from models.networks import model_device
from models.pedals.lfo_tcn import LFOTCN
from models.tcn import ConditionedTCN, TCNConfig

CROP_SAMPLES = 16_384
LFO_VOICES = 16
LFO_HARMONICS = 3
LFO_HIDDEN = 32


def build_tcn(knobs: int) -> ConditionedTCN:
    return ConditionedTCN(TCNConfig(channels=16, kernel_size=9, dilation_growth=10, layers=4, cond_dim=max(1, knobs)))


def _clocks(the_task: Task, arch: str) -> list[dict[str, Any]]:
    if the_task.clocks is None:
        raise ValueError(f"the {the_task.name} task declares no LFO clocks ({arch} needs one, e.g. the leslie tasks)")
    return the_task.clocks()


def build_lfo_tcn(the_task: Task, sample_rate: int) -> LFOTCN:
    """An :class:`LFOTCN` told the phases of ``the_task``'s LFO clocks (see the module docstring)."""
    clocks = _clocks(the_task, "lfo-tcn")
    config = TCNConfig(channels=16, kernel_size=3, dilation_growth=2, layers=7, cond_dim=1, out_channels=LFO_VOICES)
    lfo = {"clocks": clocks, "voices": LFO_VOICES, "harmonics": LFO_HARMONICS, "hidden": LFO_HIDDEN}
    return LFOTCN(config, lfo, latency=0, sample_rate=sample_rate)


def build_rotors(the_task: Task, knobs: int, sample_rate: int) -> RotorNetwork:
    """A :class:`RotorNetwork` with one rotor per LFO clock of ``the_task``."""
    return RotorNetwork(_clocks(the_task, "rotors"), knobs, sample_rate=sample_rate)


class _Clocked(nn.Module):
    """:func:`models.fit.fit`'s ``model(x, control)`` call for a network told its LFOs' phases: the control's last
    column is the render sample of each crop's first input sample."""

    def __init__(self, model: LFOTCN | RotorNetwork):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
        return self.model(x, control[:, :-1], control[:, -1].round().long())


def tcn_control(control: np.ndarray) -> torch.Tensor:
    """The TCN's control for a segment's (possibly empty) control."""
    return torch.as_tensor(control if len(control) else np.zeros(1), dtype=torch.float32)


def train_tcn(
    model: ConditionedTCN | LFOTCN | RotorNetwork,
    training: list[Segment],
    heldout: list[Segment],
    max_seconds: float,
    seed: int = 0,
    batch_size: int = 4,
    steps: int = 1_000_000,
    progress: Callable[[FitProgress], None] | None = None,
    device: torch.device | str | None = None,
) -> FitResult:
    """Train ``model`` in place on random crops of ``training``, keeping the best weights on crops of ``heldout``."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    trained_model: nn.Module = model
    if isinstance(model, RotorNetwork) or (isinstance(model, LFOTCN) and model.lfo is not None):
        trained_model = _Clocked(model)  # told the phases: each crop is told where it starts in its render
    clocked = isinstance(trained_model, _Clocked)
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
            control = tcn_control(segment.control)
            if clocked:  # the render sample of the crop's first input sample (padding counts before sample 0)
                control = torch.cat((control, torch.tensor([float(start - (rf - 1))])))
            cs.append(control)
        return torch.from_numpy(np.stack(xs))[:, None], torch.stack(cs), torch.from_numpy(np.stack(ys))[:, None]

    def next_batch(_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        picks = [
            (int(i), int(rng.integers(0, len(training[i].dry)))) for i in rng.integers(0, len(training), batch_size)
        ]
        return crops(training, picks)

    # Validation crops lie inside their segments: a crop of the padding after a segment's end (silence wanted,
    # the ring of the last samples given) would rule the MR-STFT's log-magnitude term and so the choice of weights.
    check = crops(
        heldout,
        [
            (i, int(s))
            for i in range(len(heldout))
            for s in np.linspace(0, max(0, len(heldout[i].dry) - CROP_SAMPLES), 4).astype(int)
        ],
    )
    mrstft = MultiResolutionSTFTLoss((512, 1024, 2048))

    def loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.l1_loss(estimate, target) + mrstft.to(estimate.device)(estimate, target)

    def validate(trained: nn.Module) -> float:
        where = model_device(trained)
        with torch.no_grad():
            return float(loss(trained(check[0].to(where), check[1].to(where)), check[2].to(where)))

    return fit(
        trained_model, next_batch, loss, steps=steps, max_seconds=max_seconds, learning_rate=2e-3,
        validate=validate, validate_every=50, progress=progress, device=device,
    )  # fmt: skip
