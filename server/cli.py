"""The ``reatimbre`` command line (also ``python -m server``).

Each subcommand lives in its own module under :mod:`server.commands` and exposes
``add_parser(subparsers)``, which registers the subcommand and sets ``run=callable(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from models.errors import ReaTimbreError
from models.oserrors import os_error_line
from models.scaleout import limit_blas_threads

# Order here is the order ``reatimbre --help`` lists them.
COMMAND_MODULES = [
    "server.commands.render",
    "server.commands.models",
    "server.commands.demo",
    "server.commands.steer",
    "server.commands.explore",
    "server.commands.serve",
    "server.commands.batch",
    "server.commands.coach_data",
    "server.commands.coach",
    "server.commands.coach_chains",
    "server.commands.coach_train",
    "server.commands.coach_eval",
    "server.commands.train_effect",
    "server.commands.afx_train",
    "server.commands.afx_bench",
    "server.commands.match_data",
    "server.commands.match_train",
    "server.commands.match_tune",
    "server.commands.match",
    "server.commands.match_eval",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reatimbre",
        description="ReaTimbre: neural effect rendering and step-by-step synth programming for REAPER.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    limit_blas_threads()
    try:
        return int(args.run(args) or 0)
    except ReaTimbreError as exc:
        print(f"reatimbre: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # what the OS refused that no command turned into words first: one line, no traceback
        print(f"reatimbre: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reatimbre: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
