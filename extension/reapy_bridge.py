"""The hardened reapy server: reapy's wire format, loopback only, a token on every call, never blocking REAPER.

reapy's own server listens on every interface, imports any module a request names and reads each request with
blocking socket calls inside REAPER's defer loop, so one silent client freezes REAPER's UI. This server keeps
reapy's framing (8-byte little-endian length + UTF-8 JSON, ``HOLD``/``RELEASE`` batching, the greeting with the
client's address) but:

* it binds a loopback address only (:func:`require_loopback`);
* every request carries the ReaTimbre token in a ``"token"`` field (``<config dir>/token``, the HTTP server's),
  compared with :func:`hmac.compare_digest`; a request without it gets an error and the connection is closed.
  :mod:`extension.reapy_client` is the client that sends it;
* a callable is only looked up in a fixed table of ReaScript API functions; nothing is imported;
* every socket is non-blocking and one :meth:`HardenedReapyServer.serve_once` (one defer tick) spends at most
  :attr:`ServerLimits.tick_budget_seconds` on requests; bytes are buffered per connection across ticks, and a
  request not complete within :attr:`ServerLimits.request_deadline_seconds` drops its connection. ``HOLD`` (reapy's
  "answer only me until RELEASE") lasts at most :attr:`ServerLimits.hold_seconds` and
  :attr:`ServerLimits.hold_requests` requests;
* whatever a request does (bad JSON, nesting deep enough for ``RecursionError``, an API error, a vanished
  client) stays with that request or connection, and the defer loop always re-arms.

Standard library only (plus ``models``' stdlib modules): it runs in REAPER's own Python. Inside REAPER the action
``ReaTimbre_reapy server (loopback only).py`` calls :func:`start_in_reaper`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import select
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.atomic_files import write_text
from models.errors import ReaTimbreError

API_MODULE = "reapy.reascript_api"
HEADER_BYTES = 8
MAX_REQUEST_BYTES = 64 * 1024
"""A request announcing more than this is refused by closing the connection (ReaTimbre's requests are < 1 KiB)."""
RECV_CHUNK_BYTES = 64 * 1024
WRONG_TOKEN_MESSAGE = "refused: the ReaTimbre token is missing or wrong (see docs/reapy-server.md)"
REAPY_INFO_FILE_NAME = "reapy.json"
"""``<config dir>/reapy.json``: where a running hardened reapy server listens (host, port, REAPER's pid)."""

ALLOWED_FUNCTIONS = frozenset(
    {
        # what extension.reaper_ops calls
        "AddTakeToMediaItem", "CountSelectedMediaItems", "CountSelectedTracks", "CountTracks",
        "CreateNewMIDIItemInProj", "DeleteEnvelopePointRange", "Envelope_SortPoints", "GetActiveTake",
        "GetCursorPosition", "GetFXEnvelope", "GetMediaItemInfo_Value", "GetMediaItemTakeInfo_Value",
        "GetMediaItemTake_Source", "GetMediaItem_Track", "GetMediaSourceFileName", "GetMediaTrackInfo_Value",
        "GetSelectedMediaItem", "GetSelectedTrack", "GetSetMediaItemTakeInfo_String", "GetTakeName", "GetTrack",
        "InsertEnvelopePoint", "MIDI_GetPPQPosFromProjTime", "MIDI_InsertCC", "MIDI_Sort",
        "PCM_Source_CreateFromFile", "SetActiveTake", "SetMediaItemTakeInfo_Value", "SetMediaItemTake_Source",
        "TimeMap2_QNToTime", "TimeMap2_timeToQN", "TimeMap_GetTimeSigAtTime", "TrackFX_GetCount",
        "TrackFX_GetFXName", "TrackFX_GetFormattedParamValue", "TrackFX_GetNumParams", "TrackFX_GetParam",
        "TrackFX_GetParamName", "TrackFX_GetParamNormalized", "TrackFX_SetParamNormalized", "Undo_BeginBlock2",
        "Undo_EndBlock2", "UpdateArrange", "UpdateItemInProject",
        # read-only helpers for callers checking results
        "CountEnvelopePoints", "CountTakes", "GetAppVersion", "GetEnvelopePoint", "GetProjectPath", "GetTake",
        "MIDI_CountEvts", "MIDI_GetCC", "TakeIsMIDI", "ValidatePtr2",
    }
)  # fmt: skip
"""ReaScript functions (names without ``RPR_``) a client may call."""


@dataclass(frozen=True)
class ServerLimits:
    """What one client may cost REAPER's UI thread."""

    tick_budget_seconds: float = 0.005
    """Time one defer tick spends answering requests (one request already started is finished)."""
    request_deadline_seconds: float = 2.0
    """From a request's first byte to its last, and for a reply to be taken by the client; then it is dropped."""
    anonymous_idle_seconds: float = 10.0
    """A connection that has not yet sent a request with the right token is dropped after this long."""
    idle_seconds: float = 3600.0
    """A connection with no complete request for this long is dropped."""
    hold_seconds: float = 5.0
    """``HOLD`` ends by itself after this long (then other clients are answered again)."""
    hold_wait_seconds: float = 0.001
    """While held, a tick waits this long for the holder's next request (a batching client sends it within
    ~0.1 ms), then hands the UI thread back; so a silent holder costs a tick about this much."""
    hold_requests: int = 10_000
    """... or after this many requests."""
    max_connections: int = 8
    """More simultaneous clients are closed as soon as they connect."""
    max_request_bytes: int = MAX_REQUEST_BYTES


class RefusedCall(Exception):
    """A request the server will not run; its message goes back to the client as one line."""


def _refuse(what: str) -> Callable[..., Any]:
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise RefusedCall(f"refused: {what} is not an allowed ReaTimbre API function")

    return refused


def require_loopback(host: str) -> str:
    """``host`` if it is a loopback IP address (``127.0.0.0/8`` or ``::1``); anything else raises."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ReaTimbreError(f"the reapy server binds a loopback IP address only, not {host!r}") from None
    if not address.is_loopback:
        raise ReaTimbreError(f"the reapy server binds a loopback IP address only, not {host}")
    return host


def frame(payload: bytes) -> bytes:
    """reapy's framing: the payload's length as 8 little-endian bytes, then the payload."""
    return len(payload).to_bytes(HEADER_BYTES, "little") + payload


def _error(message: str) -> dict[str, Any]:
    return {"type": "error", "traceback": message}


_NONE_RESULT: dict[str, Any] = {"type": "result", "value": None}


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    address: Any
    connected_at: float
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    request_started_at: float | None = None
    """When the first byte of the request now being received arrived."""
    reply_pending_since: float | None = None
    last_request_at: float | None = None
    """When the last complete request with the right token arrived (None: none yet)."""
    closing: bool = False
    """Close once the outbox is sent (after refusing a wrong token)."""
    closed: bool = False


@dataclass
class _Hold:
    connection: _Connection
    ends_at: float
    requests_left: int


@dataclass
class ServerStats:
    """Counters for tests and diagnostics."""

    requests: int = 0
    refused_tokens: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    holds_cut: int = 0
    """HOLDs ended by their time or request limit instead of RELEASE."""
    errors: int = 0
    last_error: str = ""

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class HardenedReapyServer:
    """Serves reapy's protocol from a defer loop: call :meth:`serve_once` every tick, :meth:`close` at the end."""

    def __init__(
        self,
        port: int,
        functions: Mapping[str, Callable[..., Any]],
        token: str,
        host: str = "127.0.0.1",
        limits: ServerLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(token) < 16:
            raise ReaTimbreError("the reapy server needs the ReaTimbre token (16 characters or more)")
        require_loopback(host)
        self.limits = limits or ServerLimits()
        self._token = token.encode("utf-8")
        self._clock = clock
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            if sys.platform == "win32":  # no other process may bind the same port while we listen
                self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
            else:  # a restart may reuse the port while old connections sit in TIME_WAIT
                self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(self.limits.max_connections)
            self._listener.setblocking(False)
        except OSError as exc:
            self._listener.close()
            raise ReaTimbreError(f"the reapy server cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.connections: list[_Connection] = []
        self._hold: _Hold | None = None
        self._next_first = 0
        self.stats = ServerStats()
        self.functions: dict[str, Callable[..., Any]] = {
            name: f for name, f in functions.items() if name in ALLOWED_FUNCTIONS
        }
        self.functions["_get_api_names"] = lambda: sorted(n for n in self.functions if not n.startswith("_"))

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def holding(self) -> bool:
        return self._hold is not None

    # ----------------------------------------------------------------- one defer tick
    def serve_once(self) -> None:
        """One defer tick: accept, receive what has arrived, answer complete requests for at most the tick
        budget, send what the clients will take, drop connections past their deadlines. Never blocks longer than
        the budget; a failure is contained to its connection."""
        start = self._clock()
        ends_at = start + self.limits.tick_budget_seconds
        self._accept(start)
        self._end_hold_if_due(start)
        if self._hold is not None:
            self._serve_held(self._hold.connection, ends_at)
        else:
            count = len(self.connections)
            order = self.connections[self._next_first :] + self.connections[: self._next_first]
            for n, connection in enumerate(order):
                self._guarded(connection, self._serve_connection, connection, ends_at)
                if self._hold is not None:
                    self._serve_held(self._hold.connection, ends_at)
                    break
                if self._clock() >= ends_at:
                    self._next_first = (self._next_first + n + 1) % max(1, count)  # start there next tick
                    break
        now = self._clock()
        for connection in list(self.connections):
            self._guarded(connection, self._flush, connection)
            self._guarded(connection, self._check_deadlines, connection, now)
        self.connections = [c for c in self.connections if not c.closed]

    def _guarded(self, connection: _Connection, step: Callable[..., None], *args: Any) -> None:
        if connection.closed:
            return
        try:
            step(*args)
        except Exception as exc:  # one client's trouble never reaches REAPER's defer loop
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            self._drop(connection, "error")

    def _accept(self, now: float) -> None:
        for _ in range(self.limits.max_connections):  # bounded: a connect flood cannot hold the tick
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: try again next tick
                self.stats.last_error = f"accept: {exc}"
                return
            if len(self.connections) >= self.limits.max_connections:
                self.stats.drop("too many connections")
                sock.close()
                continue
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # the client is already gone
                sock.close()
                continue
            connection = _Connection(sock, address, connected_at=now)
            self._reply_bytes(connection, f"{address}".encode("ascii"), now)  # reapy's greeting
            self.connections.append(connection)

    def _serve_connection(self, connection: _Connection, ends_at: float) -> None:
        self._receive(connection)
        while not connection.closed and self._hold is None and not connection.outbox and not connection.closing:
            raw = self._next_request(connection)
            if raw is None:
                return
            self._answer(connection, raw)
            if self._clock() >= ends_at:
                return

    def _serve_held(self, connection: _Connection, ends_at: float) -> None:
        """Answer the holding client only, within the tick's budget, waiting at most
        :attr:`ServerLimits.hold_wait_seconds` for each of its next requests."""
        while self._hold is not None and not connection.closed:
            self._guarded(connection, self._flush, connection)
            self._guarded(connection, self._receive, connection)
            if connection.closed:
                break
            raw = self._next_request(connection) if not connection.outbox else None
            if raw is not None:
                self._guarded(connection, self._answer, connection, raw)
                now = self._clock()
                self._end_hold_if_due(now)
                if now >= ends_at:
                    return
                continue
            wait = min(ends_at - self._clock(), self.limits.hold_wait_seconds)
            if wait <= 0:
                return
            try:
                if connection.outbox:
                    ready = select.select([], [connection.sock], [], wait)[1]
                else:
                    ready = select.select([connection.sock], [], [], wait)[0]
            except (OSError, ValueError):
                self._drop(connection, "error")
                break
            if not ready:
                return
        if connection.closed and self._hold is not None and self._hold.connection is connection:
            self._hold = None

    def _end_hold_if_due(self, now: float) -> None:
        hold = self._hold
        if hold is None:
            return
        if hold.connection.closed or now >= hold.ends_at or hold.requests_left <= 0:
            self._hold = None
            if not hold.connection.closed:
                self.stats.holds_cut += 1

    # ----------------------------------------------------------------- bytes in and out
    def _receive(self, connection: _Connection) -> None:
        """Read what has arrived (at most one request's worth is buffered; TCP holds back the rest)."""
        limit = HEADER_BYTES + self.limits.max_request_bytes
        while len(connection.inbox) < limit:
            try:
                chunk = connection.sock.recv(min(RECV_CHUNK_BYTES, limit - len(connection.inbox)))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(connection, "disconnected")
                return
            if not chunk:
                said_goodbye = connection.inbox[:HEADER_BYTES] == bytes(HEADER_BYTES)  # reapy's 0-length frame
                partial = connection.inbox and not said_goodbye
                self._drop(connection, "disconnected mid-request" if partial else "disconnected")
                return
            if not connection.inbox:
                connection.request_started_at = self._clock()
            connection.inbox += chunk

    def _next_request(self, connection: _Connection) -> bytes | None:
        """The next complete request's payload, or None; closes connections whose header is unacceptable."""
        inbox = connection.inbox
        if len(inbox) < HEADER_BYTES:
            return None
        length = int.from_bytes(inbox[:HEADER_BYTES], "little")
        if length == 0:  # reapy's client announces it is leaving
            self._drop(connection, "client said goodbye")
            return None
        if length > self.limits.max_request_bytes:
            self._drop(connection, "oversize request")
            return None
        if len(inbox) < HEADER_BYTES + length:
            return None
        raw = bytes(inbox[HEADER_BYTES : HEADER_BYTES + length])
        del inbox[: HEADER_BYTES + length]
        connection.request_started_at = self._clock() if inbox else None
        return raw

    def _reply_bytes(self, connection: _Connection, payload: bytes, now: float) -> None:
        if not connection.outbox:
            connection.reply_pending_since = now
        connection.outbox += frame(payload)
        self._flush(connection)

    def _reply(self, connection: _Connection, result: dict[str, Any]) -> None:
        try:
            payload = json.dumps(result, default=str).encode("utf-8")
        except (TypeError, ValueError, RecursionError):
            payload = json.dumps(_error("the result could not be sent as JSON")).encode("utf-8")
        self._reply_bytes(connection, payload, self._clock())

    def _flush(self, connection: _Connection) -> None:
        while connection.outbox:
            try:
                sent = connection.sock.send(connection.outbox)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(connection, "disconnected")
                return
            del connection.outbox[:sent]
        connection.reply_pending_since = None
        if connection.closing:
            self._drop(connection, "wrong token")

    def _check_deadlines(self, connection: _Connection, now: float) -> None:
        limits = self.limits
        started = connection.request_started_at
        if started is not None and now - started > limits.request_deadline_seconds:
            self._drop(connection, "request too slow")
        elif connection.reply_pending_since is not None and (
            now - connection.reply_pending_since > limits.request_deadline_seconds
        ):
            self._drop(connection, "reply not taken")
        elif connection.last_request_at is None and now - connection.connected_at > limits.anonymous_idle_seconds:
            self._drop(connection, "no request with the token")
        elif connection.last_request_at is not None and now - connection.last_request_at > limits.idle_seconds:
            self._drop(connection, "idle")

    def _drop(self, connection: _Connection, reason: str) -> None:
        if connection.closed:
            return
        connection.closed = True
        self.stats.drop(reason)
        if self._hold is not None and self._hold.connection is connection:
            self._hold = None
        try:
            connection.sock.close()
        except OSError:
            pass

    # ----------------------------------------------------------------- requests
    def _answer(self, connection: _Connection, raw: bytes) -> None:
        self.stats.requests += 1
        try:
            request = json.loads(raw.decode("utf-8"), object_hook=self._decode)
        except (UnicodeDecodeError, ValueError):
            self._reply(connection, _error("refused: the request is not UTF-8 JSON"))
            return
        except RecursionError:
            self._reply(connection, _error("refused: the request is nested too deeply"))
            return
        if not isinstance(request, dict):
            self._reply(connection, _error("refused: a request must be a JSON object"))
            return
        if not self._token_matches(request.get("token")):
            self.stats.refused_tokens += 1
            connection.closing = True
            self._reply(connection, _error(WRONG_TOKEN_MESSAGE))
            return
        connection.last_request_at = self._clock()
        function = request.get("function")
        if function == "HOLD":
            if self._hold is None:
                limits = self.limits
                self._hold = _Hold(connection, connection.last_request_at + limits.hold_seconds, limits.hold_requests)
            self._reply(connection, _NONE_RESULT)
            return
        if function == "RELEASE":
            if self._hold is not None and self._hold.connection is connection:
                self._hold = None
            self._reply(connection, _NONE_RESULT)
            return
        result = self._call(function, request.get("input"))
        if self._hold is not None and self._hold.connection is connection:
            self._hold.requests_left -= 1
            self._end_hold_if_due(self._clock())  # before the reply, so the client sees the hold's end
        self._reply(connection, result)

    def _token_matches(self, supplied: Any) -> bool:
        if not isinstance(supplied, str):
            return False
        return hmac.compare_digest(supplied.encode("utf-8", "replace"), self._token)

    def _call(self, function: Any, payload: Any) -> dict[str, Any]:
        payload = payload if isinstance(payload, dict) else {}
        args, kwargs = payload.get("args") or [], payload.get("kwargs") or {}
        if not callable(function):
            return _error("refused: a request without an allowed function")
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
            return _error("refused: input must hold an args list and a kwargs object")
        try:
            return {"type": "result", "value": function(*args, **kwargs)}
        except Exception as exc:  # errors go back to the client as one line; they never stop the server
            return _error(f"{type(exc).__name__}: {exc}")

    def _decode(self, obj: dict[str, Any]) -> Any:
        if "__callable__" in obj:
            name = obj.get("name")
            if obj.get("module_name") == API_MODULE and isinstance(name, str) and name in self.functions:
                return self.functions[name]
            return _refuse(f"{obj.get('module_name')}.{name}")
        if "__reapy__" in obj or "__slice__" in obj:
            return _refuse(f"reapy object {obj.get('class', 'slice')}")
        return obj

    def close(self) -> None:
        """Close every connection and stop listening."""
        for connection in self.connections:
            self._drop(connection, "server closed")
        self.connections = []
        self._hold = None
        self._listener.close()


def reaper_python_functions(module: Any) -> dict[str, Callable[..., Any]]:
    """The allow-listed functions of a ``reaper_python`` module, by API name."""
    return {
        name: getattr(module, "RPR_" + name)
        for name in ALLOWED_FUNCTIONS
        if callable(getattr(module, "RPR_" + name, None))
    }


# --------------------------------------------------------------------------- running inside REAPER
DEFAULT_PORT = 2306
DEFAULT_LIMITS = ServerLimits()
_SERVERS: list[HardenedReapyServer] = []
_INFO_FILES: list[Path] = []
_DEFER_CODE = "import sys; sys.modules['extension.reapy_bridge'].serve_tick()"
_AT_EXIT_CODE = "import sys; sys.modules['extension.reapy_bridge'].stop_in_reaper()"


def main_function(name: str) -> Callable[[str], Any]:
    """``RPR_defer`` / ``RPR_atexit``: REAPER puts them in the running script's ``__main__``, not in
    ``reaper_python``."""
    function = getattr(sys.modules.get("__main__"), name, None)
    if not callable(function):
        raise ReaTimbreError(f"{name} is not in this script's __main__: run it as a ReaScript inside REAPER")
    return function


def start_in_reaper(
    token: str, config_directory: str | os.PathLike[str], port: int = DEFAULT_PORT
) -> HardenedReapyServer:
    """Serve from REAPER's defer loop on ``127.0.0.1:port``. Advertises the port in ``<config dir>/reapy.json``
    (with REAPER's pid, for :mod:`extension.reapy_client`), withdrawn when REAPER ends the script. Not in the
    ExtState ``reapy/server_port`` that reapy's own handshake reads: reapy's tokenless client is refused anyway,
    and finding a port there would make ``import reapy`` fail instead of warning. A second start returns the
    running server."""
    import reaper_python  # only inside REAPER (or its emulator)

    if _SERVERS:
        return _SERVERS[0]
    defer, at_exit = main_function("RPR_defer"), main_function("RPR_atexit")
    server = HardenedReapyServer(port, reaper_python_functions(reaper_python), token, limits=DEFAULT_LIMITS)
    _SERVERS.append(server)
    info_file = Path(config_directory) / REAPY_INFO_FILE_NAME
    info = {"host": server.address[0], "port": server.port, "pid": os.getpid()}
    try:
        info_file.parent.mkdir(parents=True, exist_ok=True)
        write_text(info_file, json.dumps(info) + "\n")
        _INFO_FILES.append(info_file)
        at_exit(_AT_EXIT_CODE)
        defer(_DEFER_CODE)
    except BaseException:
        stop_in_reaper()
        raise
    return server


def serve_tick() -> None:
    """One defer-loop tick for every running server; the next tick is always scheduled while one runs."""
    try:
        for server in _SERVERS:
            try:
                server.serve_once()
            except Exception as exc:  # contained: the loop must keep running
                server.stats.errors += 1
                server.stats.last_error = f"{type(exc).__name__}: {exc}"
    finally:
        if _SERVERS:
            main_function("RPR_defer")(_DEFER_CODE)


def stop_in_reaper() -> None:
    """Close the servers and withdraw the advertised port (the info file only if it is still ours)."""
    while _SERVERS:
        _SERVERS.pop().close()
    while _INFO_FILES:
        path = _INFO_FILES.pop()
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError, AttributeError):
            pass
