"""install.py's steps that run without the package index: compiling the pitch tracker after an install."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from models.pitch import WARM_UP_MIDI, warm_up

ROOT = Path(__file__).resolve().parents[1]


def _install_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reatimbre_install_script", ROOT / "install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_warm_up_hears_its_note_so_that_the_whole_note_finder_is_compiled() -> None:
    # Were the warm-up's note judged silent or unpitched, part of the note finder (librosa's numba functions, the
    # compile that costs a producer half a minute at the first match) would not run.
    heard = warm_up()
    assert heard.kind == "pitched"
    assert heard.midi == WARM_UP_MIDI


def test_the_installer_compiles_the_pitch_tracker_with_the_venvs_python() -> None:
    assert _install_script().warm_pitch_tracker(Path(sys.executable), quiet=True)


@pytest.mark.parametrize("python", ["/nonexistent/bin/python3", shutil.which("false") or "/bin/false"])
def test_a_failed_compile_leaves_the_install_standing(python: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert not _install_script().warm_pitch_tracker(Path(python), quiet=True)
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1
    assert warning[0].startswith("warning: could not compile the pitch tracker now")
