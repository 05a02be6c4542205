"""Seconds per training step of the thesis's frame models (issue 28), with the front-end's locally connected
convolution through ``F.conv1d``'s own backward ("before") and through :mod:`models.afx.depthwise` ("after").

    python benchmarks/afx_train_step.py [--arch crafx csafx cwafx cafx ceq] [--rounds 3] [--batch-size 8]

One torch thread. Each architecture at the thesis's settings with one knob (as ``afx-train`` trains it on the Leslie
and plate tasks), random examples of noise (speed does not depend on the material), the architecture's loss, Adam.
Per round: "before" then "after", each the best of 3 steps (forward, backward, optimiser step) after one warm-up
step, so a load that drifts touches both alike; prints each round's times and their ratios, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from models.afx import build
from models.afx import layers as layers_module
from models.afx.depthwise import depthwise_conv1d
from models.afx.losses import DEFAULT_LOSS, LOSSES
from models.afx.segment import Segment
from models.afx.train import SegmentSource

FRAME_ARCHITECTURES = ("crafx", "csafx", "cwafx", "cafx", "ceq")


def plain_depthwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The convolution with autograd's own backward (oneDNN's depthwise weight gradient): the "before"."""
    return F.conv1d(x, weight, bias, groups=weight.shape[0])


def step_seconds(arch: str, rounds: int, batch_size: int) -> dict[str, list[float]]:
    torch.manual_seed(0)
    model = build(arch, {"knobs": 1})
    rng = np.random.default_rng(0)
    noise = [rng.standard_normal(20 * model.config.sample_rate).astype(np.float32) * 0.1 for _ in range(2)]
    source = SegmentSource(model, [Segment(noise[0], noise[1], np.zeros(1, np.float32))], 0)
    loss_fn = LOSSES[DEFAULT_LOSS[arch]]
    optimiser = torch.optim.Adam(model.parameters(), 1e-4)

    def step() -> float:
        x, control, y = source.batch(batch_size)
        start = time.perf_counter()
        loss = loss_fn(model(x, control), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        for label, convolution in (("before", plain_depthwise), ("after", depthwise_conv1d)):
            layers_module.depthwise_conv1d = convolution
            step()
            times[label].append(min(step() for _ in range(3)))
    layers_module.depthwise_conv1d = depthwise_conv1d
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", nargs="+", default=list(FRAME_ARCHITECTURES), choices=FRAME_ARCHITECTURES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for arch in args.arch:
        times = step_seconds(arch, args.rounds, args.batch_size)
        before, after = np.array(times["before"]), np.array(times["after"])
        print(
            f"{arch}: s/step before {np.round(before, 3).tolist()} after {np.round(after, 3).tolist()}"
            f" ratio {np.round(before / after, 2).tolist()}",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
