"""Batch rendering throughput: files/s and audio-seconds/s with 1 and 2 local workers (optionally on Ray).

    python benchmarks/batch_throughput.py [--effect NAME] [--files 8] [--seconds 5] [--workers 1,2] [--ray]
    python benchmarks/batch_throughput.py --device cuda --files 64 --seconds 10 --workers 1

Writes generated stereo 44.1 kHz programme material to a temporary folder and times ``reatimbre batch``'s
engine (:func:`server.batch.run_batch`) on it, worker start-up included, since a user pays for it too. CPU
seconds (this process and its worker processes) tell what a run costs when other jobs share the machine. Without an
installed model (or with ``--standin``) it measures an untrained model of the default effect architecture in a
temporary data directory: the arithmetic, and so the speed, is the same as a trained one's. With ``--device`` the
renders run there (the device is printed first); on CUDA one local worker renders
:data:`server.batch.FILES_PER_CUDA_PASS` files per model pass, decoding, resampling and writing included.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from models.rates import SAMPLE_RATE_HZ


def make_inputs(folder: Path, files: int, seconds: float) -> None:
    from models.material import make_program

    rng = np.random.default_rng(0)
    for index in range(files):
        audio = np.stack([make_program(seconds, SAMPLE_RATE_HZ, rng) for _ in range(2)])
        sf.write(folder / f"take{index:02d}.wav", audio.T, SAMPLE_RATE_HZ, subtype="PCM_24")


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished child processes (the worker pool)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def install_standin_model(data_dir: Path) -> str:
    """An untrained model with the default architecture and two knobs, as a user model under ``data_dir``."""
    import torch

    from models.library import save_model
    from models.tcn import ConditionedTCN, TCNConfig

    torch.manual_seed(0)
    knobs = [{"name": name, "unit": "", "minimum": 0.0, "maximum": 1.0, "default": 0.5} for name in ("knob1", "knob2")]
    sidecar = {"description": "untrained stand-in", "sample_rate": SAMPLE_RATE_HZ, "knobs": knobs, "tail_seconds": 0.0}
    save_model(ConditionedTCN(TCNConfig()), sidecar, data_dir / "models", "standin")
    return "standin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--effect", help="installed model to render through (default: the first one)")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each file")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to time")
    parser.add_argument("--ray", action="store_true", help="also time a fresh local Ray instance (2 CPUs)")
    parser.add_argument("--standin", action="store_true", help="time an untrained default-architecture model")
    parser.add_argument(
        "--files-per-pass", type=int, default=None, help="files per model pass (default: 16 on CUDA, 1 on the CPU)"
    )
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: $REATIMBRE_DEVICE, else cpu)")
    args = parser.parse_args()
    from models.device import resolve_device

    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory(prefix="reatimbre-batch-bench-") as tmp:
        root = Path(tmp)
        from models.library import list_models

        installed = [info.name for info in list_models()]
        effect = args.effect
        if args.standin or (effect is None and not installed):
            os.environ["REATIMBRE_DATA_DIR"] = str(root / "data")  # inherited by the worker processes
            effect = install_standin_model(root / "data")
            print("no trained model used: timing an untrained model of the default architecture")
        elif effect is None:
            effect = installed[0]
        from server.batch import FILES_PER_CUDA_PASS, RenderSettings, collect_inputs, plan_tasks, run_batch

        (root / "in").mkdir()
        make_inputs(root / "in", args.files, args.seconds)
        inputs = collect_inputs([str(root / "in")])
        settings = RenderSettings(effect, device=str(device.device))
        counts = [int(text) for text in args.workers.split(",")]
        runs = [(f"{n} worker{'s' if n > 1 else ''}", n, None) for n in counts]
        if args.ray:
            runs.append(("Ray, 2 CPUs", 1, "local"))
        passes = f", {FILES_PER_CUDA_PASS} files per model pass with 1 worker" if device.is_cuda else ""
        print(device.describe() + passes)
        print(f"{args.files} files x {args.seconds:g} s stereo 44.1 kHz through {effect!r}, {os.cpu_count()} CPUs")
        columns = ("wall s", 7), ("files/s", 8), ("audio s/s", 10), ("CPU s", 7), ("audio s/CPU s", 14), ("failed", 7)
        print(f"{'run':14s} " + " ".join(f"{name:>{width}s}" for name, width in columns))
        for label, workers, ray_address in runs:
            if ray_address is not None:
                import ray

                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
            tasks = plan_tasks(inputs, root / f"out-{label.replace(' ', '-')}", settings)
            started, cpu_before = time.perf_counter(), _cpu_seconds()
            summary = run_batch(
                tasks,
                workers=workers,
                ray_address="auto" if ray_address else None,
                files_per_pass=args.files_per_pass if workers == 1 and not ray_address else None,
            )
            wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
            if ray_address is not None:
                ray.shutdown()
            rendered, audio = summary.count("rendered"), summary.rendered_audio_seconds
            cpu_text = "-" if ray_address else f"{cpu:.1f}"  # Ray's workers are not this process's children
            per_cpu = "-" if ray_address else f"{audio / cpu:.1f}"
            print(
                f"{label:14s} {wall:7.2f} {rendered / wall:8.2f} {audio / wall:10.1f} {cpu_text:>7s} {per_cpu:>14s} "
                f"{len(summary.failures):7d}"
            )


if __name__ == "__main__":
    main()
