"""Is REAPER running? (standard library only; the installer must not edit REAPER's files under a live REAPER,
which rewrites them when it quits.)

Linux: a scan of ``/proc/<pid>/comm`` and the program name in ``/proc/<pid>/cmdline``. macOS: ``pgrep -i -x
reaper``. Windows: ``tasklist`` filtered on ``reaper.exe``. No lock file is consulted: REAPER is not known to
keep one in its resource path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROCESS_NAMES = frozenset({"reaper", "reaper.exe"})
"""Program names of REAPER's executable, lower-cased (Linux ``reaper``, macOS ``REAPER``, Windows)."""


def _linux_pids(proc_root: Path) -> list[int]:
    pids = []
    try:
        entries = list(proc_root.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        names = set()
        try:
            names.add((entry / "comm").read_text(errors="replace").strip().lower())
        except OSError:
            pass
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
            names.add(argv0.replace("\\", "/").rsplit("/", 1)[-1].lower())
        except OSError:
            pass
        if names & PROCESS_NAMES:
            pids.append(int(entry.name))
    return sorted(pids)


def _command_pids(command: list[str], windows: bool) -> list[int]:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    pids = []
    for line in result.stdout.splitlines():
        if windows:  # "reaper.exe","1234","Console","1","300,000 K"
            fields = [f.strip('"') for f in line.split('","')]
            if len(fields) > 1 and fields[0].strip('"').lower() == "reaper.exe" and fields[1].isdigit():
                pids.append(int(fields[1]))
        elif line.strip().isdigit():
            pids.append(int(line.strip()))
    return sorted(pids)


def reaper_pids(platform: str | None = None, proc_root: Path = Path("/proc")) -> list[int]:
    """Process ids of running REAPER instances (empty when none, or when this platform cannot tell)."""
    platform = sys.platform if platform is None else platform
    if platform == "win32":
        return _command_pids(["tasklist", "/FI", "IMAGENAME eq reaper.exe", "/FO", "CSV", "/NH"], windows=True)
    if platform == "darwin":
        return _command_pids(["pgrep", "-i", "-x", "reaper"], windows=False)
    return _linux_pids(proc_root)
