"""Shared test setup: every test session gets private config and data directories (token, user models,
renders), so tests never touch the real user's files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="reatimbre-tests-"))
os.environ["REATIMBRE_CONFIG_DIR"] = str(_SESSION_HOME / "config")
os.environ["REATIMBRE_DATA_DIR"] = str(_SESSION_HOME / "data")
# Test workloads are small: one torch thread avoids thread hand-off costs that made tiny steps 10x slower on a busy
# 2-core machine. Subprocesses (servers started by tests) inherit the same setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """Name of a tiny overdrive model trained end to end (a few steps) into the session's user model library."""
    from dataclasses import replace

    from models.train import RECIPES, train_effect
    from models.userdirs import user_models_dir

    recipe = replace(
        RECIPES["overdrive"],
        steps=8,
        batch_size=4,
        segment_samples=2048,
        train_clips=2,
        heldout_clips=1,
        clip_seconds=3.0,
        heldout_seconds=1.0,
        grid=(0.5,),
    )
    info = train_effect("overdrive", user_models_dir(), recipe=recipe, model_name="tiny-drive")
    return info.name
