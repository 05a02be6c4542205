"""REAPER's Python binding (``reaper_python``), modelled from C signatures (standard library only).

REAPER generates ``reaper_python.py`` from its C API; every ``RPR_<name>`` function follows the same rules
(``shared/reference/reaper-python-binding.md`` §1, checked in public copies of the generated module):

* every parameter is positional and required;
* a function with no ``char*`` buffer and no ``int*``/``double*``/``bool*`` argument returns the bare value
  (``None`` for void); otherwise it returns a **tuple**: the return value first unless the function is void,
  then one element per argument: inputs exactly as the caller passed them, outputs converted (``char*`` →
  ``str``, ``int*`` → ``int``, ``double*`` → ``float``, ``bool*`` → ``int`` 0/1);
* C ``bool`` comes back as ``int`` 0/1, pointers as ``'(Type*)0x'`` + 16 upper-case hex digits;
* a pointer argument whose tag is not the parameter's type (``void*`` takes any tag), that is not a pointer
  string, has lower-case hex, or names an object that no longer exists is silently passed as NULL;
* ``int`` parameters refuse floats, ``bool`` parameters refuse ``None`` (ctypes' ``TypeError``), ``const char*``
  inputs are sent as ``str(value)``.

:class:`Binding` generates such functions from :data:`C_SIGNATURES`, the one table of every REAPER function
ReaTimbre calls, over an implementation object whose ``c_<name>`` methods receive C-level arguments: pointer
arguments resolved to objects (``None`` for NULL), out-arguments as :class:`Ref` cells to fill in. The emulator's
backend (:mod:`reaper_emulator.rpp_api`, REAPER's C side over a real project file) is built on it, so its call
convention and return shapes come from the signatures rather than being written function by function.

``RPR_defer``/``RPR_atexit``/``RPR_runloop`` are not C functions and not part of ``reaper_python``: REAPER
puts them in the running script's ``__main__`` namespace (``reaper_scripts/reatimbre_action.py`` reads them
from ``sys.modules["__main__"]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STRING_BUFFER_BYTES = 4 * 1024 * 1024
"""The binding's ``char*`` buffers are always 4 MiB, whatever size the caller passes."""

POINTER_HEX_DIGITS = 16

C_SIGNATURES: dict[str, str] = {
    "AddTakeToMediaItem": "MediaItem_Take* (MediaItem* item)",
    "CountEnvelopePoints": "int (TrackEnvelope* envelope)",
    "CountSelectedMediaItems": "int (ReaProject* proj)",
    "CountSelectedTracks": "int (ReaProject* proj)",
    "CountTakes": "int (MediaItem* item)",
    "CountTracks": "int (ReaProject* proj)",
    "CreateNewMIDIItemInProj": "MediaItem* (MediaTrack* track, double starttime, double endtime, "
    "const bool* qnInOptional)",
    "DeleteEnvelopePointRange": "bool (TrackEnvelope* envelope, double time_start, double time_end)",
    "DeleteExtState": "void (const char* section, const char* key, bool persist)",
    "DeleteTrack": "void (MediaTrack* tr)",
    "DeleteTrackMediaItem": "bool (MediaTrack* tr, MediaItem* it)",
    "EnumProjects": "ReaProject* (int idx, char* projfnOutOptional, int projfnOutOptional_sz)",
    "Envelope_SortPoints": "bool (TrackEnvelope* envelope)",
    "GetActiveTake": "MediaItem_Take* (MediaItem* item)",
    "GetAppVersion": "const char* ()",
    "GetCursorPosition": "double ()",
    "GetEnvelopePoint": "bool (TrackEnvelope* envelope, int ptidx, double* timeOutOptional, "
    "double* valueOutOptional, int* shapeOutOptional, double* tensionOutOptional, bool* selectedOutOptional)",
    "GetExePath": "const char* ()",
    "GetExtState": "const char* (const char* section, const char* key)",
    "GetFXEnvelope": "TrackEnvelope* (MediaTrack* track, int fxindex, int parameterindex, bool create)",
    "GetMediaItemInfo_Value": "double (MediaItem* item, const char* parmname)",
    "GetMediaItemTakeInfo_Value": "double (MediaItem_Take* take, const char* parmname)",
    "GetMediaItemTake_Item": "MediaItem* (MediaItem_Take* take)",
    "GetMediaItemTake_Source": "PCM_source* (MediaItem_Take* take)",
    "GetMediaItem_Track": "MediaTrack* (MediaItem* item)",
    "GetMediaSourceFileName": "void (PCM_source* source, char* filenamebuf, int filenamebuf_sz)",
    "GetMediaTrackInfo_Value": "double (MediaTrack* tr, const char* parmname)",
    "GetPlayState": "int ()",
    "GetProjectName": "void (ReaProject* proj, char* buf, int buf_sz)",
    "GetProjectPath": "void (char* buf, int buf_sz)",
    "GetResourcePath": "const char* ()",
    "GetSelectedMediaItem": "MediaItem* (ReaProject* proj, int selitem)",
    "GetSelectedTrack": "MediaTrack* (ReaProject* proj, int seltrackidx)",
    "GetSetMediaItemTakeInfo_String": "bool (MediaItem_Take* tk, const char* parmname, char* stringNeedBig, "
    "bool setNewValue)",
    "GetSetMediaTrackInfo_String": "bool (MediaTrack* tr, const char* parmname, char* stringNeedBig, bool setNewValue)",
    "GetTake": "MediaItem_Take* (MediaItem* item, int takeidx)",
    "GetTakeName": "const char* (MediaItem_Take* take)",
    "GetTrack": "MediaTrack* (ReaProject* proj, int trackidx)",
    "GetUserInputs": "bool (const char* title, int num_inputs, const char* captions_csv, char* retvals_csv, "
    "int retvals_csv_sz)",
    "HasExtState": "bool (const char* section, const char* key)",
    "InsertEnvelopePoint": "bool (TrackEnvelope* envelope, double time, double value, int shape, double tension, "
    "bool selected, bool* noSortInOptional)",
    "InsertMedia": "int (const char* file, int mode)",
    "InsertTrackAtIndex": "void (int idx, bool wantDefaults)",
    "MIDI_CountEvts": "int (MediaItem_Take* take, int* notecntOut, int* ccevtcntOut, int* textsyxevtcntOut)",
    "MIDI_GetCC": "bool (MediaItem_Take* take, int ccidx, bool* selectedOut, bool* mutedOut, double* ppqposOut, "
    "int* chanmsgOut, int* chanOut, int* msg2Out, int* msg3Out)",
    "MIDI_GetPPQPosFromProjTime": "double (MediaItem_Take* take, double projtime)",
    "MIDI_InsertCC": "bool (MediaItem_Take* take, bool selected, bool muted, double ppqpos, int chanmsg, int chan, "
    "int msg2, int msg3)",
    "MIDI_Sort": "void (MediaItem_Take* take)",
    "Main_OnCommand": "void (int command, int flag)",
    "NamedCommandLookup": "int (const char* command_name)",
    "PCM_Source_CreateFromFile": "PCM_source* (const char* filename)",
    "SetActiveTake": "void (MediaItem_Take* take)",
    "SetEditCurPos": "void (double time, bool moveview, bool seekplay)",
    "SetExtState": "void (const char* section, const char* key, const char* value, bool persist)",
    "SetMediaItemInfo_Value": "bool (MediaItem* item, const char* parmname, double newvalue)",
    "SetMediaItemSelected": "void (MediaItem* item, bool selected)",
    "SetMediaItemTakeInfo_Value": "bool (MediaItem_Take* take, const char* parmname, double newvalue)",
    "SetMediaItemTake_Source": "bool (MediaItem_Take* take, PCM_source* source)",
    "SetTrackSelected": "void (MediaTrack* track, bool selected)",
    "ShowConsoleMsg": "void (const char* msg)",
    "ShowMessageBox": "int (const char* msg, const char* title, int type)",
    "TakeIsMIDI": "bool (MediaItem_Take* take)",
    "TimeMap2_QNToTime": "double (ReaProject* proj, double qn)",
    "TimeMap2_timeToQN": "double (ReaProject* proj, double tpos)",
    "TimeMap_GetTimeSigAtTime": "void (ReaProject* proj, double time, int* timesig_numOut, int* timesig_denomOut, "
    "double* tempoOut)",
    "TrackFX_AddByName": "int (MediaTrack* track, const char* fxname, bool recFX, int instantiate)",
    "TrackFX_GetCount": "int (MediaTrack* track)",
    "TrackFX_GetFXName": "bool (MediaTrack* track, int fx, char* buf, int buf_sz)",
    "TrackFX_GetFormattedParamValue": "bool (MediaTrack* track, int fx, int param, char* buf, int buf_sz)",
    "TrackFX_GetNumParams": "int (MediaTrack* track, int fx)",
    "TrackFX_GetParam": "double (MediaTrack* track, int fx, int param, double* minvalOut, double* maxvalOut)",
    "TrackFX_GetParamName": "bool (MediaTrack* track, int fx, int param, char* buf, int buf_sz)",
    "TrackFX_GetParamNormalized": "double (MediaTrack* track, int fx, int param)",
    "TrackFX_SetParamNormalized": "bool (MediaTrack* track, int fx, int param, double value)",
    "Undo_BeginBlock2": "void (ReaProject* proj)",
    "Undo_EndBlock2": "void (ReaProject* proj, const char* descchange, int extraflags)",
    "UpdateArrange": "void ()",
    "UpdateItemInProject": "void (MediaItem* item)",
    "ValidatePtr2": "bool (ReaProject* proj, void* pointer, const char* ctypename)",
}
"""Every REAPER C function ReaTimbre calls (and its emulator offers), as REAPER's API declares it."""

MAIN_BUILTINS = ("RPR_defer", "RPR_atexit", "RPR_runloop")
"""Python-only functions REAPER puts into the running script's ``__main__``, each taking a string of code."""

_POINTER_TEXT = re.compile(r"^\((\w+\*|HWND)\)0x([0-9A-F]+)$")
_PARAM = re.compile(r"^(const\s+)?(\w+)\s*(\*?)\s*(\w*)$")


class Ref:
    """An out or in-out argument as the implementation sees it: ``value`` starts as the caller's placeholder."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(frozen=True)
class Param:
    ctype: str
    """``int``, ``double``, ``bool``, ``const char*``, ``char*``, ``int*``, ``MediaItem*``, ..."""
    name: str

    @property
    def is_out(self) -> bool:
        """Passed by reference and returned converted (``char*`` buffers and number pointers)."""
        return self.ctype in ("char*", "int*", "double*", "bool*", "const bool*")

    @property
    def is_object_pointer(self) -> bool:
        return self.ctype.endswith("*") and not self.is_out and self.ctype != "const char*"


@dataclass(frozen=True)
class Signature:
    name: str
    returns: str
    params: tuple[Param, ...]

    @property
    def returns_tuple(self) -> bool:
        return any(p.is_out for p in self.params)

    def python_return(self) -> tuple[str, ...]:
        """What the Python call returns: one word for a bare value (``int``, ``float``, ``str``, ``ptr``,
        ``None``); for a tuple, one word per element (``as passed`` for inputs)."""
        if not self.returns_tuple:
            return (_python_type(self.returns),)
        head = () if self.returns == "void" else (_python_type(self.returns),)
        return head + tuple(
            _python_type(p.ctype.replace("const ", "")[:-1]) if p.is_out else "as passed" for p in self.params
        )


def _python_type(ctype: str) -> str:
    if ctype == "void":
        return "None"
    if ctype in ("int", "bool"):
        return "int"
    if ctype == "double":
        return "float"
    if ctype in ("const char*", "char"):
        return "str"
    if ctype.endswith("*"):
        return "ptr"
    raise ValueError(f"no Python type for C type {ctype!r}")


def parse_signature(name: str, text: str) -> Signature:
    """``"bool (MediaTrack* track, int fx, char* buf, int buf_sz)"`` → :class:`Signature`."""
    match = re.fullmatch(r"\s*(.+?)\s*\((.*)\)\s*", text)
    if match is None:
        raise ValueError(f"{name}: cannot read C signature {text!r}")
    params = []
    for raw in filter(None, (p.strip() for p in match.group(2).split(","))):
        part = _PARAM.match(raw)
        if part is None:
            raise ValueError(f"{name}: cannot read parameter {raw!r}")
        const, base, star, pname = part.groups()
        params.append(Param(f"{'const ' if const else ''}{base}{star}", pname))
    returns = match.group(1).replace(" *", "*")
    return Signature(name, returns, tuple(params))


SIGNATURES: dict[str, Signature] = {name: parse_signature(name, text) for name, text in C_SIGNATURES.items()}


def null_pointer(ctype: str) -> str:
    """The binding's NULL for a pointer type, e.g. ``(MediaItem*)0x0000000000000000``."""
    return f"({ctype})0x{0:0{POINTER_HEX_DIGITS}X}"


class PointerTable:
    """Addresses for emulated objects, and the binding's pointer-string packing and unpacking."""

    def __init__(self, is_valid: Callable[[str, Any], bool], first_address: int = 0x10000) -> None:
        self._is_valid = is_valid
        self._objects: dict[int, tuple[str, Any]] = {}
        self._address_of: dict[tuple[str, Any], int] = {}
        self._next = first_address

    def pointer(self, ctype: str, obj: Any, key: Any = None) -> str:
        """The stable pointer string of ``obj`` (``key`` identifies it when ``obj`` is rebuilt per call)."""
        if obj is None:
            return null_pointer(ctype)
        ident = (ctype, key if key is not None else id(obj))
        address = self._address_of.get(ident)
        if address is None:
            address = self._next
            self._next += 0x10
            self._address_of[ident] = address
        self._objects[address] = (ctype, obj)
        return f"({ctype})0x{address:0{POINTER_HEX_DIGITS}X}"

    def lookup(self, text: Any) -> tuple[str, Any] | None:
        """(type, object) a pointer string names, if it is well formed and known (validity not checked)."""
        if not isinstance(text, str):
            return None
        match = _POINTER_TEXT.match(text)
        if match is None:
            return None
        digits = match.group(2)
        if len(digits) <= 8:  # the binding splits the hex as 8 digits plus the rest: short forms fail there
            raise ValueError(f"pointer {text!r} needs {POINTER_HEX_DIGITS} hex digits")
        found = self._objects.get(int(digits, 16))
        if found is None or found[0] != match.group(1):
            return None
        return found

    def resolve(self, text: Any, ctype: str) -> Any:
        """The object a pointer argument reaches C as: ``None`` (NULL) unless tag, form and validity check out."""
        found = self.lookup(text)
        if found is None:
            return None
        tag, obj = found
        if ctype != "void*" and tag != ctype:
            return None
        return obj if self._is_valid(tag, obj) else None


class Binding:
    """Generates ``RPR_<name>`` callables from :data:`SIGNATURES` over ``implementation.c_<name>`` methods."""

    def __init__(self, implementation: Any, pointers: PointerTable) -> None:
        self.implementation = implementation
        self.pointers = pointers

    def names(self) -> list[str]:
        """The functions the implementation provides."""
        return [n for n in SIGNATURES if callable(getattr(self.implementation, "c_" + n, None))]

    def function(self, name: str) -> Callable[..., Any]:
        signature = SIGNATURES.get(name)
        target = getattr(self.implementation, "c_" + name, None)
        if signature is None or target is None:
            raise AttributeError(f"module 'reaper_python' has no attribute 'RPR_{name}'")

        def call(*args: Any) -> Any:
            return self._call(signature, target, args)

        call.__name__ = call.__qualname__ = "RPR_" + name
        return call

    def _call(self, signature: Signature, target: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if len(args) != len(signature.params):
            raise TypeError(
                f"RPR_{signature.name}() takes {len(signature.params)} positional arguments but {len(args)} were given"
            )
        c_args = [self._to_c(signature.name, param, arg) for param, arg in zip(signature.params, args, strict=True)]
        result = self._from_c(signature.returns, target(*c_args))
        if not signature.returns_tuple:
            return result
        items = [] if signature.returns == "void" else [result]
        for param, arg, c_arg in zip(signature.params, args, c_args, strict=True):
            items.append(_out_value(param, c_arg) if param.is_out else arg)
        return tuple(items)

    def _to_c(self, function: str, param: Param, value: Any) -> Any:
        ctype = param.ctype
        if ctype == "int" or ctype == "int*":
            if isinstance(value, float) or not isinstance(value, int):
                raise TypeError(f"RPR_{function}: {param.name} must be an int, got {type(value).__name__}")
            return Ref(int(value)) if ctype == "int*" else int(value)
        if ctype == "double" or ctype == "double*":
            if not isinstance(value, (int, float)):
                raise TypeError(f"RPR_{function}: {param.name} must be a number, got {type(value).__name__}")
            return Ref(float(value)) if ctype == "double*" else float(value)
        if ctype in ("bool", "bool*", "const bool*"):
            if isinstance(value, float) or not isinstance(value, int):
                raise TypeError(f"RPR_{function}: {param.name} must be a bool or int, got {type(value).__name__}")
            return bool(value) if ctype == "bool" else Ref(bool(value))
        if ctype == "const char*":
            return str(value)
        if ctype == "char*":
            return Ref(str(value))
        if param.is_object_pointer:
            return self.pointers.resolve(value, ctype)
        raise TypeError(f"RPR_{function}: unsupported C type {ctype}")

    def _from_c(self, ctype: str, value: Any) -> Any:
        if ctype == "void":
            return None
        if ctype == "bool":
            return 1 if value else 0
        if ctype == "int":
            return int(value)
        if ctype == "double":
            return float(value)
        if ctype == "const char*":
            return value.decode("utf-8") if isinstance(value, bytes) else value.encode("utf-8").decode("utf-8")
        if isinstance(value, str) and _POINTER_TEXT.match(value):
            return value
        return self.pointers.pointer(ctype, value)


def _out_value(param: Param, ref: Ref) -> Any:
    if param.ctype == "char*":
        return str(ref.value)
    if param.ctype == "int*":
        return int(ref.value)
    if param.ctype == "double*":
        return float(ref.value)
    return 1 if ref.value else 0  # bool* and const bool*
