"""Matching the FX a coach step names against the plug-ins on a track (standard library only)."""

from __future__ import annotations


def resolve_fx_name(wanted: str, names: list[str], plugin_names: list[str]) -> int | None:
    """Index of the FX matching ``wanted``: exact (case-insensitive) name, else the only substring match."""
    low = wanted.casefold()
    for group in (names, plugin_names):
        exact = [i for i, n in enumerate(group) if n.casefold() == low]
        if len(exact) == 1:
            return exact[0]
    partial = {i for group in (names, plugin_names) for i, n in enumerate(group) if low in n.casefold()}
    return partial.pop() if len(partial) == 1 else None
