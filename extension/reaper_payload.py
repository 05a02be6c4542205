"""Which repository files ReaTimbre puts into REAPER (standard library only).

Used by ``install.py --reaper`` (which copies them) and by the ReaPack index (whose packages provide them), so
the two can never disagree: the action scripts ``reaper_scripts/ReaTimbre_*.py``, their helper modules
``reaper_scripts/reatimbre_*.py``, and every module of the ``extension`` and ``models`` packages those import,
directly or through each other (found by reading their ``import`` statements, including ones inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT_DIR = "reaper_scripts"
ACTION_GLOB = "ReaTimbre_*.py"
HELPER_GLOB = "reatimbre_*.py"
OSC_PATTERN = "ReaTimbre.ReaperOSC"
LIBRARY_PACKAGES = ("extension", "models")
"""Top-level packages of this repository that REAPER-side code may import."""


def action_scripts(repo: Path = REPO) -> list[Path]:
    """The action scripts, sorted by name."""
    return sorted((repo / SCRIPT_DIR).glob(ACTION_GLOB))


def helper_modules(repo: Path = REPO) -> list[Path]:
    """The standard-library modules the actions import from beside them, sorted by name."""
    return sorted((repo / SCRIPT_DIR).glob(HELPER_GLOB))


def _imported_names(path: Path, package: str) -> set[str]:
    """Absolute dotted names ``path`` may import (``from a import b`` gives both ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = parts[: len(parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module:
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _module_files(name: str, repo: Path) -> list[Path]:
    """The files importing ``name`` runs: each package's ``__init__.py`` on the way, then the module itself."""
    parts = name.split(".")
    if parts[0] not in LIBRARY_PACKAGES:
        return []
    files = []
    for depth in range(1, len(parts) + 1):
        folder = repo.joinpath(*parts[:depth])
        if (folder / "__init__.py").is_file():
            files.append(folder / "__init__.py")
        elif depth == len(parts) and folder.with_suffix(".py").is_file():
            files.append(folder.with_suffix(".py"))
        elif not folder.is_dir():
            break  # ``from package import function``: the name is not a module
    return files


def library_files(repo: Path = REPO) -> list[str]:
    """Repository-relative POSIX paths of the ``extension``/``models`` modules the actions need, sorted."""
    queue = [(p, "") for p in action_scripts(repo) + helper_modules(repo)]
    seen: set[Path] = set()
    found: set[Path] = set()
    while queue:
        path, package = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in sorted(_imported_names(path, package)):
            for file in _module_files(name, repo):
                if file not in found:
                    found.add(file)
                    module = file.parent if file.name == "__init__.py" else file.with_suffix("")
                    dotted = ".".join(module.relative_to(repo).parts)
                    queue.append((file, dotted if file.name == "__init__.py" else dotted.rsplit(".", 1)[0]))
    return sorted(f.relative_to(repo).as_posix() for f in found)
