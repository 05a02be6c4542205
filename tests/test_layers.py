"""Data flows one way: REAPER or CLI -> server -> models. The imports must say the same.

* ``models/`` (torch models, the render engine, audio I/O, training, synths) imports neither ``server`` nor
  ``extension``;
* ``extension/`` (the REAPER bridge) never imports ``server``;
* ``reaper_scripts/`` run in REAPER's own Python: the standard library, REAPER's ``reaper_python``, their sibling
  helper modules, and the parts of ``extension``/``models`` installed beside them; never ``server``.

Every import counts, including the ones inside functions (a lazy import still ties the layers together).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "models": {"server", "extension"},
    "extension": {"server"},
    "reaper_scripts": {"server"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import in a file, wherever it stands."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def _files(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_one_above_it(layer: str) -> None:
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {package}"
        for path in _files(layer)
        for package, line in sorted(imported_packages(path))
        if package in FORBIDDEN[layer]
    ]
    assert not upward, "imports that run back up the layers:\n" + "\n".join(upward)


def test_reaper_scripts_import_only_what_reapers_python_has() -> None:
    siblings = {path.stem for path in _files("reaper_scripts")}
    allowed = set(sys.stdlib_module_names) | siblings | {"reaper_python", "extension", "models", "__future__"}
    foreign = [
        f"{path.relative_to(ROOT)}:{line} imports {package}"
        for path in _files("reaper_scripts")
        for package, line in sorted(imported_packages(path))
        if package not in allowed
    ]
    assert not foreign, "REAPER's Python has only the standard library:\n" + "\n".join(foreign)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from server.render import render_file\n    import extension.osc as osc\n")
    assert imported_packages(module) == {("server", 2), ("extension", 3)}
