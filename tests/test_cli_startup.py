"""``reatimbre --help`` and the parser of every command are built without the heavy libraries (torch, scipy.signal,
librosa, the synths): the commands import those when they run, so the help answers at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from server.cli import main

HEAVY = ("torch", "scipy.signal", "librosa", "pedalboard", "dawdreamer", "vita")


def test_building_the_parser_imports_no_heavy_library() -> None:
    probe = (
        "import sys; from server.cli import build_parser; build_parser(); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_a_lazily_listed_choice_is_still_checked_and_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["afx-train", "--arch", "no-such-arch", "--task", "plate"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'no-such-arch'" in error and "'crafx'" in error and "'tcn'" in error
    with pytest.raises(SystemExit):
        main(["afx-bench", "--help"])
    assert "ceq, cafx, wavenet, crafx, cwafx, csafx, tcn" in capsys.readouterr().out
