"""The command lines shown in README.md and docs/*.md, read out of their shell blocks.

A shell block is a fenced block tagged ``sh``/``bash``/``shell`` or untagged (``python``, ``json`` etc. are code or
data). docs/history/ is left out: it records what was run then. Continuation lines are joined and comments
dropped; each line is kept whole (its ``&&`` parts are split by the callers that run programs).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^\s*```(\w*)\s*$")
_SHELL_LANGUAGES = {"", "sh", "bash", "shell"}
PROGRAMS = ("reatimbre", "python", "python3", "bash")
"""Programs whose command lines are checked against their parser and run (``.venv/bin/`` in front is dropped)."""
COMMANDS = (*PROGRAMS, ".venv/bin/", "curl")
"""What the first line of an untagged block starts with when the block holds commands (else it is output text)."""


@dataclass(frozen=True)
class Block:
    """One shell block: the doc it stands in, its number there (1-based, shell blocks only) and its lines."""

    doc: str
    number: int
    lines: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.doc}#{self.number}"


def shell_blocks(text: str) -> list[list[str]]:
    """The lines of each fenced shell block of a Markdown text: tagged as a shell, or untagged with a command on its
    first line (an untagged block of program output is not run)."""
    blocks: list[list[str]] = []
    language: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fence and language is None:
            language, lines = fence.group(1), []
        elif fence is not None and not fence.group(1) and language is not None:
            first = logical_lines(lines)[:1]
            if language in _SHELL_LANGUAGES and (language or (first and first[0].startswith(COMMANDS))):
                blocks.append(lines)
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def logical_lines(lines: list[str]) -> tuple[str, ...]:
    """Continuation lines joined; comment-only and blank lines dropped; trailing comments kept (shlex drops them)."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return tuple(line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def doc_blocks() -> list[Block]:
    """Every shell block of README.md and docs/*.md that holds a command line, in document order."""
    found: list[Block] = []
    for path in DOC_FILES:
        for number, lines in enumerate(shell_blocks(path.read_text(encoding="utf-8")), 1):
            kept = logical_lines(lines)
            if kept:
                found.append(Block(str(path.relative_to(ROOT)), number, kept))
    return found


def program_argv(part: str) -> list[str] | None:
    """The argv of one ``&&`` part if it runs one of PROGRAMS, else None; a trailing ``&`` (background) dropped."""
    argv = shlex.split(part, comments=True)
    if argv and argv[-1] == "&":
        argv = argv[:-1]
    if not argv:
        return None
    argv[0] = argv[0].removeprefix(".venv/bin/")
    return argv if argv[0] in PROGRAMS else None


def line_parts(line: str) -> list[str]:
    """A command line split at ``&&``."""
    return [part.strip() for part in re.split(r"\s&&\s", line)]


def doc_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for every program command of every shell block."""
    found: list[tuple[str, list[str]]] = []
    for block in doc_blocks():
        for line in block.lines:
            for part in line_parts(line):
                argv = program_argv(part)
                if argv is not None:
                    found.append((f"{block.doc}: {part[:60]}", argv))
    return found


class _Parsed(Exception):
    """Raised by the patched parser once the arguments parsed: the program itself is not run."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def _chosen_subparser(parser: argparse.ArgumentParser, args: list[str]) -> argparse.ArgumentParser:
    """The subcommand's parser where ``parser`` has subcommands and ``args`` names one, else ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for arg in args:
                if arg in action.choices:
                    return _chosen_subparser(action.choices[arg], args[args.index(arg) + 1 :])
    return parser


def program_parser(argv: list[str]) -> argparse.ArgumentParser | None:
    """Run the program's own argument parsing on ``argv`` and stop there: the parser that took the arguments (the
    subcommand's), or None for programs without one here (``bash`` scripts, ``python -m pytest``). A command that
    does not parse raises AssertionError with argparse's message."""
    program, rest = argv[0], argv[1:]
    if program == "bash" or rest[:2] == ["-m", "pytest"]:
        assert program != "bash" or (ROOT / rest[0]).is_file(), f"the docs run {rest[0]}, which does not exist"
        return None
    if program == "reatimbre":
        from server.cli import main

        target, sys_argv, path = (lambda: main(rest)), sys.argv, None
    elif rest[:1] == ["-m"]:
        module = rest[1]
        target, sys_argv, path = (lambda: runpy.run_module(module, run_name="__main__")), [module, *rest[2:]], None
    elif rest and rest[0].endswith(".py") and program.startswith("python"):
        script = ROOT / rest[0]
        assert script.is_file(), f"the docs run {rest[0]}, which does not exist"
        target, sys_argv, path = (
            (lambda: runpy.run_path(str(script), run_name="__main__")),
            [str(script), *rest[1:]],
            script.parent,
        )
    else:
        raise AssertionError(f"the docs run a program this test does not know: {shlex.join(argv)}")
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, args=None, namespace=None):  # noqa: ANN001, ANN202
        original(self, args, namespace)
        raise _Parsed(self)

    stderr = io.StringIO()
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = sys_argv
    if path is not None:
        sys.path.insert(0, str(path))
    try:
        with (
            mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop),
            contextlib.redirect_stderr(stderr),
        ):
            target()
    except _Parsed as parsed:
        return _chosen_subparser(parsed.parser, sys_argv[1:] if program != "reatimbre" else rest)
    except SystemExit:
        raise AssertionError(f"{shlex.join(argv)} does not parse: {stderr.getvalue().strip()}") from None
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    raise AssertionError(f"{shlex.join(argv)} ran without parsing its arguments with argparse")


def options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string the parser accepts."""
    return set(parser._option_string_actions)
