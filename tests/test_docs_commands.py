"""The commands shown in README.md and docs/ cannot rot: each parses.

Every program command in a shell block of README.md and docs/*.md (tests/doc_commands.py reads them out) is checked
against the real argument parser of the program it runs (``reatimbre``, ``python -m MODULE``, ``python
benchmarks/*.py``, ``python3 install.py``; a ``bash`` script must exist): a renamed flag or subcommand fails here, in
the quick tests. tests/test_docs_commands_run.py (slow) runs every block, curl lines included, on small inputs.
"""

from __future__ import annotations

import pytest
from doc_commands import doc_commands, program_parser

COMMANDS = doc_commands()


def test_the_docs_show_commands() -> None:
    names = {argv[1] for _, argv in COMMANDS if argv[0] == "reatimbre"}
    assert {"render", "steer", "coach", "serve", "batch", "models"} <= names


@pytest.mark.parametrize("argv", [argv for _, argv in COMMANDS], ids=[where for where, _ in COMMANDS])
def test_doc_command_parses(argv: list[str]) -> None:
    program_parser(argv)
