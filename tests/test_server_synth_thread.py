"""The server's synth thread: work runs in one thread, errors come back, and a process with plug-ins exits."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from models.synth.match_synths import KarsMatch
from server.synth_thread import SynthThread

ROOT = Path(__file__).resolve().parent.parent


def test_work_runs_in_one_thread_and_errors_come_back() -> None:
    synths = SynthThread("test-synths")
    seen: list[int] = []

    def work(state: dict) -> int:
        state["calls"] = state.get("calls", 0) + 1
        seen.append(threading.get_ident())
        return state["calls"]

    callers = [threading.Thread(target=lambda: synths.call(work)) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert synths.call(work) == 4 and len(set(seen)) == 1 and seen[0] != threading.get_ident()
    with pytest.raises(ZeroDivisionError):
        synths.call(lambda state: 1 / 0)
    synths.stop()
    assert synths.call(work) == 1  # a new thread, with fresh state


@pytest.mark.skipif(not KarsMatch.plugin_path.exists(), reason="Kars (dpf-plugins-vst) not installed")
def test_a_process_whose_job_thread_used_a_hosted_plug_in_exits() -> None:
    """Loaded in a job's thread and left to Python's exit, a DawDreamer plug-in hung the server for ever."""
    code = (
        "import threading\n"
        "from models.synth.match_synths import KarsMatch\n"
        "from server.synth_thread import SYNTHS\n"
        "def job():\n"
        "    SYNTHS.call(lambda state: state.setdefault('k', KarsMatch()).render({}, 57, 1.0, 0.1, 0.2))\n"
        "t = threading.Thread(target=job)\n"
        "t.start()\n"
        "t.join()\n"
        "print('rendered')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "rendered", done.stderr[-2000:]
