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


# Test modules whose tests train models, start server processes, run Ray or render synth datasets: a few seconds
# each. They are marked ``slow``, so ``pytest -m "not slow"`` is a quick check (under a minute); CI runs all.
SLOW_MODULES = {
    "test_afx_cli.py",
    "test_afx_training.py",
    "test_asp_tiny.py",
    "test_batch_ray.py",
    "test_coach.py",
    "test_coach_cache.py",
    "test_coach_job.py",
    "test_coach_target.py",
    "test_device_check.py",
    "test_pedal_time_start.py",
    "test_pedal_training.py",
    "test_match_cli.py",
    "test_match_encoding.py",
    "test_grid_evaluation.py",
    "test_docs_commands_run.py",
    "test_match_server.py",
    "test_match_then_coach.py",
    "test_reaper_client_paths.py",
    "test_reaper_reapy.py",
    "test_reaper_match_action.py",
    "test_reaper_scripts.py",
    "test_reapy_server_reaper.py",
    "test_server_coach_cancel.py",
    "test_server_fuzz.py",
    "test_server_hardening.py",
    "test_server_live.py",
    "test_server_synth_thread.py",
    "test_server_steer_explore.py",
    "test_steer.py",
    "test_steer_memory.py",
    "test_synth_dataset.py",
    "test_synth_repeatability.py",
    "test_training.py",
}


# Tests are handed to the two processes one by one (``--dist load --maxschedchunk 1``: ``loadfile`` kept the run of
# the docs' commands, about half of the suite's time, in one process, and ``load`` alone sends each process a first
# chunk of a quarter of the suite, which held every docs command; pytest-xdist 3.8's ``xdist_group`` marks do nothing
# with pytest 9, which ignores the node ids it rewrites). Longest first: the docs' commands, then the slow modules,
# then the rest, so that both processes start on the long tests and the short ones fill in at the end. A test must
# not rely on another test of its module running in the same process.
HEAVIEST_FIRST = ("test_docs_commands_run.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = sorted(name for name in SLOW_MODULES if not (Path(__file__).parent / name).is_file())
    if missing:
        raise pytest.UsageError(f"tests/conftest.py SLOW_MODULES names missing test files: {', '.join(missing)}")
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    # Stable: each module keeps its order.
    items.sort(key=lambda item: (item.path.name not in HEAVIEST_FIRST, item.path.name not in SLOW_MODULES))


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """Name of a tiny overdrive model (a conditioned TCN) trained end to end (a few steps) into the session's user
    model library."""
    from dataclasses import replace

    from models.effect_training import RECIPES, train_effect
    from models.tcn import TCNConfig
    from models.userdirs import user_models_dir

    recipe = replace(
        RECIPES["overdrive"],
        config=TCNConfig(channels=16, kernel_size=3, dilation_growth=2, layers=8),
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
