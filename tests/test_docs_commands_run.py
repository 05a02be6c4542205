"""Every command shown in README.md and docs/*.md runs, on small inputs, so none can rot.

Each shell block (tests/doc_commands.py reads them out) is run line by line, in order, in a fresh folder with a fake
HOME (config, token, user models, a stand-in REAPER resource folder all live there; never the real user's files).
What the test changes in a command is general, by flag name or file type, never by line:

- budgets: every option in BUDGETS that the program's own parser accepts is set to the small value, whether or not
  the line shows it (time boxes ``--minutes``, step budgets ``--steps``/``--max-steps``, material ``--seconds``,
  ``--heldout-seconds``, ``--grid``, a dataset's ``--patches``, the renders of ``--refine``...), with
  ``--keep-anyway`` (a model trained so briefly may not beat the dry input, and later lines use it); counts of draws,
  clips and chains (SCALED_DRAWS) are divided by SCALE_DIVISOR, at least MIN_DRAWS; a user model a line names and no
  line steered first (``--effect my-comp``) is steered from stand-ins;
- inputs: a positional argument or an input option's value (INPUT_OPTIONS) that names no existing file is made by
  the earlier line of the same doc that writes it (its output option: ``match-data --out runs/match/vital`` for
  ``match-train --data runs/match/vital``), run with the same rules, once per test session (later tests copy what it
  wrote); else it gets a small real stand-in by its type: audio (``.wav``/``.flac``; a name with "wet" or "amp" is
  the saturated dry), a folder (``name/``) or glob of audio files, a REAPER project (``.rpp``: three tracks with an
  item each), a Vital patch (``.vital``), a coach-data folder (``--data``: rendered by ``reatimbre coach-data``), an
  afx-bench run (``--merge``: our TCN on one task); a repo path such as ``models/weights/...`` is read from the
  repository; ``/tmp/...`` and ``/home/me/...`` land in the test's folders;
- a command whose default output is inside the repository (``train-effect``'s ``models/weights``) writes to the
  test's folder instead;
- ``reatimbre serve`` runs in the background on a free loopback port (every ``*-port`` option gets a free one) until
  /v1/health answers, then stops on SIGINT; a block of ``curl`` lines runs against one server started with every
  option of its doc's ``serve`` lines, with the doc's port and the real token (the doc's own ``TOKEN=$(cat ...)``
  line, run by bash in the fake HOME) and the id of the last job the server returned for ``3f0c...``; a request that
  starts a job waits for the jobs before it, and every job must end done (or cancelled by a DELETE line);
- ``python3 install.py --reaper ...`` installs into the fake HOME's ``~/.config/REAPER`` with the current interpreter
  standing in for .venv's, as tests/test_reaper_install.py does;
- other shell lines (``mkdir``, ``cp``, variable assignments) run in bash.

A line that runs as one an earlier block (README.md first) shows, the same program and arguments once the budgets
are set (options in any order; ``--device cuda`` and no ``--device`` both run ``--device auto``; only the name of
the output folder differing), is run there, once. After each block no file of the checkout may have changed. The
whole run is part of the full suite (slow: ``pytest -m "not slow"`` leaves it out); ``-k 'afx.md'`` runs one doc's
blocks.

ALLOWED lists the few commands that cannot run here, each with its reason; a listed command that no doc shows any
more fails the test, so the list cannot go stale.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import math
import os
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import numpy as np
import pytest
import soundfile as sf
import torch
from doc_commands import ROOT, Block, doc_blocks, doc_commands, line_parts, options, program_argv, program_parser

from models.rates import SAMPLE_RATE_HZ

# Commands (as the docs show them, shlex-joined, comments dropped) that cannot run in this test, and why.
ALLOWED: dict[str, str] = {
    "python3 install.py": "creates .venv and downloads torch and every dependency from the package index (minutes, "
    "network); .ci/run runs this set-up as CI's first step",
    "python3 install.py --dev": "as `python3 install.py`, plus the test tools; .ci/run runs exactly this line",
    "python -m pytest -q -n 2": "the test suite itself; .ci/run runs it after `python3 install.py --dev`",
    "reatimbre batch song.rpp --effect compressor --selected --reaper-render --reaper /opt/REAPER/reaper": "needs "
    "REAPER's executable to render the new project (tests/test_batch_reaper.py checks the command it would run)",
    "reatimbre batch --reapy --effect compressor": "needs a running REAPER with the reapy server "
    "(tests/test_reaper_reapy.py runs it against the REAPER emulator)",
    "reatimbre batch takes/ --effect compressor --out renders/ --ray-address auto": "needs a running Ray cluster "
    "(tests/test_batch_ray.py runs batch on a local Ray instance)",
    "bash benchmarks/device_check.sh device-check.txt": "needs a CUDA GPU: it runs the CUDA tests and the GPU "
    "benchmarks (without CUDA they skip)",
}

# Patches of a patch-matching dataset: enough that the 80/10/10 split by patch puts some in each part.
MIN_PATCHES = 30
# Small budgets, by option name; set wherever the program's parser has the option, shown in the docs or not.
BUDGETS: dict[str, str] = {
    "--minutes": "0.05",
    "--seconds": "3",
    "--heldout-seconds": "1",
    "--clip-seconds": "3",
    "--rtf-seconds": "1",
    "--steps": "2",
    "--max-steps": "2",
    "--pretrain-steps": "2",
    "--cnn-steps": "2",
    "--rnn-steps": "2",
    "--cnn-seconds": "20",
    "--rnn-seconds": "20",
    "--validate-every": "1",
    "--validation-examples": "8",
    "--grid": "2",
    "--targets": "1",
    "--streams": "2",
    "--files": "2",
    "--repeats": "1",
    "--runs": "1",
    "--shard-clips": "32",
    "--patches": str(MIN_PATCHES),
    "--refine": "4",  # renders to refine a matched patch by ear (`auto` is up to 300 per clip and synth)
    "--device": "auto",  # a doc's `--device cuda` runs on whatever this machine has (CUDA where torch sees it)
}
# Switches set wherever the parser has them: a model trained on so small a budget may not beat the dry input, and the
# doc's later lines still need it.
BUDGET_SWITCHES = ("--keep-anyway",)
# Switches that record results into a shipped model's sidecar (models.grid_evaluation, models.real_agreement,
# coach-eval, match-eval): dropped, so that a doc line never rewrites the repository's weights.
REPOSITORY_SWITCHES = ("--record", "--write")
# The same budgets in the JSON bodies of curl lines, by key (and the same switch, where a body sets "minutes").
JSON_BUDGETS: dict[str, float] = {"minutes": 0.05, "grid": 2, "seconds": 3}
JSON_SWITCHES_WITH_MINUTES = ', "keep_anyway": true'
# Counts of draws, chains, patches and clips divided by SCALE_DIVISOR (rounded up; at least MIN_DRAWS, the three of a
# train/validation/test split); --clips counts draws of CLIPS_PER_DRAW clips.
SCALED_DRAWS = {"--max-draws", "--skip-draws", "--keep-split", "--chains", "--max-clips"}
SCALE_DIVISOR = 1000
MIN_DRAWS = 3
CLIPS_PER_DRAW = 32
INPUT_OPTIONS = {"--input", "--target", "--patch", "--data", "--merge", "--models"}
# Outputs are never read from the repository: a relative one (even ``models/weights/...``) lands in the work folder.
OUTPUT_OPTIONS = {"-o", "--out", "--json", "--report", "--save-patch", "--out-project", "--output-dir"}
STAND_IN_SECONDS = 4.0
JOB_TIMEOUT_S = 180.0
FINISHED = ("done", "failed", "cancelled")

BLOCKS = doc_blocks()


@functools.cache
def first_showings() -> dict[str, tuple[str, ...]]:
    """Each block's lines that no earlier block runs: a line that runs as one an earlier block shows (the same
    program, arguments and options once budgets are set, in any order) runs once, in the earlier block (blocks run
    in the order of DOC_FILES, README first)."""
    seen: set[str] = set()
    out: dict[str, tuple[str, ...]] = {}
    for block in BLOCKS:
        out[block.name] = tuple(line for line in block.lines if _run_key(line) not in seen)
        seen.update(_run_key(line) for line in block.lines)
    return out


@functools.cache
def _run_key(line: str) -> str:
    """The line as it runs: each program's budgeted arguments with its options in a fixed order; other shell
    commands as the shell reads them (comments and spacing do not make another command)."""
    keys = []
    for part in line_parts(line):
        argv = program_argv(part)
        split = None if argv is None else budgeted(argv)
        if split is None:
            keys.append(shlex.join(shlex.split(part, comments=True)))
        else:
            prefix, arguments = split
            positionals = [values for flag, values in arguments if flag is None]
            flags = sorted((flag, _folder_free(flag, values)) for flag, values in arguments if flag is not None)
            keys.append(repr((prefix, positionals, flags)))
    return " && ".join(keys)


def _folder_free(flag: str, values: list[str]) -> list[str]:
    """An output folder's name (an output option's value without a file suffix) does not make another run: the same
    program with the same inputs and budgets writes the same files wherever they go. An output *file* keeps its
    name, since its suffix chooses the format."""
    if flag in OUTPUT_OPTIONS and values and all(not Path(value).suffix for value in values):
        return ["<an output folder>"]
    return values


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tone(seed: int = 0) -> np.ndarray:
    """A gated 220 Hz tone over a little noise, stereo float32: pitched (the coach hears a note), with pauses."""
    t = np.arange(int(STAND_IN_SECONDS * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    gate = (np.sin(2 * np.pi * 1.5 * t) > 0).astype(np.float64)
    noise = np.random.default_rng(seed).standard_normal(t.size)
    mono = 0.3 * np.sin(2 * np.pi * 220 * t) * gate + 0.02 * noise
    return np.stack([mono, mono], axis=1).astype(np.float32)


def _write_audio(path: Path) -> None:
    audio = _tone()
    if re.search(r"wet|amp", path.stem):
        audio = (np.tanh(3 * audio) / 3).astype(np.float32)  # what steering learns: a saturator
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE_HZ)


def _write_project(path: Path) -> None:
    from reaper_emulator import ReaperEmulator

    emulator = ReaperEmulator.new(path)
    for number in range(1, 4):
        track = emulator.add_track(f"track {number}")
        media = path.parent / "Audio" / f"take{number}.wav"
        _write_audio(media)
        emulator.add_item(track, media, 0.0, STAND_IN_SECONDS)
    emulator.save(path)


def _write_patch(path: Path) -> None:
    from models.coach.start import start_synth

    start_synth("saw", None).save_patch(path)


def _write_coach_data(path: Path) -> None:
    from server.cli import main

    args = ["coach-data", "--group", "basic_shapes", "--clips", str(MIN_DRAWS * CLIPS_PER_DRAW), "--shard-clips"]
    assert main([*args, str(CLIPS_PER_DRAW), "--out", str(path), "--workers", "1", "--quiet"]) == 0


def _write_bench_run(path: Path) -> None:
    """An ``afx-bench`` run folder (its table and models): our TCN on one task, at the small budgets."""
    from server.cli import main

    split = budgeted(["reatimbre", "afx-bench", "--archs", "tcn", "--tasks", "eq-peak", "--out", str(path)])
    assert split is not None
    prefix, arguments = split
    tokens = [token for flag, values in arguments for token in [*([flag] if flag else []), *values]]
    assert main([*prefix[1:], *tokens]) == 0


def _stand_in(path: Path, option: str | None, folder: bool) -> None:
    """A small real file (or folder, ``folder``) where the command names one that does not exist."""
    if option == "--data" and not path.suffix:
        _write_coach_data(path)
    elif option == "--merge":
        _write_bench_run(path)
    elif folder:
        for name in ("a.wav", "b.flac"):
            _write_audio(path / name)
    elif "*" in path.name:
        _write_audio(path.parent / path.name.replace("*", "take"))
    elif path.suffix in {".wav", ".flac"}:
        _write_audio(path)
    elif path.suffix == ".rpp":
        _write_project(path)
    elif path.suffix == ".vital":
        _write_patch(path)


def _scaled(flag: str, value: str) -> str:
    if flag == "--clips":
        draws = max(MIN_DRAWS, math.ceil(int(value) / CLIPS_PER_DRAW / SCALE_DIVISOR))
        return str(draws * CLIPS_PER_DRAW)
    return str(max(MIN_DRAWS, math.ceil(int(value) / SCALE_DIVISOR)))


Arguments = list[tuple[str | None, list[str]]]
"""A command's arguments in order: (option, its values), or (None, [token]) for a positional argument."""


def budgeted(argv: list[str]) -> tuple[list[str], Arguments] | None:
    """The program (``reatimbre SUBCOMMAND``, ``python -m MODULE``, ``python SCRIPT``) and its arguments with the
    small budgets set (BUDGETS, SCALED_DRAWS, BUDGET_SWITCHES; REPOSITORY_SWITCHES dropped); None for a program
    without a parser here (``bash`` scripts, ``python -m pytest``)."""
    parser = program_parser(argv)
    if parser is None:
        return None
    accepted = options(parser)
    takes_values = {s: a.nargs for s, a in parser._option_string_actions.items() if a.nargs != 0}
    if argv[0] == "reatimbre":
        prefix, start = list(argv[:2]), 2
    elif argv[1] == "-m":
        prefix, start = list(argv[:3]), 3
    else:
        prefix, start = [argv[0], str(ROOT / argv[1])], 2
    arguments: Arguments = []
    i = start
    while i < len(argv):
        token = argv[i]
        if token in takes_values:
            many = takes_values[token] in ("+", "*")
            values = []
            i += 1
            while i < len(argv) and not argv[i].startswith("-") and (many or not values):
                values.append(argv[i])
                i += 1
            if token in BUDGETS:
                values = [BUDGETS[token]]
            elif token in SCALED_DRAWS or token == "--clips":
                values = [_scaled(token, v) for v in values]
            arguments.append((token, values))
        elif token in REPOSITORY_SWITCHES:
            i += 1  # they write a shipped model's sidecar: covered by their own tests, never run from the docs
        else:
            arguments.append((token, []) if token.startswith("-") else (None, [token]))
            i += 1
    shown = {flag for flag, _ in arguments}
    arguments += [(flag, [value]) for flag, value in BUDGETS.items() if flag in accepted and flag not in shown]
    arguments += [(flag, []) for flag in BUDGET_SWITCHES if flag in accepted and flag not in shown]
    return prefix, arguments


class DocRun:
    """The state one block runs in: its folders, the shell variables its lines set, its server and jobs."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.work, self.home = root / "work", root / "home"
        self.work.mkdir()
        (self.home / ".config" / "REAPER").mkdir(parents=True)
        (self.home / ".config" / "REAPER" / "reaper.ini").write_bytes(b"[REAPER]\r\ncsurf_cnt=0\r\n")
        (self.home / ".config" / "REAPER" / "reaper-kb.ini").write_bytes(b"")
        monkeypatch.setenv("HOME", str(self.home))
        for name in ("REATIMBRE_CONFIG_DIR", "REATIMBRE_DATA_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        monkeypatch.chdir(self.work)
        self.monkeypatch = monkeypatch
        self.variables: dict[str, str] = {}
        self.server: subprocess.Popen[str] | None = None
        self.port = 0
        self.jobs: list[str] = []
        self.cancelled: set[str] = set()
        self.doc = ""
        self.earlier: list[str] = []  # the lines of the doc's earlier blocks: what a reader has run before
        self.running: set[str] = set()

    # ----------------------------------------------------------------- lines
    def run_line(self, line: str, doc: str) -> None:
        if line.startswith("curl "):
            self.curl(line, doc)
            return
        for part in line_parts(line):
            argv = program_argv(part)
            if argv is None:
                self.shell(part)
            elif shlex.join(argv) not in ALLOWED:
                self.program(argv, doc)

    def shell(self, text: str) -> None:
        """A shell line (mkdir, cp, assignments) in bash; the variables it sets are kept for the next lines."""
        script = f"set -ea\n{self.substitute(text)}\nenv -0"
        result = subprocess.run(
            ["bash", "-c", script], cwd=self.work, env={**os.environ, **self.variables}, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{text}: {result.stderr.strip()}"
        after = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
        self.variables.update({k: v for k, v in after.items() if os.environ.get(k) != v and k not in ("_", "SHLVL")})

    def substitute(self, text: str) -> str:
        """The docs' placeholders: their server address, home folder and job id."""
        if self.port:
            text = re.sub(r"(127\.0\.0\.1|localhost):\d+", f"127.0.0.1:{self.port}", text)
        text = text.replace("/home/me/", f"{self.home}/")
        if self.jobs:
            text = re.sub(r"\b[0-9a-f]{4}\.\.\.", self.jobs[-1], text)
        return text

    # ----------------------------------------------------------------- programs
    def rewrite(self, argv: list[str]) -> list[str]:
        """argv with small budgets, stand-in inputs and folders inside the test's own."""
        split = budgeted(argv)
        if split is None:
            return list(argv)
        prefix, arguments = split
        out = list(prefix)
        for flag, values in arguments:
            if flag is None:
                out.append(self.path(values[0], None))
            elif flag in BUDGETS or flag in SCALED_DRAWS or flag == "--clips":
                out += [flag, *values]
            else:
                out += [flag, *[self.path(value, flag) for value in values]]
        parser = program_parser(argv)
        assert parser is not None
        out_action = parser._option_string_actions.get("--out")
        if out_action is not None and "--out" not in out and isinstance(out_action.default, str | Path):
            if Path(out_action.default).resolve().is_relative_to(ROOT):
                out += ["--out", str(self.work / "out")]  # never over the repository's own files
        return out

    def located(self, value: str) -> str:
        """A path as the test reads it: ``~`` is the fake HOME, an absolute path outside the checkout is inside the
        work folder."""
        if value.startswith("~"):
            return str(self.home) + value[1:]
        if value.startswith("/") and not Path(value).is_relative_to(ROOT) and not value.startswith(str(self.home)):
            return str(self.work) + value
        return value

    def path(self, value: str, option: str | None) -> str:
        """A path argument as the test runs it; an input that does not exist is made by the earlier line of the doc
        that writes it, else a stand-in is made."""
        value = self.located(value)
        if not re.search(r"[/.*]", value) and option is None:
            return value  # a name (an effect, a model, a preset), not a path
        if (self.work / value).exists() or Path(value).is_absolute() and Path(value).exists():
            return value
        if option not in OUTPUT_OPTIONS and (ROOT / value).exists():
            return str(ROOT / value)  # an input the repository ships (a target, the shipped weights)
        if (option in INPUT_OPTIONS or option is None) and not self.make_from_earlier(value):
            _stand_in(self.work / value, option, folder=value.endswith("/"))
        return value

    def make_from_earlier(self, value: str) -> bool:
        """Make ``value`` as a reader following the doc would have: by the earlier line of the doc that names it as
        its output (or a copy of what that line wrote in an earlier test of this session). True if a line did."""
        wanted = self.work / value
        for line in self.earlier:
            if wanted not in self.outputs_of(line) or line in self.running:
                continue
            made = _MADE.get((line, self.key_of(wanted)))
            if made is not None and made.exists():
                wanted.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if made.is_dir() else shutil.copy2)(made, wanted)
            else:
                self.running.add(line)
                self.run_line(line, self.doc)
                self.remember(line)
            return wanted.exists()
        return False

    def outputs_of(self, line: str) -> list[Path]:
        """What the line's programs write (the values of their output options), where the test puts them."""
        return [
            self.work / self.located(argv[i + 1])
            for part in line_parts(line)
            if (argv := program_argv(part)) is not None
            for i, token in enumerate(argv[:-1])
            if token in OUTPUT_OPTIONS
        ]

    def key_of(self, path: Path) -> str:
        return os.path.relpath(path, self.work.parent)

    def remember(self, line: str) -> None:
        """Keep where the line's outputs are, for a later test whose line reads them."""
        for output in self.outputs_of(line):
            if output.exists():
                _MADE[(line, self.key_of(output))] = output

    def program(self, argv: list[str], doc: str) -> None:
        if argv[:2] == ["reatimbre", "serve"]:
            self.start_server(self.rewrite(argv))
            self.stop_server()
            return
        if argv[0] == "bash":
            command = [argv[0], str(ROOT / argv[1]), *argv[2:]]  # the docs' scripts are paths in the repository
            result = subprocess.run(command, cwd=self.work, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{shlex.join(argv)}: {result.stderr.strip()}"
            return
        if argv[0] == "python3" and argv[1] == "install.py":
            self.install(argv[2:])
            return
        command = self.rewrite(argv)
        if command[0] == "reatimbre":
            self.stand_in_models(command)
        threads = torch.get_num_threads()
        try:
            if command[0] == "reatimbre":
                from server.cli import main

                code = main(command[1:])
            else:
                code = self.python(command)
        finally:
            torch.set_num_threads(threads)
        assert code in (0, None), f"{doc}: {shlex.join(argv)} ran as {shlex.join(command)} and exited {code}"

    def stand_in_models(self, command: list[str]) -> None:
        """A steered model stands in for a user model the command names (``--effect NAME``, ``explore NAME``)
        and nobody steered first, as its doc's earlier steps would have."""
        from models.library import list_models
        from server.cli import main

        named = [command[i + 1] for i, token in enumerate(command[:-1]) if token == "--effect"]
        named += command[2:3] if command[1] == "explore" else []
        installed = {info.name for info in list_models()}
        for name in sorted(set(named) - installed):
            dry, wet = self.work / f"stand-in-{name}-dry.wav", self.work / f"stand-in-{name}-wet.wav"
            _write_audio(dry)
            _write_audio(wet)
            steer = ["steer", str(dry), str(wet), "--name", name, "--minutes", BUDGETS["--minutes"], "--keep-anyway"]
            assert main([*steer, "--quiet"]) == 0, f"steering a stand-in for {name}"

    def python(self, command: list[str]) -> int | None:
        """``python -m MODULE ...`` or ``python SCRIPT ...`` in this interpreter."""
        saved_argv, saved_path = sys.argv, list(sys.path)
        try:
            if command[1] == "-m":
                sys.argv = [command[2], *command[3:]]
                runpy.run_module(command[2], run_name="__main__", alter_sys=True)
            else:
                sys.argv = command[1:]
                sys.path.insert(0, str(Path(command[1]).parent))
                runpy.run_path(command[1], run_name="__main__")
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) or exit_.code is None else 1
        finally:
            sys.argv, sys.path[:] = saved_argv, saved_path
        return 0

    def install(self, args: list[str]) -> None:
        """install.py into the fake HOME's REAPER folder; the current interpreter stands in for .venv's."""
        from extension import reaper_running

        spec = importlib.util.spec_from_file_location("install", ROOT / "install.py")
        assert spec is not None and spec.loader is not None
        install = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(install)
        self.monkeypatch.setattr(install, "ensure_venv", lambda extras, quiet=False: Path(sys.executable))
        self.monkeypatch.setattr(reaper_running, "reaper_pids", lambda *a, **k: [])
        assert install.main(args) == 0, f"python3 install.py {shlex.join(args)}"

    # ----------------------------------------------------------------- the server
    def start_server(self, argv: list[str]) -> None:
        command = list(argv)
        for i, token in enumerate(command):
            if token.endswith("-port") or token == "--port":
                command[i + 1] = str(_free_port())
        if "--port" not in command:
            command += ["--port", str(_free_port())]
        self.port = int(command[command.index("--port") + 1])
        script = Path(sys.executable).with_name("reatimbre")
        program = [str(script)] if script.is_file() else [sys.executable, "-m", "server"]
        self.server = subprocess.Popen(
            [*program, *command[1:], "--log-level", "warning"],
            cwd=self.work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.server.poll() is not None:
                raise AssertionError(
                    f"{shlex.join(argv)} exited: {self.server.stderr.read() if self.server.stderr else ''}"
                )
            assert time.monotonic() < deadline, f"{shlex.join(argv)}: no answer on /v1/health"
            with contextlib.suppress(httpx2.TransportError, FileNotFoundError):
                if self.request("GET", "/v1/health").status_code == 200:
                    return
            time.sleep(0.2)

    def request(self, method: str, path: str) -> httpx2.Response:
        from models.userdirs import config_dir

        token = (config_dir() / "token").read_text().strip()
        return httpx2.request(
            method, f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def stop_server(self) -> None:
        if self.server is None:
            return
        server, self.server = self.server, None
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise AssertionError("the server did not stop on SIGINT within 30 s") from None
        assert code == 0, f"the server exited {code}: {server.stderr.read() if server.stderr else ''}"

    def curl(self, line: str, doc: str) -> None:
        assert self.server is not None, "a curl line runs only in a block with its server"
        if " -d " in line or "-X POST" in line:
            self.wait_for_jobs()
        text = self.substitute(line)
        for key, value in JSON_BUDGETS.items():
            text = re.sub(rf'("{key}": )[0-9.]+', rf"\g<1>{value}", text)
        text = re.sub(r'("minutes": [0-9.]+)', rf"\g<1>{JSON_SWITCHES_WITH_MINUTES}", text)
        if " -d " in text:
            for name in re.findall(r'"(/[^"]+\.(?:wav|flac))"', text):
                if not Path(name).exists():
                    _write_audio(Path(name))
        result = subprocess.run(
            ["bash", "-c", text], env={**os.environ, **self.variables}, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{line}: curl exited {result.returncode}: {result.stderr.strip()}"
        body = json.loads(result.stdout)
        assert isinstance(body, dict) and "detail" not in body, f"{line}: {result.stdout.strip()}"
        if "job_id" in body and body["job_id"] not in self.jobs:
            self.jobs.append(body["job_id"])
        if "-X DELETE" in text and self.jobs:
            self.cancelled.add(self.jobs[-1])

    def wait_for_jobs(self) -> None:
        for job in self.jobs:
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while (status := self.request("GET", f"/v1/jobs/{job}").json())["state"] not in FINISHED:
                assert time.monotonic() < deadline, f"job {job} ({status['kind']}) did not finish"
                time.sleep(0.2)
            allowed = ("done", "cancelled") if job in self.cancelled else ("done",)
            assert status["state"] in allowed, f"job {job} ({status['kind']}) ended {status['state']}: {status}"


def _merged_serve_argv(doc: str) -> list[str]:
    """``reatimbre serve`` with every option the doc's serve lines show (later lines win): the server its curl
    lines talk to."""
    merged: dict[str, list[str]] = {}
    for where, argv in doc_commands():
        if where.startswith(f"{doc}:") and argv[:2] == ["reatimbre", "serve"]:
            i = 2
            while i < len(argv):
                values = []
                while i + 1 + len(values) < len(argv) and not argv[i + 1 + len(values)].startswith("-"):
                    values.append(argv[i + 1 + len(values)])
                merged[argv[i]] = values
                i += 1 + len(values)
    return ["reatimbre", "serve", *[token for flag, values in merged.items() for token in (flag, *values)]]


_MADE: dict[tuple[str, str], Path] = {}
"""What a doc line wrote in an earlier test of this session, by (line, output relative to its work folder)."""

_NOT_THE_REPOSITORY = {".git", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}


def _repository_files() -> dict[Path, int]:
    """Every file of the checkout (not .git, .venv or caches) with its modification time."""
    out: dict[Path, int] = {}
    for folder, names, files in os.walk(ROOT):
        names[:] = [name for name in names if name not in _NOT_THE_REPOSITORY and not name.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            with contextlib.suppress(FileNotFoundError):
                out[path] = path.stat().st_mtime_ns
    return out


def test_every_allowed_command_is_still_in_the_docs() -> None:
    shown = {shlex.join(argv) for _, argv in doc_commands()}
    assert not set(ALLOWED) - shown, f"ALLOWED names commands no doc shows any more: {sorted(set(ALLOWED) - shown)}"


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_doc_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _repository_files()
    run = DocRun(tmp_path, monkeypatch)
    run.doc = block.doc
    run.earlier = [
        line for earlier in BLOCKS[: BLOCKS.index(block)] if earlier.doc == block.doc for line in earlier.lines
    ]
    # A line of this block that an earlier block already runs (the same once budgets are set, another output
    # folder) is not run here, but a later line may read its folder: it is made on demand like an earlier block's.
    run.earlier += [line for line in block.lines if line not in first_showings()[block.name]]
    try:
        if any(line.startswith("curl ") for line in block.lines):
            run.start_server(_merged_serve_argv(block.doc))
        for earlier in BLOCKS[: BLOCKS.index(block)]:  # a doc's shell variables carry from block to block
            for line in earlier.lines if earlier.doc == block.doc else ():
                if re.match(r"[A-Z_]+=", line):
                    run.shell(line)
        for line in first_showings()[block.name]:
            started = time.monotonic()
            run.run_line(line, block.doc)
            run.remember(line)
            print(f"{time.monotonic() - started:6.1f} s  {line}")
        if run.server is not None:
            run.wait_for_jobs()
    finally:
        run.stop_server()
    changed = sorted(str(p.relative_to(ROOT)) for p, t in _repository_files().items() if before.get(p) != t)
    assert not changed, f"the commands of {block.name} wrote into the repository: {changed[:5]}"
