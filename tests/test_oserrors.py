"""What the OS refuses becomes one line: the command line's safety net for errors no command put into words."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from models.oserrors import MAX_LINE_PATH_CHARS, os_error_line
from server.cli import main


def test_a_line_names_the_file_cut_short_and_in_plain_words() -> None:
    assert os_error_line(OSError(errno.ENOTDIR, "Not a directory", "out/x.wav")) == (
        "out/x.wav: a part of the path is not a folder"
    )
    line = os_error_line(OSError(errno.ENAMETOOLONG, "File name too long", "n" * 5000))
    assert line.endswith("...: file name too long") and len(line) < MAX_LINE_PATH_CHARS + 30
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device")) == "no space left on the disk"
    assert "\n" not in os_error_line(OSError(errno.EACCES, "Permission denied", "a\nb"))


def test_an_os_error_in_any_command_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(_args: object) -> int:
        raise FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "out"))

    import server.commands.models as models_command

    monkeypatch.setattr(models_command, "run", refused)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert err == f"reatimbre: error: {tmp_path / 'out'}: already exists\n"
