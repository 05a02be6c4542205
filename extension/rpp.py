"""Offline REAPER backend: read and edit .RPP project files without a running REAPER.

The same operations the REAPER actions perform live (read items and takes, add a rendered take, list FX,
write FX-parameter automation, write MIDI CC into MIDI items) applied to a project file. Only the lines an
operation touches are rewritten; every other byte (unknown blocks, plug-in state, line endings) is kept.
The result is always written to a new file (atomically); the original project is never modified.

Typical batch use::

    project = RppProject.load("song.rpp")
    for item in project.items():
        take = item.active_take
        if take and take.path:                      # resolved against the project's directory
            rendered = render(take.path)            # your rendering
            project.add_take(item, rendered, "compressor")
    project.save("song-reatimbre.rpp")
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from extension.fx_names import resolve_fx_name
from extension.rpp_tree import Block, Document, Line, format_number, parse, quote_always, split_fields
from models.atomic_files import write_bytes
from models.errors import ReaTimbreError

MIDI_PPQ = 960
"""Ticks per quarter note REAPER writes for new MIDI items."""

PLUGIN_TAGS = frozenset({"VST", "JS", "AU", "DX", "CLAP", "LV2", "VIDEO_EFFECT"})
"""Block tags inside an FXCHAIN that each start one plug-in."""

_RENAME_FIELD = {"VST": 3, "DX": 3, "AU": 2, "CLAP": 2, "LV2": 2, "JS": 1}
"""Index (among the header's fields after the tag) of the user's rename of a plug-in, per block tag, as REAPER
writes them: ``<VST "VST3: Name (Vendor)" file.vst3 0 "rename" id…``, ``<AU "AU: Name (Vendor)" "Vendor: Name"
"rename" type subtype…``, ``<CLAP "CLAP: Name (Vendor)" com.vendor.id "rename"``, ``<LV2 "LV2: Name" urn:… "rename"``,
``<JS path "rename"``."""

_SOURCE_TYPES = {
    ".wav": "WAVE",
    ".w64": "WAVE",
    ".aif": "WAVE",
    ".aiff": "WAVE",
    ".flac": "FLAC",
    ".mp3": "MP3",
    ".ogg": "VORBIS",
    ".opus": "OPUS",
}
# Lines that describe the first take when they appear in an ITEM before any TAKE line.
_TAKE0_KEYS = frozenset({"NAME", "VOLPAN", "SOFFS", "PLAYRATE", "CHANMODE", "GUID", "RECPASS", "TAKECOLOR"})


def new_guid() -> str:
    """A REAPER-style GUID string ``{XXXXXXXX-…}``."""
    return "{" + str(uuid.uuid4()).upper() + "}"


def _is_block(node: Line | Block, tag: str) -> bool:
    """Whether ``node`` is a block with this tag."""
    return isinstance(node, Block) and node.tag == tag


def _float(fields: list[str], index: int, default: float) -> float:
    try:
        return float(fields[index])
    except (IndexError, ValueError):
        return default


@dataclass
class TakeInfo:
    """One take of an item: its media source and how it is played."""

    index: int
    name: str
    source_type: str | None
    file: str | None
    """The FILE field as written in the project (may be relative, with Windows separators)."""
    path: Path | None
    """``file`` resolved against the project's directory (None for empty takes and MIDI)."""
    start_offset_seconds: float
    playrate: float
    active: bool

    @property
    def empty(self) -> bool:
        """True for a take without a media source (``TAKE NULL`` or an item's empty first take)."""
        return self.source_type is None


@dataclass
class ItemInfo:
    """A media item: where it sits on its track and its takes."""

    track_index: int
    index: int
    """0-based index of the item on its track."""
    position_seconds: float
    length_seconds: float
    selected: bool
    guid: str | None
    takes: list[TakeInfo]
    block: Block = field(repr=False)

    @property
    def active_take(self) -> TakeInfo | None:
        """The active take, or None for an item without takes."""
        return next((t for t in self.takes if t.active), None)


@dataclass
class TrackInfo:
    """A track: 0-based index, name and GUID."""

    index: int
    name: str
    guid: str | None
    selected: bool
    block: Block = field(repr=False)


@dataclass
class FxInfo:
    """One plug-in in a track's FX chain."""

    index: int
    name: str
    """The name REAPER shows: the user's rename if any, else the plug-in's name (``VST3: Vital (…)``)."""
    plugin_name: str
    kind: str
    fxid: str | None
    envelope_params: list[tuple[int, str]]
    """(parameter index, envelope name) of each parameter that has an automation envelope."""


@dataclass(frozen=True)
class EnvelopePoint:
    """One automation point: time in project seconds, value in the parameter's range, shape code."""

    time_seconds: float
    value: float
    shape: int = 0


@dataclass(frozen=True)
class MidiEvent:
    """A 3-byte MIDI event at an absolute tick position inside a MIDI source."""

    ppq: int
    status: int
    data1: int
    data2: int
    selected: bool = False
    muted: bool = False


@dataclass
class _TakeSpan:
    """Children [start, end) of an ITEM that describe one take; ``marker`` is the TAKE line, if any."""

    start: int
    end: int
    marker: Line | None


@dataclass
class _FxSpan:
    start: int
    end: int
    plugin: Block


class RppProject:
    """An RPP project loaded for editing; see the module docstring."""

    def __init__(self, document: Document, path: Path | None = None) -> None:
        self.document = document
        self.path = path

    # ----------------------------------------------------------------- loading and saving
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RppProject:
        """Read a project file; a missing or unreadable file raises :class:`ReaTimbreError`."""
        file = Path(path)
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ReaTimbreError(f"cannot read project {file}: {exc.strerror or exc}") from exc
        try:
            return cls(parse(data), file.resolve())
        except ReaTimbreError as exc:
            raise ReaTimbreError(f"{file}: {exc}") from exc

    @classmethod
    def from_bytes(cls, data: bytes, path: str | os.PathLike[str] | None = None) -> RppProject:
        """Parse project bytes; ``path`` (where it would live) anchors relative media paths."""
        return cls(parse(data), Path(path).resolve() if path else None)

    def to_bytes(self) -> bytes:
        """The project file's bytes (identical to the input where nothing was edited)."""
        return self.document.to_bytes()

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the project to ``path`` atomically and return it.

        Refuses to replace an existing file unless ``overwrite``, and refuses to move a project that
        has relative media paths to another directory (they would no longer resolve).
        """
        target = Path(path).resolve()
        if target.exists() and not overwrite:
            raise ReaTimbreError(f"{target} already exists; choose a new file name")
        if self.path is not None and target.parent != self.path.parent and self._has_relative_media():
            raise ReaTimbreError(
                f"save the project next to the original ({self.path.parent}): its relative media paths "
                "would not resolve from another folder"
            )
        if not target.parent.is_dir():
            raise ReaTimbreError(f"folder {target.parent} does not exist")
        write_bytes(target, self.to_bytes())
        self.path = target
        return target

    # ----------------------------------------------------------------- project-wide values
    @property
    def root(self) -> Block:
        """The ``REAPER_PROJECT`` block."""
        return self.document.root

    @property
    def directory(self) -> Path | None:
        """The folder relative media paths are resolved against."""
        return self.path.parent if self.path else None

    def cursor_seconds(self) -> float:
        """The edit cursor position saved in the project."""
        line = self.root.first_line("CURSOR")
        return _float(line.fields, 1, 0.0) if line else 0.0

    def tempo(self) -> tuple[float, int, int]:
        """(beats per minute, time-signature numerator, denominator); a tempo map is refused."""
        for env in self.root.blocks("TEMPOENVEX"):
            if env.lines("PT"):
                raise ReaTimbreError("projects with tempo changes (a tempo envelope) are not supported offline")
        line = self.root.first_line("TEMPO")
        if line is None:
            return 120.0, 4, 4
        fields = line.fields
        return _float(fields, 1, 120.0), int(_float(fields, 2, 4)), int(_float(fields, 3, 4))

    def time_to_qn(self, seconds: float) -> float:
        """Project time in seconds → quarter notes from the project start."""
        bpm, _, _ = self.tempo()
        return seconds * bpm / 60.0

    def qn_to_time(self, qn: float) -> float:
        """Quarter notes from the project start → project time in seconds."""
        bpm, _, _ = self.tempo()
        return qn * 60.0 / bpm

    def bar_seconds(self) -> float:
        """Length of one bar in seconds."""
        _, num, denom = self.tempo()
        return self.qn_to_time(num * 4.0 / denom)

    def resolve_media(self, file: str) -> Path:
        """Resolve a FILE field (Windows or POSIX separators, relative or absolute) to a local path."""
        windows = PureWindowsPath(file)
        if windows.drive or file.startswith(("\\\\", "/")):
            return Path(file) if not windows.drive or os.name == "nt" else Path(windows.as_posix())
        parts = PureWindowsPath(file).parts if "\\" in file else PurePosixPath(file).parts
        base = self.directory or Path.cwd()
        return base.joinpath(*parts)

    def _has_relative_media(self) -> bool:
        for block in self.root.walk():
            if block.tag == "SOURCE":
                line = block.first_line("FILE")
                if line is not None:
                    file = (line.fields + [""])[1]
                    if file and not (PureWindowsPath(file).drive or file.startswith(("/", "\\\\"))):
                        return True
        return False

    # ----------------------------------------------------------------- tracks and items
    def track_blocks(self) -> list[Block]:
        """The TRACK blocks in project order."""
        return self.root.blocks("TRACK")

    def tracks(self) -> list[TrackInfo]:
        """Every track, in order."""
        out = []
        for index, block in enumerate(self.track_blocks()):
            name_line = block.first_line("NAME")
            name = (name_line.fields + [""])[1] if name_line else ""
            sel = block.first_line("SEL")
            guid = block.params[0] if block.params else None
            out.append(TrackInfo(index, name, guid, bool(sel and _float(sel.fields, 1, 0)), block))
        return out

    def track(self, index: int) -> Block:
        """The TRACK block at a 0-based index."""
        blocks = self.track_blocks()
        if not 0 <= index < len(blocks):
            raise ReaTimbreError(f"track {index} does not exist (the project has {len(blocks)} tracks)")
        return blocks[index]

    def items(self, track: int | None = None) -> list[ItemInfo]:
        """Every item (or those on one track), in project order."""
        out = []
        for t_index, t_block in enumerate(self.track_blocks()):
            if track is not None and t_index != track:
                continue
            for i_index, block in enumerate(t_block.blocks("ITEM")):
                out.append(self.item_info(block, t_index, i_index))
        return out

    def selected_items(self) -> list[ItemInfo]:
        """The items saved as selected (``SEL 1``)."""
        return [item for item in self.items() if item.selected]

    def item_info(self, block: Block, track_index: int, index: int) -> ItemInfo:
        """Describe one ITEM block."""
        pos = block.first_line("POSITION")
        length = block.first_line("LENGTH")
        sel = block.first_line("SEL")
        guid = block.first_line("IGUID")
        return ItemInfo(
            track_index=track_index,
            index=index,
            position_seconds=_float(pos.fields, 1, 0.0) if pos else 0.0,
            length_seconds=_float(length.fields, 1, 0.0) if length else 0.0,
            selected=bool(sel and _float(sel.fields, 1, 0)),
            guid=(guid.fields + [None])[1] if guid else None,
            takes=self._takes(block),
            block=block,
        )

    def _take_spans(self, item: Block) -> list[_TakeSpan]:
        children = item.children
        take_lines = [(i, c) for i, c in enumerate(children) if isinstance(c, Line) and c.key == "TAKE"]
        markers = [i for i, _ in take_lines]
        first_take_start = next(
            (
                i
                for i, c in enumerate(children[: markers[0] if markers else len(children)])
                if (isinstance(c, Line) and c.key in _TAKE0_KEYS) or (isinstance(c, Block) and c.tag == "SOURCE")
            ),
            markers[0] if markers else len(children),
        )
        spans = [_TakeSpan(first_take_start, markers[0] if markers else len(children), None)]
        for n, (start, marker) in enumerate(take_lines):
            end = markers[n + 1] if n + 1 < len(markers) else len(children)
            spans.append(_TakeSpan(start + 1, end, marker))
        return spans

    def _takes(self, item: Block) -> list[TakeInfo]:
        spans = self._take_spans(item)
        active = next((n for n, s in enumerate(spans) if s.marker and "SEL" in s.marker.fields[1:]), 0)
        takes = []
        for n, span in enumerate(spans):
            kids = item.children[span.start : span.end]
            if n == 0 and not kids and len(spans) == 1:
                return []  # an item without any take fields
            name, offset, rate, source = "", 0.0, 1.0, None
            for child in kids:
                if isinstance(child, Line):
                    if child.key == "NAME":
                        name = (child.fields + [""])[1]
                    elif child.key == "SOFFS":
                        offset = _float(child.fields, 1, 0.0)
                    elif child.key == "PLAYRATE":
                        rate = _float(child.fields, 1, 1.0)
                elif child.tag == "SOURCE" and source is None:
                    source = child
            source_type, file, path = None, None, None
            if source is not None:
                source_type, file, path = self._describe_source(source)
            takes.append(TakeInfo(n, name, source_type, file, path, offset, rate, n == active))
        return takes

    def _describe_source(self, source: Block) -> tuple[str, str | None, Path | None]:
        kind = source.params[0] if source.params else ""
        inner = source
        while kind == "SECTION" and inner.blocks("SOURCE"):  # reversed/sectioned sources wrap the media
            inner = inner.blocks("SOURCE")[0]
            kind = inner.params[0] if inner.params else ""
        line = inner.first_line("FILE")
        file = (line.fields + [""])[1] if line else None
        return kind, file or None, self.resolve_media(file) if file else None

    def _item_location(self, item: ItemInfo | Block) -> tuple[Block, int, int]:
        block = item.block if isinstance(item, ItemInfo) else item
        for t_index, t_block in enumerate(self.track_blocks()):
            for i_index, i_block in enumerate(t_block.blocks("ITEM")):
                if i_block is block:
                    return t_block, t_index, i_index
        raise ReaTimbreError("the item is not part of this project")

    def refresh(self, item: ItemInfo | Block) -> ItemInfo:
        """Re-read an item after edits."""
        _, t_index, i_index = self._item_location(item)
        block = item.block if isinstance(item, ItemInfo) else item
        return self.item_info(block, t_index, i_index)

    def set_field(self, block: Block, fields: list[str]) -> None:
        """Replace the block's first line whose key is ``fields[0]``, or add it before the first child block."""
        new = self.document.make_line(block, fields)
        kids = block.children
        for i, child in enumerate(kids):
            if isinstance(child, Line) and child.key == fields[0]:
                kids[i] = new
                return
        at = next((i for i, c in enumerate(kids) if isinstance(c, Block) or c.key == "TAKE"), len(kids))
        kids.insert(at, new)

    def add_track(self, name: str) -> int:
        """Append a new empty track; return its 0-based index."""
        doc = self.document
        guid = new_guid()
        track = doc.make_block(self.root, "TRACK", [guid], raw_params=True)
        for fields in (["NAME", name], ["SEL", "0"], ["NCHAN", "2"], ["FX", "1"], ["TRACKID", guid]):
            track.children.append(doc.make_line(track, fields))
        kids = self.root.children
        at = next((i for i, c in enumerate(kids) if isinstance(c, Block) and c.tag == "EXTENSIONS"), len(kids))
        kids.insert(at, track)
        return len(self.track_blocks()) - 1

    def add_item(
        self, track: int, position_seconds: float, length_seconds: float, media: str | os.PathLike[str], name: str
    ) -> ItemInfo:
        """Add an audio item playing ``media`` from its start on a track (placed in time order)."""
        t_block = self.track(track)
        doc = self.document
        item = doc.make_block(t_block, "ITEM", [])
        for fields in (
            ["POSITION", format_number(position_seconds)],
            ["LENGTH", format_number(length_seconds)],
            ["SEL", "0"],
            ["IGUID", new_guid()],
        ):
            item.children.append(doc.make_line(item, fields))
        self._insert_item(t_block, item, position_seconds)
        return self.add_take(self.refresh(item), media, name, 0.0, 1.0)

    def _insert_item(self, t_block: Block, item: Block, position_seconds: float) -> None:
        kids = t_block.children
        insert_at = len(kids)
        for i, child in enumerate(kids):
            if isinstance(child, Block) and child.tag == "ITEM":
                pos = child.first_line("POSITION")
                if pos and _float(pos.fields, 1, 0.0) > position_seconds:
                    insert_at = i
                    break
        kids.insert(insert_at, item)

    def add_plugin(self, track: int, name: str, kind: str = "VST") -> int:
        """Append a plug-in (no saved state) to a track's FX chain, creating the chain; return its index."""
        if kind not in PLUGIN_TAGS:
            raise ReaTimbreError(f"unknown plug-in kind {kind!r}")
        t_block = self.track(track)
        doc = self.document
        chain = next(iter(t_block.blocks("FXCHAIN")), None)
        if chain is None:
            chain = doc.make_block(t_block, "FXCHAIN", [])
            for fields in (["SHOW", "0"], ["LASTSEL", "0"], ["DOCKED", "0"]):
                chain.children.append(doc.make_line(chain, fields))
            kids = t_block.children
            at = next((i for i, c in enumerate(kids) if isinstance(c, Block) and c.tag == "ITEM"), len(kids))
            kids.insert(at, chain)
        params = [name, "", "0", "", "0<00>", ""] if kind == "VST" else [name]
        plugin = doc.make_block(chain, kind, params)
        chain.children.append(doc.make_line(chain, ["BYPASS", "0", "0", "0"]))
        chain.children.append(plugin)
        chain.children.append(doc.make_line(chain, ["FXID", new_guid()]))
        chain.children.append(doc.make_line(chain, ["WAK", "0", "0"]))
        return len(self._fx_spans(chain)) - 1

    # ----------------------------------------------------------------- takes
    def append_empty_take(self, item: ItemInfo | Block) -> int:
        """Add an empty take (no source) after the last one; return its 0-based index."""
        block = item.block if isinstance(item, ItemInfo) else item
        doc = self.document
        spans = self._take_spans(block)
        first = len(spans) == 1 and spans[0].start == spans[0].end  # the item has no take yet
        new_lines = [
            *([] if first else [doc.make_line(block, ["TAKE"])]),
            doc.make_line(block, ["NAME", ""]),
            doc.make_line(
                block,
                [
                    "VOLPAN" if first else "TAKEVOLPAN",
                    *(["1", "0", "1", "-1"] if first else ["0", "1", "-1"]),
                ],
            ),
            doc.make_line(block, ["SOFFS", "0"]),
            doc.make_line(block, ["PLAYRATE", "1", "1", "0", "-1", "0", "0.0025"]),
            doc.make_line(block, ["CHANMODE", "0"]),
            doc.make_line(block, ["GUID", new_guid()]),
        ]
        block.children.extend(new_lines)
        return len(self._take_spans(block)) - 1

    def _span(self, block: Block, take_index: int) -> _TakeSpan:
        spans = self._take_spans(block)
        if not 0 <= take_index < len(spans):
            raise ReaTimbreError(f"take {take_index} does not exist (the item has {len(spans)} takes)")
        return spans[take_index]

    def set_take_field(self, item: ItemInfo | Block, take_index: int, fields: list[str]) -> None:
        """Replace (or add) the take's line whose first field is ``fields[0]``."""
        block = item.block if isinstance(item, ItemInfo) else item
        span = self._span(block, take_index)
        new = self.document.make_line(block, fields)
        kids = block.children
        for i in range(span.start, span.end):
            child = kids[i]
            if isinstance(child, Line) and child.key == fields[0]:
                kids[i] = new
                return
        insert_at = next(
            (i for i in range(span.start, span.end) if _is_block(kids[i], "SOURCE")),
            span.end,
        )
        kids.insert(insert_at, new)

    def set_take_source(self, item: ItemInfo | Block, take_index: int, media: str | os.PathLike[str]) -> None:
        """Point a take at a media file (replacing its source); the FILE field is written relative to the
        project's folder when the file lies inside it."""
        block = item.block if isinstance(item, ItemInfo) else item
        media_path = Path(media)
        source_type = _SOURCE_TYPES.get(media_path.suffix.lower())
        if source_type is None:
            raise ReaTimbreError(f"unsupported media type for a take: {media_path.name}")
        span = self._span(block, take_index)
        source = self.document.make_block(block, "SOURCE", [source_type])
        file_field = quote_always(self._file_field(media_path))
        source.children.append(self.document.make_line(source, ["FILE", file_field], raw=True))
        kids = block.children
        for i in range(span.start, span.end):
            if _is_block(kids[i], "SOURCE"):
                kids[i] = source
                break
        else:
            kids.insert(span.end, source)
        if span.marker is not None and "NULL" in span.marker.fields:
            fields = [f for f in span.marker.fields if f != "NULL"]
            span.marker.content = " ".join(fields)

    def _file_field(self, media: Path) -> str:
        absolute = media if media.is_absolute() else (self.directory or Path.cwd()) / media
        absolute = Path(os.path.abspath(absolute))
        if self.directory is not None:
            try:
                return str(absolute.relative_to(self.directory))
            except ValueError:
                pass
        return str(absolute)

    def set_active_take(self, item: ItemInfo | Block, take_index: int) -> None:
        """Make one take active (``TAKE SEL``), clearing the flag on the others."""
        block = item.block if isinstance(item, ItemInfo) else item
        spans = self._take_spans(block)
        if not 0 <= take_index < len(spans):
            raise ReaTimbreError(f"take {take_index} does not exist (the item has {len(spans)} takes)")
        for n, span in enumerate(spans):
            if span.marker is None:
                continue
            fields = span.marker.fields
            wanted = [f for f in fields if f != "SEL"] + (["SEL"] if n == take_index else [])
            if wanted != fields:
                span.marker.content = " ".join(wanted)

    def add_take(
        self,
        item: ItemInfo,
        media: str | os.PathLike[str],
        name: str,
        start_offset_seconds: float | None = None,
        playrate: float | None = None,
    ) -> ItemInfo:
        """Add ``media`` as a new active take named ``name``; offset and playrate default to the current
        active take's (a render of the whole source file lines up with the original). Returns the item."""
        current = item.active_take
        offset = (
            start_offset_seconds
            if start_offset_seconds is not None
            else (current.start_offset_seconds if current else 0.0)
        )
        rate = playrate if playrate is not None else (current.playrate if current else 1.0)
        index = self.append_empty_take(item)
        self.set_take_field(item, index, ["NAME", name])
        self.set_take_field(item, index, ["SOFFS", format_number(offset)])
        self.set_take_field(item, index, ["PLAYRATE", format_number(rate), "1", "0", "-1", "0", "0.0025"])
        self.set_take_source(item, index, media)
        self.set_active_take(item, index)
        return self.refresh(item)

    # ----------------------------------------------------------------- FX and automation
    def _fx_spans(self, chain: Block) -> list[_FxSpan]:
        kids = chain.children
        plugins = [(i, c) for i, c in enumerate(kids) if isinstance(c, Block) and c.tag in PLUGIN_TAGS]
        plugin_at = [i for i, _ in plugins]
        spans = []
        for n, (at, plugin) in enumerate(plugins):
            start = at
            before = kids[at - 1] if at > 0 else None
            if isinstance(before, Line) and before.key == "BYPASS":
                start = at - 1
            end = plugin_at[n + 1] if n + 1 < len(plugin_at) else len(kids)
            if end < len(kids) and n + 1 < len(plugin_at):
                prev = kids[end - 1]
                if isinstance(prev, Line) and prev.key == "BYPASS":
                    end -= 1
            spans.append(_FxSpan(start, end, plugin))
        return spans

    def fx_chain(self, track: int) -> list[FxInfo]:
        """The plug-ins on a track's FX chain, in order."""
        chain = next(iter(self.track(track).blocks("FXCHAIN")), None)
        if chain is None:
            return []
        out = []
        for n, span in enumerate(self._fx_spans(chain)):
            params = span.plugin.params
            kind = span.plugin.tag
            plugin_name = params[0] if params else kind
            if kind == "JS":
                plugin_name = f"JS: {plugin_name}"
            rename_at = _RENAME_FIELD.get(kind)
            custom = params[rename_at] if rename_at is not None and len(params) > rename_at else ""
            fxid, envs = None, []
            for child in chain.children[span.start : span.end]:
                if isinstance(child, Line) and child.key == "FXID":
                    fxid = (child.fields + [None])[1]
                elif isinstance(child, Block) and child.tag == "PARMENV":
                    envs.append((_param_index(child), (child.params + ["", "", "", "", ""])[4]))
            out.append(FxInfo(n, custom or plugin_name, plugin_name, kind, fxid, envs))
        return out

    def fx_plugin_block(self, track: int, fx_index: int) -> Block:
        """The plug-in block (``<VST``, ``<JS`` …) of one FX on a track."""
        chain = next(iter(self.track(track).blocks("FXCHAIN")), None)
        spans = self._fx_spans(chain) if chain is not None else []
        if not 0 <= fx_index < len(spans):
            raise ReaTimbreError(f"track {track} has no FX {fx_index}")
        return spans[fx_index].plugin

    def find_fx(self, track: int, name: str | None = None, index: int | None = None) -> FxInfo:
        """Find a plug-in by index or by name (exact, else a unique case-insensitive substring)."""
        chain = self.fx_chain(track)
        if index is not None:
            if not 0 <= index < len(chain):
                raise ReaTimbreError(f"track {track} has no FX {index} (it has {len(chain)})")
            return chain[index]
        if not name:
            raise ReaTimbreError("an FX name or index is needed")
        match = resolve_fx_name(name, [fx.name for fx in chain], [fx.plugin_name for fx in chain])
        if match is None:
            raise ReaTimbreError(f"no single FX on track {track} matches {name!r}")
        return chain[match]

    def fx_envelope(
        self, track: int, fx_index: int, param_index: int, create: bool = False, param_name: str = ""
    ) -> Block | None:
        """The PARMENV block automating one parameter; created (empty, active, armed) when ``create``."""
        chain = next(iter(self.track(track).blocks("FXCHAIN")), None)
        spans = self._fx_spans(chain) if chain is not None else []
        if chain is None or not 0 <= fx_index < len(spans):
            raise ReaTimbreError(f"track {track} has no FX {fx_index}")
        span = spans[fx_index]
        for child in chain.children[span.start : span.end]:
            if isinstance(child, Block) and child.tag == "PARMENV" and _param_index(child) == param_index:
                return child
        if not create:
            return None
        fx = self.fx_chain(track)[fx_index]
        label = f"{param_name} / {fx.name}" if param_name else ""
        doc = self.document
        env = doc.make_block(chain, "PARMENV", [str(param_index), "0", "1", "0.5", *([label] if label else [])])
        for fields in (
            ["EGUID", new_guid()],
            ["ACT", "1", "-1"],
            ["VIS", "1", "1", "1"],
            ["LANEHEIGHT", "0", "0"],
            ["ARM", "1"],
            ["DEFSHAPE", "0", "-1", "-1"],
        ):
            env.children.append(doc.make_line(env, fields))
        kids = chain.children
        insert_at = span.end
        for i in range(span.start, span.end):
            child = kids[i]
            if isinstance(child, Line) and child.key == "WAK":
                insert_at = i
                break
        kids.insert(insert_at, env)
        return env

    # ----------------------------------------------------------------- MIDI items
    def add_midi_item(self, track: int, position_seconds: float, length_seconds: float, name: str = "") -> ItemInfo:
        """Create an empty MIDI item (960 PPQ, quarter-note timebase) on a track, placed in time order."""
        if length_seconds <= 0:
            raise ReaTimbreError("a MIDI item needs a positive length")
        t_block = self.track(track)
        doc = self.document
        item = doc.make_block(t_block, "ITEM", [])
        for fields in (
            ["POSITION", format_number(position_seconds)],
            ["SNAPOFFS", "0"],
            ["LENGTH", format_number(length_seconds)],
            ["LOOP", "0"],
            ["ALLTAKES", "0"],
            ["FADEIN", "1", "0", "0", "1", "0", "0", "0"],
            ["FADEOUT", "1", "0", "0", "1", "0", "0", "0"],
            ["MUTE", "0", "0"],
            ["SEL", "0"],
            ["IGUID", new_guid()],
            ["NAME", name],
            ["VOLPAN", "1", "0", "1", "-1"],
            ["SOFFS", "0"],
            ["PLAYRATE", "1", "1", "0", "-1", "0", "0.0025"],
            ["CHANMODE", "0"],
            ["GUID", new_guid()],
        ):
            item.children.append(doc.make_line(item, fields))
        source = doc.make_block(item, "SOURCE", ["MIDI"])
        end_ticks = round(
            (self.time_to_qn(position_seconds + length_seconds) - self.time_to_qn(position_seconds)) * MIDI_PPQ
        )
        bpm, num, denom = self.tempo()
        for fields in (
            ["HASDATA", "1", str(MIDI_PPQ), "QN"],
            ["CCINTERP", "32"],
            ["POOLEDEVTS", new_guid()],
            ["E", str(end_ticks), "b0", "7b", "00"],
            ["CCINTERP", "32"],
            ["GUID", new_guid()],
            ["IGNTEMPO", "0", format_number(bpm), str(num), str(denom)],
        ):
            source.children.append(doc.make_line(source, fields))
        item.children.append(source)
        self._insert_item(t_block, item, position_seconds)
        return self.refresh(item)

    def _midi_source(self, item: ItemInfo | Block) -> tuple[Block, int]:
        block = item.block if isinstance(item, ItemInfo) else item
        info = self.refresh(block)
        take = info.active_take
        span = self._span(block, take.index if take else 0)
        for child in block.children[span.start : span.end]:
            if isinstance(child, Block) and child.tag == "SOURCE" and child.params[:1] == ["MIDI"]:
                has = child.first_line("HASDATA")
                ppq = int(_float(has.fields, 2, MIDI_PPQ)) if has else MIDI_PPQ
                return child, ppq
        raise ReaTimbreError("the item's active take is not a MIDI take")

    def midi_events(self, item: ItemInfo | Block) -> list[MidiEvent]:
        """The 3-byte events of an item's active MIDI take with absolute tick positions."""
        source, _ = self._midi_source(item)
        events, ticks = [], 0
        for child in source.children:
            line = child.header if isinstance(child, Block) else child
            fields = split_fields(line.content.lstrip("<"))
            if not fields or fields[0] not in _EVENT_KEYS:
                continue
            ticks += int(fields[1])
            if fields[0] in ("E", "e", "Em", "em") and len(fields) >= 5:
                events.append(
                    MidiEvent(
                        ticks,
                        int(fields[2], 16),
                        int(fields[3], 16),
                        int(fields[4], 16),
                        fields[0].startswith("e"),
                        fields[0].endswith("m"),
                    )
                )
        return events

    def ppq_from_time(self, item: ItemInfo | Block, seconds: float) -> float:
        """Project time → tick position inside the item's MIDI take (like MIDI_GetPPQPosFromProjTime)."""
        info = item if isinstance(item, ItemInfo) else self.refresh(item)
        _, ppq = self._midi_source(info)
        take = info.active_take
        offset_qn = self.time_to_qn(take.start_offset_seconds) if take else 0.0
        return (self.time_to_qn(seconds) - self.time_to_qn(info.position_seconds) + offset_qn) * ppq

    def insert_midi_event(self, item: ItemInfo | Block, ppq: int, status: int, data1: int, data2: int) -> None:
        """Insert a 3-byte event at an absolute tick, after events at the same tick (as MIDI_Sort orders)."""
        source, _ = self._midi_source(item)
        if ppq < 0:
            raise ReaTimbreError("a MIDI event cannot start before its item")
        kids = source.children
        ticks, positions = 0, []
        for i, child in enumerate(kids):
            line = child.header if isinstance(child, Block) else child
            fields = split_fields(line.content.lstrip("<"))
            if fields and fields[0] in _EVENT_KEYS:
                ticks += int(fields[1])
                positions.append((i, ticks, fields))
        end_marker = positions[-1] if positions and positions[-1][2][2:4] == ["b0", "7b"] else None
        if end_marker and ppq > end_marker[1]:
            raise ReaTimbreError("the MIDI event lies beyond the end of its item")
        prev_ticks, following = 0, None
        for i, t, _ in positions:
            if t > ppq or (end_marker is not None and i == end_marker[0]):
                following = (i, t)
                break
            prev_ticks = t
        new = self.document.make_line(
            source, ["E", str(ppq - prev_ticks), f"{status:02x}", f"{data1:02x}", f"{data2:02x}"], raw=True
        )
        if following is None:
            after = positions[-1][0] + 1 if positions else len(kids)
            kids.insert(after, new)
            return
        i, t = following
        old = kids[i]
        line = old.header if isinstance(old, Block) else old
        prefix = "<" if line.content.startswith("<") else ""
        fields = line.content.lstrip("<").split(" ")
        fields[1] = str(t - ppq)
        line.content = prefix + " ".join(fields)
        kids.insert(i, new)

    def insert_cc(self, item: ItemInfo | Block, ppq: int, channel: int, cc: int, value: int) -> None:
        """Insert a control change (channel 0..15, controller 0..127, value 0..127)."""
        if not (0 <= channel <= 15 and 0 <= cc <= 127 and 0 <= value <= 127):
            raise ReaTimbreError(f"invalid MIDI CC: channel {channel}, controller {cc}, value {value}")
        self.insert_midi_event(item, ppq, 0xB0 | channel, cc, value)


_EVENT_KEYS = frozenset({"E", "e", "Em", "em", "X", "x", "Xm", "xm"})


def _param_index(env: Block) -> int:
    first = (env.params + ["-1"])[0]
    try:
        return int(first.split(":", 1)[0])
    except ValueError:
        return -1


def envelope_points(env: Block) -> list[EnvelopePoint]:
    """The points of an envelope block, in file order."""
    out = []
    for line in env.lines("PT"):
        fields = line.fields
        out.append(EnvelopePoint(_float(fields, 1, 0.0), _float(fields, 2, 0.0), int(_float(fields, 3, 0))))
    return out


def insert_envelope_point(doc: Document, env: Block, time_seconds: float, value: float, shape: int = 0) -> None:
    """Insert a point keeping the points sorted by time (after points at the same time)."""
    new = doc.make_line(env, ["PT", format_number(time_seconds), format_number(value), str(shape)])
    kids = env.children
    insert_at = None
    last_point = None
    for i, child in enumerate(kids):
        if isinstance(child, Line) and child.key == "PT":
            last_point = i
            if _float(child.fields, 1, 0.0) > time_seconds and insert_at is None:
                insert_at = i
    if insert_at is None:
        insert_at = last_point + 1 if last_point is not None else len(kids)
    kids.insert(insert_at, new)


def delete_envelope_points(env: Block, start_seconds: float, end_seconds: float) -> int:
    """Delete points with start <= time < end; return how many were removed."""
    before = len(env.children)
    env.children = [
        c
        for c in env.children
        if not (isinstance(c, Line) and c.key == "PT" and start_seconds <= _float(c.fields, 1, 0.0) < end_seconds)
    ]
    return before - len(env.children)
