"""numpy's BLAS pool is capped at one thread for every command, unless the user chose a thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from models.scaleout import THREAD_ENV_KEYS, limit_blas_threads

_PROBE = """
import json, sys
from threadpoolctl import threadpool_info
from server.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]))
"""


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in THREAD_ENV_KEYS}


def test_the_cap_applies_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in THREAD_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    with threadpool_limits(limits=2, user_api="blas"):  # restored afterwards, whatever the cap does
        assert limit_blas_threads() is True
        assert _blas_threads() and set(_blas_threads()) == {1}


def test_a_users_thread_setting_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with threadpool_limits(limits=2, user_api="blas"):
        assert limit_blas_threads() is False
        assert set(_blas_threads()) == {2}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: a BLAS pool has one thread anyway")
def test_every_command_runs_with_one_blas_thread() -> None:
    # `models` is a cheap command that uses no BLAS itself; the cap comes from the CLI's entry point.
    probe = [sys.executable, "-c", _PROBE, "models"]
    capped = subprocess.run(probe, env=_clean_env(), capture_output=True, text=True, timeout=120, check=True)
    assert set(json.loads(capped.stdout.strip().splitlines()[-1])) == {1}
    chosen = subprocess.run(
        probe,
        env={**_clean_env(), "OPENBLAS_NUM_THREADS": "2"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert set(json.loads(chosen.stdout.strip().splitlines()[-1])) == {2}
