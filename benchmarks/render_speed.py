"""Render speed of every shipped model on 60 s of stereo 44.1 kHz audio, beside the machine's matmul speed.

    python benchmarks/render_speed.py [--seconds 60] [--threads N]

Prints, per model: real-time factor (audio seconds per wall second, through the same block renderer the
`render` command uses, file I/O excluded), the model's arithmetic per sample and the GFLOP/s it achieved; and the
fp32 matmul GFLOP/s this machine reaches (the ceiling the convolutions compete against).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from models.library import list_models, load_info
from models.material import make_program
from models.render import StreamRenderer

SAMPLE_RATE = 44_100


def matmul_gflops(size: int = 2048, repeats: int = 8) -> float:
    """Best-of fp32 matmul throughput."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def render_seconds(renderer_factory, audio: np.ndarray, block_frames: int) -> float:
    """Wall time to push ``audio`` through a fresh renderer in blocks of ``block_frames``."""
    renderer = renderer_factory()
    start = time.perf_counter()
    for i in range(0, audio.shape[1], block_frames):
        renderer.process(audio[:, i : i + block_frames])
    renderer.finish()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=2, help="renders per model; the fastest counts")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    audio = np.stack([make_program(args.seconds, SAMPLE_RATE, rng) for _ in range(2)])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; input {args.seconds:g} s stereo 44.1 kHz")
    print(f"fp32 matmul: {matmul_gflops():.1f} GFLOP/s")
    print(f"{'model':12s} {'params':>7s} {'rf (ms)':>8s} {'MFLOP/s audio':>14s} {'real time':>10s} {'GFLOP/s':>8s}")
    for info in list_models():
        if info.kind != "shipped":
            continue
        effect = load_info(info)
        seconds = min(
            render_seconds(lambda e=effect: StreamRenderer(e, None, SAMPLE_RATE, 2), audio, SAMPLE_RATE)
            for _ in range(args.repeats)
        )
        flops = info.config.flops_per_sample() * audio.size
        params = sum(p.numel() for p in effect.model.parameters())
        print(
            f"{info.name:12s} {params:7d} {info.receptive_field / SAMPLE_RATE * 1000:8.0f} "
            f"{info.config.flops_per_sample() * SAMPLE_RATE * 2 / 1e6:14.0f} "
            f"{args.seconds / seconds:9.1f}x {flops / seconds / 1e9:8.1f}"
        )


if __name__ == "__main__":
    main()
