"""A matched synth patch into REAPER: the item's track's synth, or a new synth track below it (standard library only).

``POST /v1/match`` answers with a ranking of synths, each with its patch file and the whole patch as the plug-in's
parameters: ``host_values`` (0-based index → normalised value, in the order a host numbers them; for Vital every
one of its 772 parameters, see ``shared/reference/reaper-python-binding.md`` §7) or, for Dexed, whose parameter
order has changed between its versions, ``host_values_by_name`` (the plug-in's parameter name → normalised value,
found on the instance with ``TrackFX_GetParamName``). REAPER's API has no call that loads a plug-in's own patch
file (``.vital``, ``.syx``), so the patch is written as parameter values:

* if the item's track already holds one of the synths (a VST3 or VST2 whose FX chain name is the synth's), the
  best-ranked of those gets its own patch;
* otherwise a track is inserted below the item's (``InsertTrackAtIndex``) and the best-ranked synth REAPER can
  load is added to it (``TrackFX_AddByName``, instantiate 1: add when not found), tried as VST3 then VST2
  (Vital, Dexed) or as VST2 (amsynth and Kars: the builds whose parameter order ReaTimbre measured); if none loads
  the new track is removed again and the answer is None (the patch files are on disk either way).

A plug-in that lacks a parameter the patch sets (another version) is refused before any value is written.

Everything happens in one undo block. Parameters a host's plug-in holds that are not parameters (Vital's
wavetables, its modulation routings) stay as they were: a new Vital starts from its init patch, as the match
assumed; in a Vital that already held another patch, load the written ``.vital`` file for an exact copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from extension.reaper_ops import (
    BUFFER_SIZE,
    ReaperApi,
    SelectedItem,
    fx_names,
    is_null,
    param_name,
    ret,
    track_index,
    undo_block,
)
from models.errors import ReaTimbreError

ADD_WHEN_NOT_FOUND = 1
"""``TrackFX_AddByName``'s ``instantiate``: a positive value adds an instance if none is found (REAPER's API help)."""


@dataclass(frozen=True)
class SynthPlugin:
    """How REAPER shows and adds one of the synths ``match`` knows."""

    synth: str
    title: str
    add_names: tuple[str, ...]
    """``TrackFX_AddByName`` names, tried in order (the type prefix picks the build)."""
    chain_kinds: tuple[str, ...]
    """FX chain name types (``VST3i: Vital (Vital Audio)`` is ``VST3``) whose parameter order ``host_values`` has."""
    level_note: str = ""
    """What a user should know about the level the plug-in plays the patch at, against the match's render."""


SYNTH_PLUGINS: dict[str, SynthPlugin] = {
    "vital": SynthPlugin("vital", "Vital", ("VST3:Vital", "VST2:Vital"), ("VST3", "VST")),
    "amsynth": SynthPlugin("amsynth", "amsynth", ("VST2:amsynth",), ("VST",)),
    "kars": SynthPlugin("kars", "Kars", ("VST2:Kars",), ("VST",)),
    "dexed": SynthPlugin(
        "dexed", "Dexed", ("VST3:Dexed", "VST2:Dexed"), ("VST3", "VST", "CLAP"),
        # measured: Dexed 1.0.1 at its full Output plays dexed-py's render of a voice at 0.122-0.125 of its level
        level_note="Dexed plays it about 18 dB quieter than the match heard it (its output stage): raise the track's "
        "volume to compare it with the item",
    ),
}  # fmt: skip

#: Other names a plug-in parameter has had in older versions: Dexed's ``TRANSPOSE`` was ``MIDDLE C`` before
#: Dexed 0.9.5 (2020; Dexed's ``Source/PluginParam.cpp``).
PARAMETER_ALIASES: dict[str, tuple[str, ...]] = {"TRANSPOSE": ("MIDDLE C",)}
VST2_NAME_CHARACTERS = 8
"""VST2 limits a parameter's name to 8 characters; hosts and plug-ins often allow more, some cut it (to 8, 16 …)."""

_CHAIN_NAME = re.compile(r"^(?P<kind>[A-Za-z0-9]+?)i?:\s*(?P<name>.*)$")


@dataclass(frozen=True)
class WrittenPatch:
    """Where a matched patch went."""

    synth: str
    track: str
    track_number: int
    """1-based, as REAPER shows it."""
    fx_name: str
    new_track: bool
    parameters: int


def synth_on_track(api: ReaperApi, track: str, plugin: SynthPlugin) -> int | None:
    """The FX index of the first instance of ``plugin`` on ``track`` in a build ``host_values`` fits, or None."""
    for index, name in enumerate(fx_names(api, track)):
        shown = _CHAIN_NAME.match(name)
        if shown is None or shown.group("kind").upper() not in plugin.chain_kinds:
            continue
        plain = shown.group("name").casefold()
        if plain == plugin.title.casefold() or plain.startswith(plugin.title.casefold() + " "):
            return index
    return None


def write_matched_patch(
    api: ReaperApi, item: SelectedItem, ranking: list[dict[str, Any]], description: str
) -> WrittenPatch | None:
    """Write the best patch into the item's track's synth, or onto a new synth track below it; None when REAPER
    has none of the synths (nothing is left changed). One undo block, closed whatever happens."""
    entries = [entry for entry in ranking if entry.get("synth") in SYNTH_PLUGINS]
    if not entries:
        raise ReaTimbreError("the match answer names none of the synths ReaTimbre can write into REAPER")
    with undo_block(api, description):
        for entry in entries:
            fx = synth_on_track(api, item.track, SYNTH_PLUGINS[entry["synth"]])
            if fx is not None:
                return _write(api, item.track, fx, entry, new_track=False)
        index = track_index(api, item.track) + 1  # the user may have moved tracks while the job ran
        api.call("InsertTrackAtIndex", index, False)
        track = ret(api.call("GetTrack", 0, index))
        if is_null(track):
            raise ReaTimbreError("REAPER did not create a track for the synth")
        for entry in entries:
            plugin = SYNTH_PLUGINS[entry["synth"]]
            for name in plugin.add_names:
                fx = int(ret(api.call("TrackFX_AddByName", track, name, False, ADD_WHEN_NOT_FOUND)))
                if fx >= 0:
                    title = f"{plugin.title}: {item.take_name or 'matched sound'}"
                    api.call("GetSetMediaTrackInfo_String", track, "P_NAME", title, True)
                    return _write(api, track, fx, entry, new_track=True)
        api.call("DeleteTrack", track)
    return None


def parameter_indices(wanted: list[str], host_names: list[str]) -> tuple[dict[str, int], list[str]]:
    """Each wanted parameter name's index among a plug-in's ``host_names``, and the names not found.

    A name matches exactly (case aside) or through :data:`PARAMETER_ALIASES`; a plug-in's name that a host cut
    short (at least :data:`VST2_NAME_CHARACTERS` long) matches the one wanted name it begins, if only one."""
    folded = [name.strip().casefold() for name in host_names]
    first: dict[str, int] = {}
    for index, shown in enumerate(folded):
        first.setdefault(shown, index)
    found: dict[str, int] = {}
    for name in wanted:
        known = [first[n.casefold()] for n in (name, *PARAMETER_ALIASES.get(name, ())) if n.casefold() in first]
        if known:
            found[name] = known[0]
    taken = set(found.values())
    for index, shown in enumerate(folded):
        if len(shown) < VST2_NAME_CHARACTERS or index in taken:
            continue
        starting = [name for name in wanted if name.casefold().startswith(shown)]
        if len(starting) == 1 and starting[0] not in found:
            found[starting[0]] = index
    return found, [name for name in wanted if name not in found]


def _patch_values(api: ReaperApi, track: str, fx: int, entry: dict[str, Any], name: str) -> dict[int, float]:
    """The patch as parameter index → normalised value on this instance; raises when the plug-in lacks any."""
    count = int(ret(api.call("TrackFX_GetNumParams", track, fx)))
    by_name = {str(key): float(value) for key, value in (entry.get("host_values_by_name") or {}).items()}
    if by_name:
        indices, missing = parameter_indices(list(by_name), [param_name(api, track, fx, p) for p in range(count)])
        if missing:
            raise ReaTimbreError(
                f"{name} has no parameter named {missing[0]!r} ({len(missing)} of the {len(by_name)} the "
                f"{entry['synth']} patch sets are missing): another version of the plug-in? (the patch file is "
                f"{entry.get('patch')})"
            )
        return {indices[key]: value for key, value in by_name.items()}
    values = {int(index): float(value) for index, value in (entry.get("host_values") or {}).items()}
    if not values or max(values) >= count:
        raise ReaTimbreError(
            f"{name} has {count} parameters, but ReaTimbre's {entry['synth']} patch sets parameter "
            f"{max(values, default=0) + 1}: another version of the plug-in? (the patch file is {entry.get('patch')})"
        )
    return values


def _write(api: ReaperApi, track: str, fx: int, entry: dict[str, Any], new_track: bool) -> WrittenPatch:
    name = str(api.call("TrackFX_GetFXName", track, fx, "", BUFFER_SIZE)[3])
    try:
        values = _patch_values(api, track, fx, entry, name)
    except ReaTimbreError:
        if new_track:
            api.call("DeleteTrack", track)
        raise
    refused = [i for i, v in sorted(values.items()) if not ret(api.call("TrackFX_SetParamNormalized", track, fx, i, v))]
    if refused:
        raise ReaTimbreError(f"{name} refused {len(refused)} of {len(values)} parameters (first: {refused[0] + 1})")
    return WrittenPatch(str(entry["synth"]), track, track_index(api, track) + 1, name, new_track, len(values))
