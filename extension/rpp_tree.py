"""Lossless syntax tree for REAPER project (.RPP) files.

An RPP file is a tree of blocks (``<TAG params`` … ``>``) holding one field per line. This module keeps
every line's original text and line ending, so serialising an unedited tree gives back the input byte for
byte; only lines that are created or rewritten get newly formatted text (with the document's own line
ending and indentation). Bytes that are not valid UTF-8 survive through ``surrogateescape``.

Tokens follow REAPER's quoting: fields are separated by spaces; a field that contains spaces (or is empty)
is wrapped in ``"``, or ``'`` / backticks when it itself contains a double quote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from models.errors import ReaTimbreError

_QUOTES = "\"'`"


def split_fields(text: str) -> list[str]:
    """Split one RPP line (without indentation or ending) into its fields, unquoting them."""
    fields: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == " " or text[i] == "\t":
            i += 1
            continue
        if text[i] in _QUOTES:
            quote = text[i]
            end = text.find(quote, i + 1)
            if end < 0:  # unterminated quote: REAPER reads to the end of the line
                fields.append(text[i + 1 :])
                break
            fields.append(text[i + 1 : end])
            i = end + 1
        else:
            end = i
            while end < n and text[end] not in " \t":
                end += 1
            fields.append(text[i:end])
            i = end
    return fields


def quote_field(value: str) -> str:
    """Format one field the way REAPER writes it: bare when possible, quoted otherwise."""
    needs_quotes = value == "" or any(c in value for c in " \t") or value[0] in _QUOTES
    if not needs_quotes:
        return value
    for quote in _QUOTES:
        if quote not in value:
            return f"{quote}{value}{quote}"
    raise ReaTimbreError(f"cannot write an RPP field containing all three quote characters: {value!r}")


def quote_always(value: str) -> str:
    """Quote a field even without spaces, as REAPER does for file names."""
    quoted = quote_field(value)
    return quoted if quoted != value else quote_field(" " + value)[0] + value + quote_field(" " + value)[0]


def format_number(value: float) -> str:
    """Format a float compactly with up to 10 decimals (``1``, ``0.5``, ``3.14159265``)."""
    text = f"{float(value):.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@dataclass
class Line:
    """One physical line: indentation, content and line ending exactly as read (or as generated)."""

    indent: str
    content: str
    ending: str

    @property
    def fields(self) -> list[str]:
        """The line's fields, unquoted."""
        return split_fields(self.content)

    @property
    def key(self) -> str:
        """The first field (the field name), or '' for an empty line."""
        head = self.content.split(" ", 1)[0]
        return head.strip("\"'`")

    def text(self) -> str:
        """The exact text of this line, ending included."""
        return self.indent + self.content + self.ending


@dataclass
class Block:
    """A ``<TAG …`` block: its header line, child lines/blocks and the closing ``>`` line."""

    header: Line
    children: list[Line | Block] = field(default_factory=list)
    footer: Line | None = None

    @property
    def tag(self) -> str:
        """The block's tag, e.g. ``TRACK`` or ``SOURCE``."""
        return self.header.content[1:].split(" ", 1)[0]

    @property
    def params(self) -> list[str]:
        """The header's fields after the tag, unquoted."""
        return split_fields(self.header.content[1:])[1:]

    def blocks(self, tag: str | None = None) -> list[Block]:
        """Direct child blocks, optionally only those with ``tag``."""
        return [c for c in self.children if isinstance(c, Block) and (tag is None or c.tag == tag)]

    def lines(self, key: str | None = None) -> list[Line]:
        """Direct child lines, optionally only those whose first field is ``key``."""
        return [c for c in self.children if isinstance(c, Line) and (key is None or c.key == key)]

    def first_line(self, key: str) -> Line | None:
        """The first direct child line whose first field is ``key``."""
        for child in self.children:
            if isinstance(child, Line) and child.key == key:
                return child
        return None

    def walk(self) -> Iterator[Block]:
        """This block and every nested block, depth first in file order."""
        yield self
        for child in self.children:
            if isinstance(child, Block):
                yield from child.walk()

    def text(self) -> str:
        """The exact text of this block, nested children and closing line included."""
        parts = [self.header.text()]
        parts.extend(child.text() for child in self.children)
        if self.footer is not None:
            parts.append(self.footer.text())
        return "".join(parts)

    def child_indent(self) -> str:
        """Indentation for a new child line: like the existing children, else two spaces deeper."""
        for child in self.children:
            line = child.header if isinstance(child, Block) else child
            if line.content:
                return line.indent
        return self.header.indent + "  "


@dataclass
class Document:
    """A parsed RPP file: the root block plus the blank lines after it, and the dominant line ending."""

    root: Block
    trailer: list[Line]
    newline: str

    def text(self) -> str:
        """The whole file as text (encode with :func:`encode`)."""
        return self.root.text() + "".join(line.text() for line in self.trailer)

    def to_bytes(self) -> bytes:
        """The whole file as bytes, identical to the input for an unedited document."""
        return self.text().encode("utf-8", "surrogateescape")

    def make_line(self, parent: Block, fields: list[str], raw: bool = False) -> Line:
        """A new child line for ``parent``; ``fields`` are quoted as needed unless ``raw``."""
        content = " ".join(fields) if raw else " ".join(quote_field(f) for f in fields)
        return Line(parent.child_indent(), content, self.newline)

    def make_block(self, parent: Block, tag: str, params: list[str], raw_params: bool = False) -> Block:
        """A new empty child block of ``parent`` with a closing line."""
        indent = parent.child_indent()
        header_fields = [quote_field(p) for p in params] if not raw_params else params
        header = Line(indent, " ".join(["<" + tag, *header_fields]), self.newline)
        return Block(header, [], Line(indent, ">", self.newline))


def _split_physical_lines(text: str) -> list[tuple[str, str]]:
    """Split into (line without ending, ending) pairs, keeping CRLF, LF and a missing last ending."""
    out: list[tuple[str, str]] = []
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            out.append((text[start:], ""))
            break
        if end > start and text[end - 1] == "\r":
            out.append((text[start : end - 1], "\r\n"))
        else:
            out.append((text[start:end], "\n"))
        start = end + 1
    return out


_MESSAGE_EXCERPT_CHARS = 40
"""At most this many characters of a corrupt file are quoted in an error message."""


def excerpt(text: str, limit: int = _MESSAGE_EXCERPT_CHARS) -> str:
    """``text`` made safe to quote in a one-line error: at most ``limit`` characters, and every control
    character, undecodable byte or other non-printable character written as an escape (``\\x00``)."""
    shown = text[:limit]
    parts = []
    for char in shown:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (kept by surrogateescape)
            parts.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable():
            parts.append(char)
        else:
            parts.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(parts) + ("…" if len(text) > limit else "")


def parse(data: bytes) -> Document:
    """Parse RPP bytes into a :class:`Document`; raise :class:`ReaTimbreError` if it is not an RPP file."""
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        raise ReaTimbreError("RPP files with a byte-order mark are not supported")
    physical = _split_physical_lines(text)
    lines: list[Line] = []
    for raw, ending in physical:
        stripped = raw.lstrip(" \t")
        lines.append(Line(raw[: len(raw) - len(stripped)], stripped, ending))
    first = next((i for i, line in enumerate(lines) if line.content), None)
    if first is None or not lines[first].content.startswith("<REAPER_PROJECT"):
        raise ReaTimbreError("not a REAPER project: the file does not start with <REAPER_PROJECT")
    if first != 0:
        raise ReaTimbreError("not a REAPER project: text before <REAPER_PROJECT")
    root = Block(lines[0])
    stack = [root]
    index = 1
    while index < len(lines) and stack:
        line = lines[index]
        index += 1
        if line.content.startswith("<"):
            block = Block(line)
            stack[-1].children.append(block)
            stack.append(block)
        elif line.content.rstrip() == ">":
            stack.pop().footer = line
        else:
            stack[-1].children.append(line)
    if stack:
        raise ReaTimbreError(f"truncated REAPER project: block <{excerpt(stack[-1].tag)} is never closed")
    trailer = lines[index:]
    extra = next((n for n, line in enumerate(trailer) if line.content.strip()), None)
    if extra is not None:
        raise ReaTimbreError(
            f"corrupt REAPER project: content after the project's closing '>' on line {index + extra + 1}: "
            f"'{excerpt(trailer[extra].content)}'"
        )
    crlf = sum(1 for _, e in physical if e == "\r\n")
    newline = "\r\n" if crlf * 2 > len(physical) else "\n"
    return Document(root, trailer, newline)
