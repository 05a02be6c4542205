"""Fuzz the real API from its OpenAPI schema: generated requests (valid and not) never get a 5xx answer, and
requests with a wrong token or a foreign Host header are always refused.

Every run draws a fresh seed and prints it (``fuzz seed: N``); ``REATIMBRE_FUZZ_SEED=N`` replays that run.
"""

from __future__ import annotations

import os
import secrets
import socket
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from starlette.testclient import TestClient

from server.app import create_app
from server.serverconfig import ServerConfig

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Host": "127.0.0.1"}
MAX_EXAMPLES_PER_OPERATION = 25
MAX_BAD_HEADER_EXAMPLES_PER_OPERATION = 6
SEED_VARIABLE = "REATIMBRE_FUZZ_SEED"


def _fuzz_seed() -> int:
    text = os.environ.get(SEED_VARIABLE, "").strip()
    return int(text) if text else secrets.randbelow(2**32)


FUZZ_SEED = _fuzz_seed()
REPLAY = f"replay with {SEED_VARIABLE}={FUZZ_SEED}"
HEADER_CHARS = string.ascii_letters + string.digits + string.punctuation  # what an HTTP header value may hold
BAD_AUTHORIZATION = st.one_of(
    st.none(),
    st.sampled_from([TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", "Bearer",
                     f"Token {TOKEN}", f"Bearer {TOKEN.upper()}", f"Bearer  x{TOKEN}"]),
    st.text(HEADER_CHARS, max_size=80).map(lambda text: f"Bearer {text}").filter(lambda value: TOKEN not in value),
    st.text(HEADER_CHARS + " ", max_size=80).filter(lambda value: TOKEN not in value and not value.startswith(" ")),
)  # fmt: skip
FOREIGN_HOST = st.one_of(
    st.sampled_from(["evil.example", "evil.example:47810", "127.0.0.1.evil.example", "localhost.evil", "10.0.0.1",
                     "0.0.0.0:47810", "[::2]", "192.168.1.20:47810", "127.0.0.2", "localhost:port", "[::1", ""]),
    st.from_regex(r"[a-z0-9.-]{1,40}(:[0-9]{1,5})?", fullmatch=True).filter(
        lambda host: host.split(":")[0] not in ("localhost", "127.0.0.1")
    ),
)  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def announce_seed(pytestconfig: pytest.Config) -> None:
    """Print the seed past pytest's output capture, so every CI log shows it and a failure can be replayed."""
    line = f"\nfuzz seed: {FUZZ_SEED} ({REPLAY})"
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


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

        @seed(FUZZ_SEED)
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case) -> None:
            response = case.call(headers=AUTH)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text} ({REPLAY})"
            if response.status_code >= 400:
                detail = response.json()["detail"]
                assert isinstance(detail, str) and "\n" not in detail, REPLAY

        try:
            check()
        except Unsatisfiable:
            # nothing in this operation can be made invalid (no body; path strings accept anything)
            assert mode is GenerationMode.NEGATIVE and not operation.body


def test_bad_tokens_and_foreign_hosts_are_always_refused(api) -> None:
    """Every operation, with a valid or invalid request, is refused when the token is wrong (401) or the Host is
    not loopback (403, checked first), with one line and no side effect."""
    manager = api.state.manager
    for operation in _operations(api):

        @seed(FUZZ_SEED)
        @given(
            case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            authorization=BAD_AUTHORIZATION | st.just(f"Bearer {TOKEN}"),
            host=FOREIGN_HOST | st.just("127.0.0.1"),
        )
        @settings(
            max_examples=MAX_BAD_HEADER_EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case, authorization: str | None, host: str) -> None:
            good_token, good_host = authorization == f"Bearer {TOKEN}", host == "127.0.0.1"
            if good_token and good_host:
                return  # the other test covers requests that should get in
            headers = {"Host": host} | ({} if authorization is None else {"Authorization": authorization})
            jobs_before = sum(manager.counts().values())
            response = case.call(headers=headers)
            expected = 401 if good_host else 403
            where = f"{case.method} {case.formatted_path} Host={host!r} Authorization={authorization!r}"
            assert response.status_code == expected, f"{where}: {response.status_code} {response.text} ({REPLAY})"
            detail = response.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail, REPLAY
            assert sum(manager.counts().values()) == jobs_before, f"{where} started a job ({REPLAY})"

        check()
