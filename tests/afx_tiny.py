"""Scaled-down settings of the thesis's architectures for fast tests (every layer kept, widths and frames small)."""

from __future__ import annotations

TINY_FRAME = {
    "sample_rate": 8000,
    "frame_samples": 256,
    "hop_samples": 128,
    "filters": 8,
    "kernel_samples": 16,
    "local_kernel_samples": 32,
    "latent_samples": 16,
}

TINY: dict[str, dict] = {
    "ceq": {**TINY_FRAME, "hop_samples": 64, "dense_units": 16},
    "cafx": {**TINY_FRAME, "dense_units": 16, "saaf_dense_units": (8, 4, 8)},
    "wavenet": {
        "sample_rate": 8000,
        "channels": 8,
        "dilations": (1, 2, 4),
        "stacks": 1,
        "post_channels": (32, 16),
        "output_samples": 256,
    },
    "crafx": {**TINY_FRAME, "context_frames": 1, "lstm_units": (16, 8, 4), "dense_units": (8, 4, 8), "se_ratio": 2},
    "cwafx": {
        **TINY_FRAME,
        "context_frames": 1,
        "dense_units": (8, 4, 8),
        "se_ratio": 2,
        "wavenet_dilations": (1, 2, 4),
        "wavenet_stacks": 1,
    },
    "csafx": {
        **TINY_FRAME,
        "context_frames": 1,
        "lstm_units": (16, 8),
        "branch_units": 4,
        "dense_units": (8, 4, 8),
        "se_ratio": 2,
    },
}

# A real DSP task each architecture was made for (models.afx.tasks).
TASK = {
    "ceq": "lowpass",
    "cafx": "overdrive",
    "wavenet": "overdrive",
    "crafx": "tremolo",
    "cwafx": "tremolo",
    "csafx": "reverb",
}
