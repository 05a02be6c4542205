"""A training command refuses an ``--out`` it could not write before it trains, not after (hours later)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.errors import ReaTimbreError
from server.cli import main
from server.commands.options import check_out_folder


def test_a_new_or_existing_folder_is_accepted_and_nothing_is_created(tmp_path: Path) -> None:
    check_out_folder(tmp_path)
    check_out_folder(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    check_out_folder(tmp_path / "link")  # a link to a folder is the user's choice of folder


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("a-file", "a-file: is a file, not a folder"),
        ("a-file/below", "a-file is not a folder"),
        ("x" * 300, "file name too long"),
        ("a-fifo", "is a file, not a folder"),
        ("dangling", "is a file, not a folder"),
    ],
)
def test_what_cannot_be_a_folder_is_refused_in_one_line(tmp_path: Path, out: str, words: str) -> None:
    (tmp_path / "a-file").write_bytes(b"mine")
    os.mkfifo(tmp_path / "a-fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ReaTimbreError) as caught:
        check_out_folder(tmp_path / out)
    line = str(caught.value)
    assert words in line and "nothing was trained or written" in line and "\n" not in line and len(line) < 400
    assert (tmp_path / "a-file").read_bytes() == b"mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_the_user_cannot_write_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        with pytest.raises(ReaTimbreError, match="permission denied"):
            check_out_folder(locked / "run")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize(
    "command",
    [
        ["match-train", "--data", "no-such-data"],
        ["match-tune", "--models", "no-such-models", "--data", "no-such-data"],
        ["coach-train", "--data", "no-such-data"],
        ["afx-train", "--arch", "ceq", "--task", "eq-peak"],
        ["afx-bench", "--archs", "ceq", "--tasks", "eq-peak"],
        ["train-effect", "--effect", "compressor"],
    ],
)
def test_every_training_command_checks_out_before_it_starts(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "weights.json"
    taken.write_text("{}")
    assert main([*command, "--out", str(taken)]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1] == f"reatimbre: error: --out {taken}: is a file, not a folder; nothing was trained or written"
    assert taken.read_text() == "{}" and sorted(p.name for p in tmp_path.iterdir()) == ["weights.json"]
