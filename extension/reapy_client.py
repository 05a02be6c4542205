"""ReaTimbre's client for the hardened reapy server (outside REAPER): reapy's protocol with the token on every call.

reapy's own client has no token, so the hardened server (:mod:`extension.reapy_bridge`) refuses it. This client
sends each request as reapy does (8-byte little-endian length + JSON ``{"function", "input"}``) with one more
field, ``"token"``: the ReaTimbre token from ``<config dir>/token``. It only connects to the server that
``<config dir>/reapy.json`` names while the REAPER process that wrote it is alive, so the token never goes to
whatever else listens on a port.

* :class:`TokenReapyClient` speaks the protocol; its :meth:`~TokenReapyClient.call` makes it an
  :class:`extension.reaper_ops.ReaperApi` (``call("GetSelectedTrack", 0, 0)``) without importing reapy;
* :func:`reapy_connection` also installs it as reapy's client, so ``reapy.reascript_api`` functions and
  ``reapy.inside_reaper()`` (``HOLD``/``RELEASE``) go through it, and yields an :class:`extension.reaper_ops.ReapyApi`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from extension.reapy_bridge import API_MODULE, HEADER_BYTES, REAPY_INFO_FILE_NAME, frame
from models.errors import ReaTimbreError
from models.optional import require
from models.processes import pid_alive

TIMEOUT_SECONDS = 10.0
MAX_REPLY_BYTES = 64 * 1024 * 1024


def find_server(config_directory: str | os.PathLike[str]) -> tuple[str, int]:
    """(host, port) of the running hardened reapy server, from ``<config dir>/reapy.json``; raises when there is
    none, or when the REAPER that wrote the file is gone (never guess a port: the token would go to it)."""
    path = Path(config_directory) / REAPY_INFO_FILE_NAME
    hint = "run the action 'ReaTimbre: reapy server (loopback only)' in REAPER"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        host, port, pid = str(info["host"]), int(info["port"]), int(info["pid"])
    except FileNotFoundError:
        raise ReaTimbreError(f"no hardened reapy server is running (no {path}): {hint}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ReaTimbreError(f"{path} is damaged; {hint} again") from None
    if not pid_alive(pid):
        raise ReaTimbreError(f"the REAPER that started the reapy server (pid {pid}) is gone: {hint}")
    return host, port


def _encode(value: Any) -> Any:
    """reapy's JSON conventions for what plain JSON cannot hold: reapy objects and callables."""
    if hasattr(value, "_to_dict"):
        return value._to_dict()
    if callable(value):
        return {"__callable__": True, "module_name": value.__module__, "name": value.__qualname__}
    if isinstance(value, slice):
        return {"__slice__": True, "args": (value.start, value.stop, value.step)}
    raise TypeError(f"{type(value).__name__} cannot be sent to REAPER")


class TokenReapyClient:
    """One connection to the hardened reapy server. ``request`` has reapy's client signature."""

    def __init__(self, host: str, port: int, token: str, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self.host, self.port, self._token = host, int(port), token
        try:
            self._socket = socket.create_connection((host, self.port), timeout=timeout_seconds)
        except OSError as exc:
            raise ReaTimbreError(f"the reapy server at {host}:{port} is not reachable: {exc}") from None
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.address = self._receive().decode("ascii", "replace")  # the server greets with our address

    def request(self, function: Any, input: dict[str, Any] | None = None) -> Any:  # noqa: A002 - reapy's name
        """Send one call (``function`` is an encoded callable, or ``"HOLD"``/``"RELEASE"``); return its value."""
        body = json.dumps({"function": function, "input": input, "token": self._token}, default=_encode)
        try:
            self._socket.sendall(frame(body.encode("utf-8")))
            reply = json.loads(self._receive().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise ReaTimbreError(f"the reapy server at {self.host}:{self.port} stopped answering: {exc}") from None
        if not isinstance(reply, dict) or reply.get("type") not in ("result", "error"):
            raise ReaTimbreError("the reapy server sent a malformed reply")
        if reply["type"] == "error":
            raise ReaTimbreError(f"REAPER refused the call: {reply.get('traceback')}")
        return reply.get("value")

    def call(self, name: str, *args: Any) -> Any:
        """Call a ReaScript API function by name (without ``RPR_``), as :class:`extension.reaper_ops.ReaperApi`."""
        function = {"__callable__": True, "module_name": API_MODULE, "name": name}
        return self.request(function, {"args": list(args), "kwargs": {}})

    def _receive(self) -> bytes:
        length = int.from_bytes(self._receive_exactly(HEADER_BYTES), "little")
        if length > MAX_REPLY_BYTES:
            raise ValueError(f"a reply of {length} bytes is too large")
        return self._receive_exactly(length)

    def _receive_exactly(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = self._socket.recv(min(count - len(data), 1 << 20))
            if not chunk:
                raise ConnectionResetError("the reapy server closed the connection")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.sendall(frame(b""))  # reapy's goodbye
        self._socket.close()

    def __enter__(self) -> TokenReapyClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def reapy_connection(
    token: str,
    address: tuple[str, int] | None = None,
    config_directory: str | os.PathLike[str] | None = None,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> Iterator[Any]:
    """Make reapy talk to the hardened server with the token, for the duration of the block; yields an
    :class:`extension.reaper_ops.ReapyApi`. ``address`` defaults to :func:`find_server` (``config_directory``
    defaults to ReaTimbre's)."""
    import importlib
    import warnings

    from extension.reaper_ops import ReapyApi

    if address is None:
        if config_directory is None:
            from models.userdirs import config_dir

            config_directory = config_dir()
        address = find_server(config_directory)
    client = TokenReapyClient(address[0], address[1], token, timeout_seconds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # importing reapy outside REAPER warns that its web interface is unreachable
        require("reapy", "driving a running REAPER through reapy")  # one clear line when reapy is missing
        import reapy.reascript_api
        from reapy.tools.network import machines
    previous_client, previous_local = machines.CLIENT, machines.CLIENTS.get("localhost")
    # reapy's stubs type its client slots as its own Client class; ours has the same ``request`` (all reapy
    # calls), so the stubs, not the runtime, reject it
    machines.CLIENTS["localhost"] = client  # type: ignore[assignment]
    machines.CLIENT = client  # type: ignore[assignment]
    try:
        importlib.reload(reapy.reascript_api)  # asks the server for its function names
        yield ReapyApi(reapy.reascript_api)
    finally:
        machines.CLIENT = previous_client
        if previous_local is None:
            machines.CLIENTS.pop("localhost", None)
        else:
            machines.CLIENTS["localhost"] = previous_local
        client.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.reload(reapy.reascript_api)
