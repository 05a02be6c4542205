"""Render speed of every shipped model, one stereo stream and many streams in one batched pass, on a device.

    python benchmarks/render_speed.py [--seconds 60] [--streams 16] [--threads N] [--device auto|cpu|cuda]

Prints the device, then per model: the real-time factor of one stereo stream (audio seconds per wall second,
through the same block renderer the `render` command uses, file I/O excluded), the model's arithmetic per sample
and the GFLOP/s it achieved; and the real-time factor of ``--streams`` stereo streams rendered together
(:func:`models.multi_render.render_many`, what `batch` does on CUDA: every channel of every file one row of the
batch), counting all streams' audio. On the CPU also the fp32 matmul GFLOP/s this machine reaches (the ceiling the
convolutions compete against).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from models.device import add_device_argument, resolve_device
from models.library import list_models, load_info
from models.material import make_program
from models.multi_render import render_many
from models.rates import SAMPLE_RATE_HZ
from models.render import StreamRenderer


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--streams", type=int, default=16, help="stereo streams rendered together (default 16)")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=2, help="renders per model; the fastest counts")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    audio = np.stack([make_program(args.seconds, SAMPLE_RATE_HZ, rng) for _ in range(2)]).astype(np.float32)
    streams = [np.roll(audio, 997 * k, axis=1) for k in range(args.streams)]  # different material in every row
    print(device.describe())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; input {args.seconds:g} s stereo 44.1 kHz")
    if not device.is_cuda:
        print(f"fp32 matmul: {matmul_gflops():.1f} GFLOP/s")
    print(
        f"{'model':12s} {'params':>7s} {'rf (ms)':>8s} {'MFLOP/s audio':>14s} {'1 stream':>10s} {'GFLOP/s':>8s} "
        f"{f'{args.streams} streams':>11s}"
    )
    for info in list_models():
        if info.kind != "shipped":
            continue
        effect = load_info(info, device.device)
        render_many(effect, [stream[:, : SAMPLE_RATE_HZ // 10] for stream in streams])  # warm-up (CUDA kernels)
        seconds = min(
            render_seconds(lambda e=effect: StreamRenderer(e, None, SAMPLE_RATE_HZ, 2), audio, SAMPLE_RATE_HZ)
            for _ in range(args.repeats)
        )
        together = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            render_many(effect, streams)
            together = min(together, time.perf_counter() - start)
        config = getattr(effect.model, "config", None)  # networks that count their arithmetic (TCN, ReverbTail)
        counts = hasattr(config, "flops_per_sample")
        per_sample = config.flops_per_sample() if counts else 0  # type: ignore[union-attr]
        params = sum(p.numel() for p in effect.model.parameters())
        mflops = f"{per_sample * SAMPLE_RATE_HZ * 2 / 1e6:14.0f}" if counts else f"{'-':>14s}"
        gflops = f"{per_sample * audio.size / seconds / 1e9:8.1f}" if counts else f"{'-':>8s}"
        print(
            f"{info.name:12s} {params:7d} {info.receptive_field / SAMPLE_RATE_HZ * 1000:8.0f} "
            f"{mflops} {args.seconds / seconds:9.1f}x {gflops} "
            f"{args.seconds * args.streams / together:10.1f}x"
        )


if __name__ == "__main__":
    main()
