# @noindex
"""ReaTimbre's HTTP client for the REAPER actions (standard library only: REAPER's Python has no packages).

Finds the local server the way the server itself stores its files: ``<config dir>/token`` (the bearer token)
and ``<config dir>/server.json`` (host, port and pid while it runs). The token is sent only to the server that
``server.json`` names and only while that pid is alive; with no such server nothing is sent. The config directory
is located exactly as ``platformdirs.user_config_dir("reatimbre", appauthor=False)`` does, with
``REATIMBRE_CONFIG_DIR`` first.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from models.processes import pid_alive

APP_NAME = "reatimbre"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 47810
REQUEST_TIMEOUT_SECONDS = 5.0
PENDING_TIMEOUT_SECONDS = 30.0
"""How long a non-blocking request may take in all before it counts as unanswered."""
RECEIVE_CHUNK_BYTES = 65536


class ClientError(Exception):
    """A failure to show the user as one line (server not running, refused request, bad answer)."""


class ServerUnreachable(ClientError):
    """The server did not answer (not running, or too busy to answer in time)."""


class QueueFull(ClientError):
    """The server's job queue is full (HTTP 429): submit again later."""


def config_dir(platform: str | None = None, environ: dict[str, str] | None = None) -> str:
    """The ReaTimbre config directory: ``REATIMBRE_CONFIG_DIR``, else the platformdirs location."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    override = env.get("REATIMBRE_CONFIG_DIR")
    if override:
        return override
    if platform == "win32":
        base = env.get("WIN_PD_OVERRIDE_LOCAL_APPDATA") or env.get("LOCALAPPDATA")
        if not base:
            base = os.path.join(env.get("USERPROFILE") or os.path.expanduser("~"), "AppData", "Local")
        return os.path.join(os.path.normpath(base), APP_NAME)
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, APP_NAME)
    home = env.get("HOME") or os.path.expanduser("~")
    if platform == "darwin":
        return os.path.join(home, "Library", "Application Support", APP_NAME)
    return os.path.join(home, ".config", APP_NAME)


def read_token(directory: str | None = None) -> str:
    """The server's bearer token, or a :class:`ClientError` saying how to create it."""
    path = os.path.join(directory or config_dir(), "token")
    try:
        with open(path, encoding="ascii") as handle:
            token = handle.read().strip()
    except OSError:
        hint = "start the server once (ReaTimbre: Start local server)"
        raise ClientError(f"no ReaTimbre token at {path}: {hint}") from None
    if not token:
        raise ClientError(f"the ReaTimbre token file {path} is empty")
    return token


def server_address(directory: str | None = None) -> tuple[str, int]:
    """(host, port) of the running server, from the ``server.json`` it wrote, only while its pid is alive.

    Without that file (or with a dead pid) this raises :class:`ServerUnreachable` instead of guessing the default
    port: whatever else listens there must never receive the token.
    """
    path = os.path.join(directory or config_dir(), "server.json")
    hint = "run 'ReaTimbre: Start local server'"
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
        host, port, pid = str(info.get("host") or DEFAULT_HOST), int(info["port"]), info.get("pid")
    except FileNotFoundError:
        raise ServerUnreachable(f"ReaTimbre server is not reachable: it is not running (no {path}); {hint}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ServerUnreachable(f"ReaTimbre server is not reachable: {path} is unreadable or damaged; {hint}") from None
    if not 0 < port < 65536 or not _valid_pid(pid) or not pid_alive(pid):
        raise ServerUnreachable(f"ReaTimbre server is not reachable: the one {path} names has stopped; {hint}")
    return host, port


def server_pid(directory: str | None = None) -> int | None:
    """The process id the running server wrote to ``server.json``, if any."""
    path = os.path.join(directory or config_dir(), "server.json")
    try:
        with open(path, encoding="utf-8") as handle:
            pid = json.load(handle).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if _valid_pid(pid) else None


def _valid_pid(pid: Any) -> bool:
    return isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2**31


class Client:
    """Calls the ReaTimbre HTTP API (``/v1``) with the bearer token."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        token: str | None = None,
        timeout_seconds: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self._host = host
        self._port = port
        self._token = token
        self.timeout_seconds = timeout_seconds

    @property
    def address(self) -> tuple[str, int]:
        """Where requests go: the host and port given, else the live server ``server.json`` names (looked up for
        every request, so the token never goes to a port the server has left)."""
        if self._host and self._port:
            return self._host, self._port
        found_host, found_port = server_address()
        return self._host or found_host, self._port or found_port

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def base_url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; return the decoded JSON answer or raise :class:`ClientError`."""
        token = self._token or read_token()
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return json.loads(response.read().decode("utf-8") or "null")
        except urllib.error.HTTPError as exc:
            raise ClientError(f"ReaTimbre server refused {method} {path}: {_detail(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServerUnreachable(
                f"ReaTimbre server is not reachable at {self.host}:{self.port} ({getattr(exc, 'reason', exc)}): "
                "run 'ReaTimbre: Start local server'"
            ) from None
        except ValueError:
            raise ClientError(f"ReaTimbre server sent a malformed answer to {method} {path}") from None

    def start(self, method: str, path: str, body: dict[str, Any] | None = None) -> PendingRequest:
        """Begin a request without waiting for it: see :class:`PendingRequest`."""
        return PendingRequest(self.host, self.port, self._token or read_token(), method, "/v1" + path, body)

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    def models(self) -> list[dict[str, Any]]:
        answer = self.request("GET", "/models")
        return list(answer.get("models") or []) if isinstance(answer, dict) else []

    def submit(self, kind: str, payload: dict[str, Any]) -> str:
        """Start a job (``render``, ``steer``, ``explore``, ``coach``); return its id."""
        answer = self.request("POST", "/" + kind, payload)
        if not isinstance(answer, dict) or not answer.get("job_id"):
            raise ClientError(f"ReaTimbre server did not start a {kind} job")
        return str(answer["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/jobs/{job_id}")


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read().decode("utf-8")).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    if isinstance(detail, list):  # validation errors: keep the first message
        detail = detail[0].get("msg") if detail and isinstance(detail[0], dict) else str(detail)
    return f"{detail or exc.reason} (HTTP {exc.code})"


class PendingRequest:
    """One HTTP request on a non-blocking socket, for REAPER's defer loop: :meth:`step` does what the network
    allows right now (never waits) and returns True once :attr:`result` or :attr:`error` is set.

    HTTP/1.0 with the bearer token, so the server answers with a plain body and closes the connection.
    """

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout_seconds: float = PENDING_TIMEOUT_SECONDS,
    ) -> None:
        self.label = f"{method} {path}"
        self.where = f"{host}:{port}"
        self.result: Any = None
        self.error: ClientError | None = None
        self.done = False
        self._deadline = time.monotonic() + timeout_seconds
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        head = [
            f"{method} {path} HTTP/1.0",
            f"Host: {host}:{port}",
            f"Authorization: Bearer {token}",
            "Accept: application/json",
            f"Content-Length: {len(data)}",
        ]
        if body is not None:
            head.append("Content-Type: application/json")
        self._outgoing = ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + data
        self._incoming = bytearray()
        self._connected = False
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._socket: socket.socket | None = socket.socket(family, socket.SOCK_STREAM)
            self._socket.setblocking(False)
            code = self._socket.connect_ex((host, port))
        except OSError as exc:
            self._fail(ServerUnreachable(self._unreachable(exc)))
            return
        if code != 0 and code not in _CONNECTING:
            self._fail(ServerUnreachable(self._unreachable(os.strerror(code))))

    def _unreachable(self, reason: Any) -> str:
        return f"ReaTimbre server is not reachable at {self.where} ({reason}): run 'ReaTimbre: Start local server'"

    def step(self) -> bool:
        """Advance without blocking; True when finished."""
        if self.done:
            return True
        if time.monotonic() > self._deadline:
            self._fail(ServerUnreachable(self._unreachable("no answer in time")))
            return True
        sock = self._socket
        assert sock is not None
        try:
            if self._outgoing:
                _, writable, _ = select.select([], [sock], [], 0)
                if not writable:
                    return False
                if not self._connected:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        self._fail(ServerUnreachable(self._unreachable(os.strerror(code))))
                        return True
                    self._connected = True
                sent = sock.send(self._outgoing)
                self._outgoing = self._outgoing[sent:]
                return False
            readable, _, _ = select.select([sock], [], [], 0)
            while readable:
                chunk = sock.recv(RECEIVE_CHUNK_BYTES)
                if not chunk:
                    self._finish()
                    return True
                self._incoming += chunk
                readable, _, _ = select.select([sock], [], [], 0)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._fail(ServerUnreachable(self._unreachable(exc)))
            return True
        return False

    def cancel(self) -> None:
        """Drop the request (closes the connection)."""
        if not self.done:
            self._fail(ClientError(f"{self.label} was abandoned"))

    def _finish(self) -> None:
        head, _, body = bytes(self._incoming).partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        try:
            status = int(parts[1])
            answer = json.loads(body.decode("utf-8") or "null")
        except (IndexError, ValueError):
            self._fail(ClientError(f"ReaTimbre server sent a malformed answer to {self.label}"))
            return
        if status >= 400:
            detail = answer.get("detail") if isinstance(answer, dict) else None
            if isinstance(detail, list):
                detail = detail[0].get("msg") if detail and isinstance(detail[0], dict) else str(detail)
            reason = f"{detail or (parts[2] if len(parts) > 2 else 'error')} (HTTP {status})"
            kind = QueueFull if status == 429 else ClientError
            self._fail(kind(f"ReaTimbre server refused {self.label}: {reason}"))
            return
        self.result = answer
        self._close()

    def _fail(self, error: ClientError) -> None:
        self.error = error
        self._close()

    def _close(self) -> None:
        self.done = True
        if self._socket is not None:
            self._socket.close()
            self._socket = None


_CONNECTING = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, 10035}  # 10035: Windows' WSAEWOULDBLOCK
