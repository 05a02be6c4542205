"""Real-time factor of each thesis architecture (issue 28) at the thesis's settings, untrained, through the stream.

    python benchmarks/afx_speed.py [--seconds 4] [--repeats 3] [--threads 1 2] [--arch ceq cafx ...]

Every architecture works in samples at its own rate (16 kHz at the thesis's settings) and has no 44.1 kHz mode, so
the 44.1 kHz figure is the 16 kHz one x 16/44.1 (the stream fed 44,100 samples per second of audio), as
``reatimbre afx-bench`` computes it. Each figure is the best of ``--repeats`` timings of
:func:`models.afx.experiment.realtime_factor` (``--seconds`` of noise in 16,384-sample blocks after a warm-up
block), each thread count in a fresh process. With one thread it also gives the figure by the process's CPU time
(best of the same repeats), which a busy machine disturbs less: what an unloaded core would do. Prints the load
average before and after, ``OMP_WAIT_POLICY`` (PASSIVE keeps two threads usable on a busy machine: docs/afx.md),
the fp32 matmul GFLOP/s (what the cores can do), and per architecture its multiply-accumulates per second of
16 kHz audio (counted by :func:`macs_per_second`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

from models.afx import ARCHITECTURES
from models.afx.experiment import SAMPLE_RATE_HZ, realtime_factor
from models.afx.framing import FrameModel
from models.afx.layers import AdaptiveFrontEnd
from models.afx.network import AfxNetwork, build_network

RATE_44K_HZ = 44_100


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """Best-of fp32 matmul throughput (the ceiling the convolutions and dense layers compete against)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def macs_per_second(network: AfxNetwork) -> float:
    """Multiply-accumulates of convolutions, linear layers and LSTMs per second of audio at the model's rate, the
    layers as trained, counted by running one forward pass with hooks (frame models: one output frame with its
    context, times frames per second; the WaveNet: one block of output samples)."""
    model = network.model
    total = [0.0]

    # The front-end's locally connected convolution runs through ``depthwise_conv1d`` with the ``local`` layer's
    # weights, not through that layer, so no hook sees it: its output is the filter bank's shape (one tap per output
    # sample and tap), counted with the filter bank's.
    local_taps = {
        id(module.conv): module.local.kernel_size[0]
        for module in model.modules()
        if isinstance(module, AdaptiveFrontEnd)
    }

    def conv_hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        assert isinstance(module, torch.nn.Conv1d)
        per_output = module.in_channels // module.groups * module.kernel_size[0] + local_taps.get(id(module), 0)
        total[0] += output.numel() * per_output

    def linear_hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        assert isinstance(module, torch.nn.Linear)
        total[0] += output.numel() * module.in_features

    def lstm_hook(module: torch.nn.Module, inputs: tuple, output: tuple) -> None:
        assert isinstance(module, torch.nn.LSTM)
        steps = inputs[0].shape[0] * inputs[0].shape[1]
        directions = 2 if module.bidirectional else 1
        gates = 4 * module.hidden_size
        total[0] += steps * directions * gates * (module.input_size + module.hidden_size)

    hooks = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv1d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
        elif isinstance(module, torch.nn.LSTM):
            hooks.append(module.register_forward_hook(lstm_hook))
    control = torch.zeros(1, network.knobs) if network.knobs else None
    with torch.enable_grad():  # the layers as trained (rendering folds the WaveNet's last ones: docs/afx.md)
        if isinstance(model, FrameModel):
            f = model.framing
            model(torch.randn(1, 2 * f.context_frames + 1, f.frame_samples), control)
            per_frame = total[0]
            for module in model.modules():  # the tied synthesis: a transposed convolution with the first's weights
                if module is model.front_end.conv:
                    per_frame += f.frame_samples * module.out_channels * module.kernel_size[0]
            result = per_frame * model.config.sample_rate / f.hop_samples
        else:
            samples = 4096
            model(torch.randn(1, 1, samples + model.receptive_field - 1), control)
            result = total[0] * model.config.sample_rate / samples
    for hook in hooks:
        hook.remove()
    return result


def measure(archs: list[str], threads: int, seconds: float, repeats: int) -> None:
    """Print the matmul ceiling and one table row per architecture for ``threads`` torch threads."""
    torch.set_num_threads(threads)
    print(f"matmul fp32, {threads} thread(s): {matmul_gflops():.0f} GFLOP/s", flush=True)
    for arch in archs:
        torch.manual_seed(0)
        network = build_network(arch)
        network.eval()
        gmacs = macs_per_second(network) / 1e9
        wall, cpu = [], []
        for _ in range(repeats):
            wall.append(realtime_factor(network, seconds))
            if threads == 1:
                cpu.append(realtime_factor(network, seconds, clock=time.process_time))
        by_cpu = f"{max(cpu):.2f} / {max(cpu) * SAMPLE_RATE_HZ / RATE_44K_HZ:.2f}" if cpu else "-"
        best, best_44k = max(wall), max(wall) * SAMPLE_RATE_HZ / RATE_44K_HZ
        print(f"| {arch} | {threads} | {gmacs:.2f} | {best:.2f} | {best_44k:.2f} | {by_cpu} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of audio timed per repeat (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure; the best counts (default 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)")
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    parser.add_argument("--in-process", action="store_true", help="time the first --threads count in this process")
    args = parser.parse_args(argv)
    if args.in_process:
        measure(args.arch, args.threads[0], args.seconds, args.repeats)
        return
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    print("| arch | threads | GMAC per s at 16 kHz | RTF 16 kHz | RTF 44.1 kHz (x 16/44.1) | by CPU time 16 / 44.1 |")
    print("| --- | --- | --- | --- | --- | --- |", flush=True)
    for threads in args.threads:  # a fresh process each: a thread pool once started keeps spinning
        common = ["--seconds", str(args.seconds), "--repeats", str(args.repeats), "--arch", *args.arch]
        command = [sys.executable, __file__, "--in-process", "--threads", str(threads), *common]
        subprocess.run(command, check=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
