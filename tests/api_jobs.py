"""Waiting for a job through the HTTP API, shared by the API test modules."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

FINISHED = ("done", "failed", "cancelled")


def wait_for_job(client: TestClient, job_id: str, headers: dict[str, str], timeout_s: float) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{job_id}`` until the job finishes; its status, with every stage seen on the way in
    ``seen_stages`` and the ``time.monotonic()`` at which the answering request was sent in ``asked_at`` (a loaded
    machine may answer late: what the status says holds from when it was asked). Fails the test after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    stages: set[str] = set()
    while time.monotonic() < deadline:
        asked_at = time.monotonic()
        status = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        stages.add(status["stage"])
        if status["state"] in FINISHED:
            status["seen_stages"] = stages
            status["asked_at"] = asked_at
            return status
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish within {timeout_s} s (a blocked worker?)")
