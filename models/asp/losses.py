"""The multi-task VAE's losses: masked parameter losses, spectrogram reconstruction, KL with warm-up.

A row's parameter loss covers its own synth's slots only — the paper's mask ``m_i`` is 1 over the first ``k_i``
slots of the padded vector and 0 elsewhere — so padding adds nothing and (with separate decoders) no other
synth's decoder gets a gradient from it. Within the mask: mean squared error of the continuous slots (after a
sigmoid) plus the mean cross-entropy of the one-hot groups. With several hypotheses per decoder, the best one
per row takes the loss (:func:`hypotheses_loss`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.synth.spaces import Layout


def parameter_masks(synth: torch.Tensor, layouts: Sequence[Layout], padded: int) -> torch.Tensor:
    """(B, padded) float masks: row ``r`` is 1 over its synth's ``k`` slots, 0 over the padding."""
    sizes = torch.tensor([layout.size for layout in layouts], device=synth.device)
    return (torch.arange(padded, device=synth.device)[None, :] < sizes[synth][:, None]).float()


def parameter_loss(
    raw: torch.Tensor,
    target: torch.Tensor,
    synth: torch.Tensor,
    layouts: Sequence[Layout],
    continuous_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over rows of each row's masked parameter loss; also the per-row losses (B,).

    ``raw``: (B, padded) model outputs; ``target``: (B, padded) encoded vectors, zero-padded.
    ``continuous_weight`` scales the continuous slots' MSE against the groups' cross-entropy: the MSE of 0..1
    values is some twenty times smaller than a cross-entropy, though the continuous parameters (levels, cutoffs,
    envelope times) are most of what a render's spectrum depends on.
    """
    masks = parameter_masks(synth, layouts, raw.shape[1])
    raw = raw * masks  # a padded slot's output cannot reach the loss or receive a gradient
    per_row = raw.new_zeros(raw.shape[0])
    for s, layout in enumerate(layouts):
        rows = torch.nonzero(synth == s).flatten()
        if not rows.numel():
            continue
        out, want = raw[rows], target[rows]
        terms = []
        if layout.continuous:
            index = torch.tensor(layout.continuous, device=raw.device)
            terms.append(continuous_weight * ((torch.sigmoid(out[:, index]) - want[:, index]) ** 2).mean(dim=1))
        if layout.groups:
            entropies = [
                nn.functional.cross_entropy(
                    out[:, start : start + classes], want[:, start : start + classes].argmax(dim=1), reduction="none"
                )
                for start, classes in layout.groups
            ]
            terms.append(torch.stack(entropies, dim=1).mean(dim=1))
        per_row = per_row.index_add(0, rows, torch.stack(terms, dim=0).sum(dim=0))
    return per_row.mean(), per_row


def hypotheses_loss(
    raw: torch.Tensor,
    scores: torch.Tensor,
    target: torch.Tensor,
    synth: torch.Tensor,
    layouts: Sequence[Layout],
    continuous_weight: float = 1.0,
    relax: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Winner-takes-all parameter loss over several hypotheses, and the scores' loss.

    ``raw``: (B, H, padded) every hypothesis's outputs; ``scores``: (B, H). Per row, the hypothesis with the
    smallest :func:`parameter_loss` (the winner) takes ``1 - relax`` of the loss and every hypothesis shares
    ``relax`` (so none is left untrained); the scores are trained by cross-entropy to name the winner. Returns
    (parameter loss, score loss), each a mean over rows; with one hypothesis this is :func:`parameter_loss` and 0.
    """
    if raw.shape[1] == 1:
        return parameter_loss(raw[:, 0], target, synth, layouts, continuous_weight)[0], raw.new_zeros(())
    per_hypothesis = torch.stack(
        [parameter_loss(raw[:, h], target, synth, layouts, continuous_weight)[1] for h in range(raw.shape[1])], dim=1
    )
    winner = per_hypothesis.detach().argmin(dim=1)
    best = per_hypothesis.gather(1, winner[:, None])[:, 0]
    loss = ((1.0 - relax) * best + relax * per_hypothesis.mean(dim=1)).mean()
    return loss, nn.functional.cross_entropy(scores, winner)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), summed over the latent and averaged over rows."""
    return (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)).mean()


def kl_weight(step: int, warmup_steps: int, beta: float) -> float:
    """The KL weight at ``step``: 0 at first, rising linearly to ``beta`` over ``warmup_steps`` (the paper's
    warm-up: spectrogram reconstruction is learnt before the latent is regularised)."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def spectrogram_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of dB-mel/80 spectrograms."""
    return ((predicted - target) ** 2).mean()
