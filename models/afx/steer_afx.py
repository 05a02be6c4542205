"""``steer --arch``: steer one of the thesis's architectures from a dry/wet pair, like the TCN's steering
(:mod:`models.steer`): the same pair preparation, split into training, validation and held-out parts, the same
held-out figures and verdict against the dry input, the same two exploration knobs ``c1`` and ``c2``.

The architecture runs at the pair's rate (44.1 kHz; its frames keep their sample counts, so they are shorter in
time than at the thesis's 16 kHz) with two control inputs held at 0 during training. Its knobs are a FiLM of the
latent (:mod:`models.afx.conditioning`) whose weights start small and random rather than zero, so that away from
0 the knobs vary the steered effect (at 0 they change nothing). Training is :func:`models.afx.train.train`
(front-end pretraining, then end to end with the architecture's loss) within the time budget.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from models import evaluation
from models.afx import build
from models.afx.conditioning import LatentFiLM
from models.afx.framing import render
from models.afx.network import wrap
from models.afx.segment import Segment
from models.afx.train import TrainSettings, train
from models.fit import FitProgress
from models.library import ModelInfo, save_model
from models.steer import (
    STEER_KNOBS,
    check_new_model_name,
    judge_against_dry,
    run_summary,
    signal_frames,
    split_regions,
)
from models.steer_pair import AudioSource, prepare_pair

FILM_INIT_STD = 0.05


def steer_afx(
    dry: AudioSource,
    wet: AudioSource,
    name: str,
    arch: str,
    minutes: float = 3.0,
    *,
    progress: Callable[[FitProgress], None] | None = None,
    report: Callable[[str], None] = lambda _line: None,
    keep_latency: bool = False,
    overwrite: bool = False,
    device: torch.device | str | None = None,
    keep_anyway: bool = False,
    directory: Path | None = None,
    seed: int = 0,
    settings: dict | None = None,
    pretrain_steps: int = 100,
) -> dict:
    """Steer ``arch`` (``settings`` over the thesis's) from the pair; returns the same summary as
    :func:`models.steer.steer_model`."""
    directory = check_new_model_name(name, overwrite, directory)
    pair = prepare_pair(dry, wet, keep_latency=keep_latency)
    for note in pair.notes:
        report(note)
    regions = split_regions(pair.dry.shape[1], signal_frames(pair))
    torch.manual_seed(seed)
    network = wrap(arch, build(arch, {**(settings or {}), "sample_rate": pair.sample_rate, "knobs": len(STEER_KNOBS)}))
    for module in network.modules():
        if isinstance(module, LatentFiLM):
            torch.nn.init.normal_(module.linear.weight, std=FILM_INIT_STD)
    zero = np.zeros(len(STEER_KNOBS), np.float32)
    training = [Segment(pair.dry[c, a:b], pair.wet[c, a:b], zero) for c in range(pair.dry.shape[0])
                for a, b in regions.train]  # fmt: skip
    v0, v1 = regions.validation
    validation = [Segment(pair.dry[c, v0:v1], pair.wet[c, v0:v1], zero) for c in range(pair.dry.shape[0])]
    train_settings = TrainSettings(steps=1_000_000, max_seconds=minutes * 60, pretrain_steps=pretrain_steps, seed=seed)
    report(f"steering {arch} for {minutes:g} min on {pair.seconds:.1f} s of pair at {pair.sample_rate} Hz")
    result = train(network.model, arch, training, None, train_settings, validation, progress=progress, device=device)
    network = network.cpu().eval()
    h0, h1 = regions.heldout
    estimate = render(network.model, pair.dry, torch.zeros(len(STEER_KNOBS)))[:, h0:h1]
    target = pair.wet[:, h0:h1]
    metrics = {
        "model": evaluation.compare(estimate, target, pair.sample_rate),
        "dry": evaluation.compare(pair.dry[:, h0:h1], target, pair.sample_rate),
    }
    verdict = judge_against_dry(metrics["model"]["mrstft"], metrics["dry"]["mrstft"], "afx", minutes)
    memory = f"{arch} look-ahead {network.latency_samples} samples"
    summary = {
        **run_summary(name, pair, metrics, verdict, network.receptive_field, result.steps, result.seconds,
                      result.stopped_because, memory),
        "arch": arch,
    }  # fmt: skip
    if verdict.worse_than_dry and not keep_anyway:
        return summary
    sidecar = {
        "description": f"{arch} steered from a dry/wet pair",
        "sample_rate": pair.sample_rate,
        "knobs": [knob.to_dict() for knob in STEER_KNOBS],
        **network.describe(),
        "steered_from": {
            "notes": pair.notes,
            "correlation": round(pair.correlation, 4),
            "removed_latency_seconds": round(pair.latency_samples / pair.sample_rate, 6),
        },  # fmt: skip
        "training": {
            "method": f"steering {arch}: controls held at 0 on one dry/wet pair (models.afx.steer_afx)",
            **result.record(),
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        "metrics": {"heldout": metrics, "heldout_ratio_to_dry": verdict.ratio, "kept_anyway": verdict.worse_than_dry},
    }
    info: ModelInfo = save_model(network, sidecar, directory, name)
    return {**summary, "model": info.name, "path": str(info.weights_path), "saved": True}
