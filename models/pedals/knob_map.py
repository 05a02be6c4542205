"""The map from a pedal's knobs to the parts of a gray-box network: an affine map plus a small MLP's correction.

A gray-box network's parts (a gain, a delay in milliseconds, a feedback) are each a function of the knobs.
:class:`KnobMap` gives ``outputs`` of them as ``A k + b + head(knob_embedding(k))``: the affine part can be set
from measurements on the training pairs (:func:`fit_affine`, a least-squares fit of measured values on the knobs,
trimmed of outliers), which places a delay of thousands of samples to a fraction of a sample where gradient descent
from a wrong start could not find it; the MLP's head starts at zero and learns, with the affine part, whatever the
knobs do that is not affine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.tcn import knob_embedding

# The MLP's correction is scaled down so that an optimiser step moves it about as far as one of the affine part: Adam
# moves every weight by about its learning rate, and the head's 32 weights at once would otherwise shift a delay by
# samples, and a gain by hundredths, in one step.
RESIDUAL_SCALE = 0.05


class KnobMap(nn.Module):
    """``outputs`` values from ``knobs`` knob positions (0..1): affine plus an MLP's correction (see module doc)."""

    def __init__(self, knobs: int, outputs: int, hidden: int, start: list[float]):
        super().__init__()
        if len(start) != outputs:
            raise ValueError(f"a knob map of {outputs} outputs needs {outputs} starting values, not {len(start)}")
        self.affine = nn.Linear(knobs, outputs)
        self.embedding = knob_embedding(knobs, hidden)
        self.head = nn.Linear(hidden, outputs)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor(start))
            self.head.weight.zero_()
            self.head.bias.zero_()

    def forward(self, control: torch.Tensor) -> torch.Tensor:
        """(B, knobs) to (B, outputs)."""
        return self.affine(control) + RESIDUAL_SCALE * self.head(self.embedding(control))

    @torch.no_grad()
    def set_affine(self, output: int, weights: np.ndarray, bias: float) -> None:
        """Set output ``output``'s affine part (weights per knob, bias) and clear its MLP correction."""
        self.affine.weight[output] = torch.as_tensor(weights, dtype=self.affine.weight.dtype)
        self.affine.bias[output] = float(bias)
        self.head.weight[output].zero_()
        self.head.bias[output] = 0.0


def fit_affine(
    knobs: np.ndarray,
    values: np.ndarray,
    tolerance: float | None = None,
    groups: np.ndarray | None = None,
    draw: int | None = None,
    rounds: int = 3,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares ``values ~ knobs @ w + b`` over rows (knobs (N, K), values (N,)) that keeps out measurements
    gone wrong. With a ``tolerance`` the rows kept are the largest set within ``tolerance`` of one fit through
    ``draw`` random groups of rows (``groups`` (N,) names each row's group, by default each row its own; ``draw``
    defaults to K + 1), :data:`CONSENSUS_DRAWS` seeded draws (random sample consensus). Then, and without a
    tolerance, the fit is redone ``rounds`` times without the rows whose residual exceeds three times the median
    absolute residual (and the tolerance). Returns ``w`` (K,), ``b`` and the mask of rows kept."""
    design = np.concatenate([knobs, np.ones((len(knobs), 1))], axis=1)
    kept = np.ones(len(values), dtype=bool)
    if tolerance is not None:
        labels = np.arange(len(values)) if groups is None else np.asarray(groups)
        kept = _consensus(design, values, tolerance, labels, draw or design.shape[1])
    for _ in range(rounds):
        if kept.sum() < design.shape[1]:
            raise ValueError(f"too few usable measurements ({int(kept.sum())}) to fit {design.shape[1]} coefficients")
        solution = np.linalg.lstsq(design[kept], values[kept], rcond=None)[0]
        residual = np.abs(design @ solution - values)
        limit = 3 * max(float(np.median(residual[kept])), 1e-9)
        kept = kept & (residual <= max(limit, tolerance or 0.0))
    return solution[:-1], float(solution[-1]), kept


CONSENSUS_DRAWS = 2000


def _consensus(design: np.ndarray, values: np.ndarray, tolerance: float, groups: np.ndarray, draw: int) -> np.ndarray:
    """The rows within ``tolerance`` of the least-squares fit through ``draw`` random groups that most rows agree
    with (random sample consensus, seeded; the first such draw where several tie). The draws' fits are solved
    together: each draw's rows padded with zero rows (which change no least-squares fit) to one height."""
    rng = np.random.default_rng(0)
    names, group_of = np.unique(groups, return_inverse=True)
    if len(names) <= draw:
        return np.ones(len(values), dtype=bool)
    members = [np.flatnonzero(group_of == group) for group in range(len(names))]
    # The draws as the seeded generator makes them one by one (the same as drawing from ``names`` itself).
    chosen = [rng.choice(len(names), draw, replace=False) for _ in range(CONSENSUS_DRAWS)]
    rows = [np.sort(np.concatenate([members[group] for group in picked])) for picked in chosen]
    height = max(len(r) for r in rows)
    index = np.zeros((len(rows), height), dtype=int)
    real = np.zeros((len(rows), height), dtype=bool)
    for i, r in enumerate(rows):
        index[i, : len(r)], real[i, : len(r)] = r, True
    solutions = (np.linalg.pinv(design[index] * real[..., None]) @ (values[index] * real)[..., None])[..., 0]
    agree = np.abs(solutions @ design.T - values) <= tolerance  # (draws, rows)
    best = int(np.argmax(agree.sum(axis=1)))
    drawn = np.isin(group_of, chosen[best])
    # As many rows again as the fit was drawn from must agree with it, from groups it was not drawn from.
    if np.isin(group_of[agree[best]], group_of[~drawn]).sum() < drawn.sum():
        raise ValueError(f"no fit through {draw} groups of measurements is confirmed by as many others")
    return agree[best]
