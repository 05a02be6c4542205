"""The commands shown in README.md and docs/ cannot rot.

Every command in a ``sh`` (or untagged) block of README.md and docs/*.md (not docs/history/, which records what was
run then) is extracted and checked against the real argument parser of the program it runs (``reatimbre``, ``python -m
MODULE``, ``python benchmarks/*.py``, ``python3 install.py``): a renamed flag or subcommand fails here. The
cheap ones (listing models and the coach's presets, rendering, batch over a folder) are also executed, with small
generated files standing in for the example's inputs. ``curl`` lines need a running server with a job id and are
covered by the server tests instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import runpy
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^\s*```(\w*)\s*$")
_SHELL_LANGUAGES = {"", "sh", "bash", "shell"}
# Programs whose command lines are checked, and how to reach their parser.
_PROGRAMS = ("reatimbre", "python", "python3", ".venv/bin/")
# Subcommands cheap enough to run here on small inputs.
_EXECUTED = {"models", "render", "batch"}


def _shell_blocks(text: str) -> list[str]:
    """The contents of the fenced blocks tagged ``sh``/``bash``/``shell`` or untagged (``python`` etc. are code)."""
    blocks: list[str] = []
    language: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fence and language is None:
            language, lines = fence.group(1), []
        elif fence is not None and not fence.group(1) and language is not None:
            if language in _SHELL_LANGUAGES:
                blocks.append("\n".join(lines))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def doc_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for every command line of a shell block, continuation lines joined, comments dropped."""
    found: list[tuple[str, list[str]]] = []
    for path in DOC_FILES:
        for block in _shell_blocks(path.read_text(encoding="utf-8")):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                if not line.lstrip().startswith(_PROGRAMS):
                    continue
                for part in re.split(r"\s&&\s", line):
                    argv = shlex.split(part, comments=True)
                    if argv and argv[-1] == "&":  # run in the background: the command is what precedes it
                        argv = argv[:-1]
                    if not argv:
                        continue
                    argv[0] = argv[0].removeprefix(".venv/bin/")
                    if argv[0] in _PROGRAMS:
                        found.append((f"{path.relative_to(ROOT)}: {part.strip()[:60]}", argv))
    return found


class _Parsed(Exception):
    """Raised by the patched parser once the arguments parsed: the program itself is not run."""


def _parse_only(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the program's own argument parsing on ``argv`` and stop there; argparse errors fail the test."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, args=None, namespace=None):  # noqa: ANN001, ANN202
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    program, rest = argv[0], argv[1:]
    if program == "reatimbre":
        from server.cli import main

        target = lambda: main(rest)  # noqa: E731
    elif rest[:2] == ["-m", "pytest"]:
        return
    elif rest[:1] == ["-m"]:
        module = rest[1]
        monkeypatch.setattr(sys, "argv", [module, *rest[2:]])
        target = lambda: runpy.run_module(module, run_name="__main__")  # noqa: E731
    elif rest and rest[0].endswith(".py"):
        script = ROOT / rest[0]
        assert script.is_file(), f"the docs run {rest[0]}, which does not exist"
        monkeypatch.setattr(sys, "argv", [str(script), *rest[1:]])
        monkeypatch.syspath_prepend(str(script.parent))
        target = lambda: runpy.run_path(str(script), run_name="__main__")  # noqa: E731
    else:
        pytest.fail(f"the docs run a program this test does not know how to check: {shlex.join(argv)}")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(_Parsed):
        try:
            target()
        except SystemExit:
            raise AssertionError(f"{shlex.join(argv)} does not parse: {stderr.getvalue().strip()}") from None


COMMANDS = doc_commands()


def test_the_docs_show_commands() -> None:
    names = {argv[1] for _, argv in COMMANDS if argv[0] == "reatimbre"}
    assert {"render", "steer", "coach", "serve", "batch", "models"} <= names


@pytest.mark.parametrize("argv", [argv for _, argv in COMMANDS], ids=[where for where, _ in COMMANDS])
def test_doc_command_parses(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _parse_only(argv, monkeypatch)


def _stand_in_inputs(argv: list[str], folder: Path) -> None:
    """Small real audio files (and folders of them) for the inputs the example names: its positional arguments."""
    rng = np.random.default_rng(0)
    options_with_values = {"-o", "--out", "--effect", "--knob", "--mix", "--tail", "--workers", "--subtype"}
    positional = [
        arg for i, arg in enumerate(argv[2:], 2) if not arg.startswith("-") and argv[i - 1] not in options_with_values
    ]
    for arg in positional:
        path = folder / arg
        if arg.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            for name in ("a.wav", "b.flac"):
                sf.write(path / name, 0.1 * rng.standard_normal((4410, 2)).astype(np.float32), 44100)
        elif "*" in arg:
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path.parent / path.name.replace("*", "take"), 0.1 * rng.standard_normal((4410, 2)), 44100)
        elif path.suffix in {".wav", ".flac"}:
            sf.write(path, 0.1 * rng.standard_normal((8820, 2)).astype(np.float32), 44100)


def _runnable_here(argv: list[str]) -> bool:
    """Cheap, and needs nothing beyond the shipped models: no REAPER, no cluster, no model steered first."""
    if argv[0] != "reatimbre":
        return False
    if argv[1] == "coach":
        return "--list-presets" in argv
    if argv[1] not in _EXECUTED:
        return False
    if {"--ray-address", "--reapy"} & set(argv) or any(a.endswith(".rpp") for a in argv):
        return False
    return "--effect" not in argv or argv[argv.index("--effect") + 1] in {"compressor", "overdrive", "reverb"}


@pytest.mark.parametrize(
    "argv",
    [argv for _, argv in COMMANDS if _runnable_here(argv)],
    ids=lambda argv: shlex.join(argv)[:60],
)
def test_doc_command_runs(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.cli import main

    _stand_in_inputs(argv, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(argv[1:]) == 0
