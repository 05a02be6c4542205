"""The self-test action passes in the emulator and exercises every REAPER function ReaTimbre calls."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from reaper_emulator import ReaperEmulator
from test_reaper_binding import _names_used_by_the_code

SELF_TEST = Path(__file__).resolve().parent.parent / "reaper_scripts" / "ReaTimbre_Self-test in this REAPER.py"


def test_self_test_passes_and_covers_every_call(tmp_path: Path) -> None:
    emu = ReaperEmulator.new(tmp_path / "mine.rpp")
    emu.add_track("my track")
    mine = emu.project
    emu.user_inputs = ["ok"]
    for name in [n for n in sys.modules if n.startswith("reatimbre")]:
        sys.modules.pop(name)
    emu.run_script(SELF_TEST)
    assert emu.run_deferred() == 1
    lines = "".join(emu.console).splitlines()
    checks = [line for line in lines if re.match(r"^(pass|FAIL)  ", line)]
    assert [line for line in checks if line.startswith("FAIL")] == []
    checked = {line.split()[1] for line in checks}
    used = _names_used_by_the_code() - {"runloop"}  # ReaTimbre only names RPR_runloop in its documentation
    assert {"defer", "atexit"} <= used and sorted(used - checked) == []
    summarised = len(checks) - 2  # the summary is shown before the ShowMessageBox and atexit lines
    assert emu.message_boxes[-1][1].startswith(f"{summarised} of {summarised} checks passed")
    assert emu.commands[:2] == [40859, 40001] and emu.commands[-1] == 40860
    assert emu.tabs == [mine] and [t.name for t in mine.tracks()] == ["my track"]  # the user's project untouched
    assert lines[-1].startswith("pass  atexit")


def test_self_test_reports_a_broken_binding(tmp_path: Path) -> None:
    emu = ReaperEmulator.new(tmp_path / "mine.rpp")
    emu.user_inputs = ["ok"]
    emu.failing = {"SetMediaItemTake_Source"}
    emu.run_script(SELF_TEST)
    emu.run_deferred()
    assert "FAIL  SetMediaItemTake_Source" in "".join(emu.console)
    assert "failed: SetMediaItemTake_Source" in emu.message_boxes[-1][1]
