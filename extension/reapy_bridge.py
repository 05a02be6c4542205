"""A hardened reapy server: reapy's wire protocol, bound to loopback, calling only allow-listed functions.

reapy's own server listens on every interface and its decoder imports any module a request names in a
``__callable__`` object, so anyone who can reach the port can run code. This server keeps reapy's wire
format (8-byte little-endian length + UTF-8 JSON; ``HOLD``/``RELEASE`` batching) so the unmodified reapy
client works, but:

* it binds ``127.0.0.1`` unless told otherwise;
* a callable is only ever looked up in a fixed table of ReaScript API functions (module
  ``reapy.reascript_api``); nothing is imported, anything else gets an error reply;
* requests larger than :data:`MAX_REQUEST_BYTES` close the connection.

Inside REAPER, ``reaper_scripts/ReaTimbre_reapy server.py`` starts it with the ``reaper_python`` functions;
the tests start it with the REAPER emulator's.
"""

from __future__ import annotations

import json
import socket
import traceback
import warnings
from collections.abc import Callable, Mapping
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # outside REAPER, importing reapy warns that no REAPER is reachable
    from reapy.tools.network.server import Server
    from reapy.tools.network.socket import Socket

API_MODULE = "reapy.reascript_api"
MAX_REQUEST_BYTES = 1 << 20

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
        "MIDI_CountEvts", "MIDI_GetCC", "TakeIsMIDI",
    }
)  # fmt: skip
"""ReaScript functions (names without ``RPR_``) a client may call."""


class RefusedCall(Exception):
    """A request named something that is not an allow-listed API function."""


def _refuse(what: str) -> Callable[..., Any]:
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise RefusedCall(f"refused: {what} is not an allowed ReaTimbre API function")

    return refused


class _BoundedSocket(Socket):
    """A connection whose requests may not exceed :data:`MAX_REQUEST_BYTES`."""

    def recv(self, timeout: float | None = 0.0001) -> bytes:
        self.settimeout(timeout)
        header = self._socket.recv(8)
        length = int.from_bytes(header, "little")
        if length == 0 or length > MAX_REQUEST_BYTES:
            raise ConnectionAbortedError
        self.settimeout(None)
        return self._socket.recv(length, socket.MSG_WAITALL)


class HardenedReapyServer(Server):
    """reapy's server with a safe decoder; ``functions`` maps API names to callables."""

    def __init__(self, port: int, functions: Mapping[str, Callable[..., Any]], host: str = "127.0.0.1") -> None:
        Socket.__init__(self)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.bind((host, port))
        self.listen()
        self.connections: dict[Any, Any] = {}
        self.settimeout(0.0001)
        self.functions = {name: f for name, f in functions.items() if name in ALLOWED_FUNCTIONS}
        self.functions["_get_api_names"] = lambda: sorted(n for n in self.functions if not n.startswith("_"))

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def _decode(self, obj: dict[str, Any]) -> Any:
        if "__callable__" in obj:
            name = obj.get("name")
            if obj.get("module_name") == API_MODULE and isinstance(name, str) and name in self.functions:
                return self.functions[name]
            return _refuse(f"{obj.get('module_name')}.{name}")
        if "__reapy__" in obj or "__slice__" in obj:
            return _refuse(f"reapy object {obj.get('class', 'slice')}")
        return obj

    @Socket._non_blocking
    def accept(self, *args: Any, **kwargs: Any) -> Any:
        connection, address = self._socket.accept()
        wrapped = _BoundedSocket(connection)
        self.connections[address] = wrapped
        wrapped.send(f"{address}".encode("ascii"))
        return wrapped, address

    @Socket._non_blocking
    def _get_request(self, connection: Any, address: Any) -> Any:
        try:
            raw = connection.recv()
        except (ConnectionAbortedError, ConnectionResetError):
            return {"function": self.disconnect, "input": {"args": (address,), "kwargs": {}}}
        try:
            request = json.loads(raw.decode("utf-8"), object_hook=self._decode)
        except (UnicodeDecodeError, ValueError):
            return {"function": _refuse("a malformed request"), "input": {"args": [], "kwargs": {}}}
        if not isinstance(request, dict) or "function" not in request:
            return {"function": _refuse("a request without a function"), "input": {"args": [], "kwargs": {}}}
        return request

    def _process_request(self, request: dict[str, Any], address: Any) -> dict[str, Any]:
        if request.get("function") == "HOLD":
            return self._hold_connection(address)
        function = request.get("function")
        payload = request.get("input") if isinstance(request.get("input"), dict) else {}
        args, kwargs = payload.get("args") or [], payload.get("kwargs") or {}
        if not callable(function) or not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
            function, args, kwargs = _refuse("a request without an allowed function"), [], {}
        try:
            return {"type": "result", "value": function(*args, **kwargs)}
        except Exception:  # errors go back to the client; they must never stop the server
            return {"type": "error", "traceback": traceback.format_exc(limit=2)}

    def _send_result(self, connection: Any, result: dict[str, Any]) -> None:
        connection.send(json.dumps(result, default=str).encode("utf-8"))

    def serve_once(self) -> None:
        """One defer tick: accept new clients and answer every pending request."""
        self.accept()
        results = self.process_requests(self.get_requests())
        self.send_results(results)


def reaper_python_functions(module: Any) -> dict[str, Callable[..., Any]]:
    """The allow-listed functions of a ``reaper_python`` module, by API name."""
    return {
        name: getattr(module, "RPR_" + name)
        for name in ALLOWED_FUNCTIONS
        if callable(getattr(module, "RPR_" + name, None))
    }


# --------------------------------------------------------------------------- running inside REAPER
DEFAULT_PORT = 2306
_SERVERS: list[HardenedReapyServer] = []
_DEFER = "import sys; sys.modules['extension.reapy_bridge'].serve_tick()"


def start_in_reaper(port: int = DEFAULT_PORT) -> HardenedReapyServer:
    """Start serving from REAPER's defer loop and advertise the port the way reapy's client expects
    (ExtState ``reapy/server_port``, removed again when REAPER exits)."""
    import reaper_python  # only inside REAPER

    server = HardenedReapyServer(port, reaper_python_functions(reaper_python))
    _SERVERS.append(server)
    reaper_python.RPR_SetExtState("reapy", "server_port", json.dumps(server.port), False)
    reaper_python.RPR_atexit("import sys; sys.modules['extension.reapy_bridge'].stop_in_reaper()")
    serve_tick()
    return server


def serve_tick() -> None:
    """One defer-loop tick for every running server."""
    import reaper_python

    for server in _SERVERS:
        server.serve_once()
    if _SERVERS:
        reaper_python.RPR_defer(_DEFER)


def stop_in_reaper() -> None:
    """Close the servers and withdraw the advertised port."""
    import reaper_python

    while _SERVERS:
        server = _SERVERS.pop()
        for connection in list(server.connections.values()):
            connection.close()
        server.close()
    reaper_python.RPR_DeleteExtState("reapy", "server_port", False)
