"""Importing ReaTimbre's actions the way REAPER's Python would: no site-packages, only the installed folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def import_with_a_bare_python(scripts: Path, modules: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -S -I`` with ``scripts`` first on ``sys.path`` and a stand-in ``reaper_python``, import
    ``modules`` (an import statement's names) and print ``extension.reaper_ops``'s file."""
    code = (
        "import sys, types; sys.path.insert(0, sys.argv[1]); "
        "sys.modules['reaper_python'] = types.ModuleType('reaper_python'); "
        f"import {modules}, extension.reaper_ops as ops; print(ops.__file__)"
    )
    return subprocess.run(
        [sys.executable, "-S", "-I", "-c", code, str(scripts)], capture_output=True, text=True, timeout=60
    )
