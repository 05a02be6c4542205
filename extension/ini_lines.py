"""Line-preserving edits of REAPER's ini files (reaper.ini, reaper-kb.ini, reaper-extstate.ini, __startup.py).

Standard library only (install.py runs before anything else is installed). A file is held as its physical lines,
each with its own ending; an edit touches only the lines it names, so every other byte stays as it was. Bytes
that are not UTF-8 survive through ``surrogateescape``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IniLines:
    """A text file as a list of lines (endings kept) plus the ending new lines get."""

    lines: list[str]
    newline: str

    @classmethod
    def parse(cls, data: bytes) -> IniLines:
        text = data.decode("utf-8", "surrogateescape")
        crlf = text.count("\r\n")
        newline = "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"
        return cls(text.splitlines(keepends=True), newline)

    def to_bytes(self) -> bytes:
        return "".join(self.lines).encode("utf-8", "surrogateescape")

    # ----------------------------------------------------------------- whole lines
    @staticmethod
    def content(line: str) -> str:
        """A line without its ending."""
        return line.rstrip("\r\n")

    def ends_with_newline(self) -> bool:
        return not self.lines or self.lines[-1].endswith(("\n", "\r"))

    def append(self, contents: list[str]) -> bool:
        """Append lines at the end; return True when the last line needed an ending first (record it, so
        :meth:`remove_appended` can take it away again)."""
        added_ending = not self.ends_with_newline()
        if added_ending:
            self.lines[-1] += self.newline
        self.lines += [c + self.newline for c in contents]
        return added_ending

    def remove_line(self, content: str) -> bool:
        """Remove the last line whose text (without ending) is exactly ``content``; False if there is none."""
        for i in range(len(self.lines) - 1, -1, -1):
            if self.content(self.lines[i]) == content:
                del self.lines[i]
                return True
        return False

    def remove_block(self, contents: list[str]) -> bool:
        """Remove the last run of consecutive lines equal to ``contents``; False if there is none."""
        n = len(contents)
        for start in range(len(self.lines) - n, -1, -1):
            if [self.content(x) for x in self.lines[start : start + n]] == contents:
                del self.lines[start : start + n]
                return True
        return False

    def drop_final_ending(self) -> None:
        """Undo the ending :meth:`append` added to the then last line."""
        if self.lines and self.lines[-1].endswith(("\n", "\r")):
            self.lines[-1] = self.content(self.lines[-1])

    # ----------------------------------------------------------------- sections and keys
    def section(self, name: str) -> tuple[int, int] | None:
        """``(header index, end index)`` of ``[name]`` (case-insensitive), end exclusive; None if absent."""
        start = None
        for i, line in enumerate(self.lines):
            stripped = line.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                if start is not None:
                    return start, i
                if stripped[1:-1].lower() == name.lower():
                    start = i
        return None if start is None else (start, len(self.lines))

    def find(self, section: str, key: str) -> int | None:
        """Index of the ``key=`` line in ``[section]`` (case-insensitive key), or None."""
        span = self.section(section)
        if span is None:
            return None
        for i in range(span[0] + 1, span[1]):
            line = self.lines[i]
            if "=" in line and line.split("=", 1)[0].strip().lower() == key.lower():
                return i
        return None

    def get(self, section: str, key: str) -> str | None:
        at = self.find(section, key)
        return None if at is None else self.content(self.lines[at]).split("=", 1)[1]

    def set(self, section: str, key: str, value: str, after: int | None = None) -> None:
        """Set ``key=value`` in ``[section]``: in place if the key exists, else after line ``after`` (or at the end
        of the section, before its trailing blank lines), creating the section at the end of the file if needed."""
        at = self.find(section, key)
        if at is not None:
            line = self.lines[at]
            ending = line[len(self.content(line)) :]
            self.lines[at] = f"{key}={value}{ending}"
            return
        span = self.section(section)
        if span is None:
            if not self.ends_with_newline():
                self.lines[-1] += self.newline
            self.lines += [f"[{section}]{self.newline}", f"{key}={value}{self.newline}"]
            return
        insert_at = span[1]
        while insert_at > span[0] + 1 and not self.lines[insert_at - 1].strip():
            insert_at -= 1
        if after is not None and span[0] <= after < insert_at:
            insert_at = after + 1
        if insert_at == len(self.lines) and not self.ends_with_newline():
            self.lines[-1] += self.newline
        self.lines.insert(insert_at, f"{key}={value}{self.newline}")

    def delete(self, section: str, key: str, drop_empty_section: bool = False) -> None:
        """Remove ``key`` from ``[section]``; with ``drop_empty_section`` also the header of a section left with
        no keys (its blank lines go with it)."""
        at = self.find(section, key)
        if at is None:
            return
        del self.lines[at]
        span = self.section(section)
        if drop_empty_section and span is not None:
            if not any(line.strip() for line in self.lines[span[0] + 1 : span[1]]):
                del self.lines[span[0] : span[1]]
