"""Whether a process this user started is still running (standard library only: REAPER's Python uses it too)."""

from __future__ import annotations

import os
import sys


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists and belongs to this user, found without signalling it: a pid that another
    user's process reuses is not the server (or REAPER) this user started."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether it could be
    except OSError:  # ProcessLookupError: gone; PermissionError: another user's process
        return False
    return True


def _windows_pid_alive(pid: int) -> bool:
    # os.kill(pid, 0) would send CTRL_C_EVENT on Windows, so ask the kernel through ctypes.
    import ctypes

    query_limited_information, still_active = 0x1000, 259
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
    handle = kernel32.OpenProcess(query_limited_information, False, pid)
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == still_active
    finally:
        kernel32.CloseHandle(handle)
