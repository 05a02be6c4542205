"""Fuzz the real API from its OpenAPI schema: generated requests (valid and not) never get a 5xx answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from starlette.testclient import TestClient

from server.app import create_app
from server.serverconfig import ServerConfig

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Host": "127.0.0.1"}
MAX_EXAMPLES_PER_OPERATION = 25


@pytest.fixture(autouse=True)
def ieee_subnormals() -> None:
    """Audio libraries loaded by earlier tests (JUCE-based synth hosts) can leave the CPU flushing subnormal floats
    to zero; hypothesis refuses to generate floats in that state, so restore IEEE behaviour for this thread."""
    import torch

    torch.set_flush_denormal(False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    output_dir: Path = tmp_path_factory.mktemp("fuzz-renders")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a port nobody listens on: no REAPER
        probe.bind(("127.0.0.1", 0))
        osc_port = probe.getsockname()[1]
    config = ServerConfig(token=TOKEN, output_dir=output_dir, workers=1, queue_size=4, osc_reaper_port=osc_port)
    app = create_app(config)
    with TestClient(app):  # runs the lifespan, so shutdown stops the job threads
        yield app


def _operations(app) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_generated_requests_never_get_a_server_error(api, mode: GenerationMode) -> None:
    operations = _operations(api)
    paths = {op.path for op in operations}
    assert paths >= {"/v1/health", "/v1/models", "/v1/render", "/v1/steer", "/v1/explore", "/v1/jobs/{job_id}"}
    assert paths >= {"/v1/osc/fxparam", "/v1/osc/feedback"}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case) -> None:
            response = case.call(headers=AUTH)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
            if response.status_code >= 400:
                detail = response.json()["detail"]
                assert isinstance(detail, str) and "\n" not in detail

        try:
            check()
        except Unsatisfiable:
            # nothing in this operation can be made invalid (no body; path strings accept anything)
            assert mode is GenerationMode.NEGATIVE and not operation.body
