"""OSC link to REAPER's control surface: push FX parameter values for live audition, collect feedback.

Addresses follow REAPER's ``Default.ReaperOSC`` patterns with 1-based indices:
``/track/<t>/fx/<f>/fxparam/<p>/value`` (normalised 0..1) to set a parameter; REAPER reports values and names
back on the same patterns (also ``/fx/<f>/fxparam/<p>/...`` and ``/fxparam/<p>/...`` for the selected track
and focused FX). Malformed packets and unexpected messages are ignored and logged, never raised.
"""

from __future__ import annotations

import logging
import math
import re
import socketserver
import sys
import threading
from dataclasses import dataclass
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket, ParseError
from pythonosc.parsing import osc_types
from pythonosc.udp_client import SimpleUDPClient

from models.errors import ReaTimbreError

log = logging.getLogger("reatimbre.osc")

MAX_REMEMBERED_PARAMS = 4096
MAX_LOGGED_REASON_CHARS = 300
_FEEDBACK_ADDRESS = re.compile(
    r"^(?:/track/(?P<track>\d+))?(?:/fx/(?P<fx>\d+))?/fxparam/(?P<param>\d+)/(?P<field>value|value/str|name)$"
)


def fx_param_address(track: int, fx: int, param: int) -> str:
    """The ``Default.ReaperOSC`` address that sets one FX parameter (all indices 1-based)."""
    for label, index in (("track", track), ("fx", fx), ("param", param)):
        if not isinstance(index, int) or isinstance(index, bool) or index < 1:
            raise ReaTimbreError(f"OSC {label} index must be an integer >= 1 (REAPER counts from 1), got {index!r}")
    return f"/track/{track}/fx/{fx}/fxparam/{param}/value"


@dataclass
class ParamFeedback:
    """The latest REAPER told us about one FX parameter; ``track``/``fx`` None = selected/focused."""

    track: int | None
    fx: int | None
    param: int
    value_normalized: float | None = None
    value_text: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "fx": self.fx,
            "param": self.param,
            "value": self.value_normalized,
            "text": self.value_text,
            "name": self.name,
        }


class FeedbackStore:
    """Thread-safe record of REAPER's parameter feedback and of the packets that were ignored."""

    def __init__(self, max_params: int = MAX_REMEMBERED_PARAMS) -> None:
        self._lock = threading.Lock()
        self._params: dict[tuple[int | None, int | None, int], ParamFeedback] = {}
        self._max_params = max_params
        self.ignored_packets = 0

    def handle_datagram(self, datagram: bytes, sender: str = "?") -> None:
        """Parse one UDP datagram and record what it says; anything malformed is logged and counted."""
        try:
            messages = [timed.message for timed in OscPacket(datagram).messages]
        except RecursionError:
            self.ignore(f"OSC packet ({len(datagram)} bytes) from {sender}: bundles nested too deeply")
            return
        except (ParseError, IndexError, ValueError, TypeError, OverflowError, UnicodeError) as exc:
            self.ignore(f"malformed OSC packet ({len(datagram)} bytes) from {sender}: {_first_line(exc)}")
            return
        for message in messages:
            self._record(message, sender)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            params = [feedback.to_dict() for feedback in self._params.values()]
            return {"params": params, "ignored_packets": self.ignored_packets}

    def value(self, track: int | None, fx: int | None, param: int) -> float | None:
        with self._lock:
            feedback = self._params.get((track, fx, param))
            return None if feedback is None else feedback.value_normalized

    def _record(self, message: OscMessage, sender: str) -> None:
        match = _FEEDBACK_ADDRESS.match(message.address)
        if match is None:
            log.debug("OSC message %s from %s is not FX parameter feedback; ignored", message.address, sender)
            return
        params = message.params
        if len(params) != 1:
            self.ignore(f"OSC {message.address} from {sender} carries {len(params)} arguments, expected 1")
            return
        if not _argument_bytes_present(message.dgram):
            # python-osc reads a missing float as 0.0; a truncated packet must not set a parameter to zero
            self.ignore(f"OSC {message.address} from {sender}: truncated, the argument's bytes are missing")
            return
        argument = params[0]
        field = match["field"]
        if field == "value":
            if isinstance(argument, bool) or not isinstance(argument, int | float) or not math.isfinite(argument):
                self.ignore(f"OSC {message.address} from {sender}: value {argument!r} is not a finite number")
                return
        elif not isinstance(argument, str):
            self.ignore(f"OSC {message.address} from {sender}: expected a string, got {argument!r}")
            return
        key = (_index(match["track"]), _index(match["fx"]), int(match["param"]))
        if min(index for index in key if index is not None) < 1:
            self.ignore(f"OSC {message.address} from {sender}: indices start at 1")
            return
        with self._lock:
            feedback = self._params.get(key)
            if feedback is None:
                if len(self._params) >= self._max_params:
                    self._params.pop(next(iter(self._params)))
                feedback = self._params[key] = ParamFeedback(*key)
            if field == "value":
                feedback.value_normalized = min(1.0, max(0.0, float(argument)))
            elif field == "value/str":
                feedback.value_text = argument
            else:
                feedback.name = argument

    def ignore(self, reason: str) -> None:
        with self._lock:
            self.ignored_packets += 1
        log.warning("ignored %s", " ".join(reason.split())[:MAX_LOGGED_REASON_CHARS])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _argument_bytes_present(datagram: bytes) -> bool:
    """True when a message datagram has bytes after its address and type tag string."""
    try:
        _, index = osc_types.get_string(datagram, 0)
        _, index = osc_types.get_string(datagram, index)
    except osc_types.ParseError:
        return False
    return len(datagram) > index


def _index(text: str | None) -> int | None:
    return None if text is None else int(text)


class _FeedbackHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        datagram = self.request[0]
        store: FeedbackStore = self.server.feedback  # type: ignore[attr-defined]
        store.handle_datagram(datagram, sender=f"{self.client_address[0]}:{self.client_address[1]}")


class _FeedbackServer(socketserver.UDPServer):
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], feedback: FeedbackStore) -> None:
        self.feedback = feedback
        super().__init__(address, _FeedbackHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Last resort for anything handle_datagram did not foresee: count it and log one line, no traceback.
        error = sys.exc_info()[1]
        self.feedback.ignore(f"OSC packet from {client_address} could not be handled ({type(error).__name__})")


class OscBridge:
    """Sends FX parameter values to REAPER; with ``listen_port``, records the feedback REAPER sends back."""

    def __init__(
        self,
        reaper_host: str,
        reaper_port: int,
        listen_port: int | None = None,
        listen_host: str = "127.0.0.1",
    ) -> None:
        if not 1 <= reaper_port <= 65535:
            raise ReaTimbreError(f"REAPER's OSC port must be 1..65535, got {reaper_port}")
        self.reaper_address = (reaper_host, reaper_port)
        self.feedback = FeedbackStore()
        self._listen_address = None if listen_port is None else (listen_host, listen_port)
        self._client = SimpleUDPClient(reaper_host, reaper_port)
        self._server: _FeedbackServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def listen_port(self) -> int | None:
        """The UDP port feedback is received on (the real one when 0 was asked for), or None."""
        return None if self._server is None else self._server.server_address[1]

    def start(self) -> None:
        """Start listening for feedback (no-op without a listen port)."""
        if self._listen_address is None or self._server is not None:
            return
        try:
            self._server = _FeedbackServer(self._listen_address, self.feedback)
        except OSError as exc:
            raise ReaTimbreError(f"cannot listen for OSC on {self._listen_address}: {exc}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name="reatimbre-osc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def send_fx_param(self, track: int, fx: int, param: int, value_normalized: float) -> str:
        """Set parameter ``param`` of FX ``fx`` on track ``track`` (all 1-based) to ``value_normalized``."""
        address = fx_param_address(track, fx, param)
        if not math.isfinite(value_normalized) or not 0.0 <= value_normalized <= 1.0:
            raise ReaTimbreError(f"an FX parameter value must be normalised to 0..1, got {value_normalized}")
        try:
            self._client.send_message(address, float(value_normalized))
        except OSError as exc:
            host, port = self.reaper_address
            raise ReaTimbreError(f"cannot send OSC to REAPER at {host}:{port}: {exc.strerror or exc}") from None
        return address
