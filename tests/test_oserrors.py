"""What the OS refuses becomes one line: the command line's safety net for errors no command put into words."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from models.oserrors import MAX_SHOWN_PATH_CHARS, os_error_line
from server.cli import main


def test_a_line_names_the_file_cut_short_and_in_plain_words() -> None:
    assert os_error_line(OSError(errno.ENOTDIR, "Not a directory", "out/x.wav")) == (
        "out/x.wav: a part of the path is not a folder"
    )
    line = os_error_line(OSError(errno.ENAMETOOLONG, "File name too long", "n" * 5000))
    assert line.endswith("...: file name too long") and len(line) < MAX_SHOWN_PATH_CHARS + 30
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


def test_an_atomic_write_names_the_file_asked_for_not_its_temporary(tmp_path: Path) -> None:
    from models.atomic_files import write_bytes

    with pytest.raises(IsADirectoryError) as folder:
        write_bytes(tmp_path, b"x")
    assert os_error_line(folder.value) == f"{tmp_path}: is a folder, not a file"
    long_name = tmp_path / ("n" * 300 + ".json")
    with pytest.raises(OSError) as too_long:
        write_bytes(long_name, b"x")
    assert too_long.value.filename == str(long_name) and "partial" not in os_error_line(too_long.value)
    assert os_error_line(too_long.value).endswith("...: file name too long")
    with pytest.raises(FileNotFoundError) as missing:
        write_bytes(tmp_path / "no" / "x.json", b"x")
    assert missing.value.filename == str(tmp_path / "no" / "x.json")
    assert list(tmp_path.iterdir()) == []
