"""benchmarks/device_check.sh, the one-command GPU check: it parses, its dependency list is pyproject.toml's pins
and covers what the checks import, and it stops with a clear line on a machine without CUDA."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "device_check.sh"


def _pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    own_extras = [r for r in requirements if r.startswith("reatimbre[")]  # dev = reatimbre[ray,...] + tools
    return dict(requirement.split("==", 1) for requirement in requirements if requirement not in own_extras)


def _listed() -> list[str]:
    out = subprocess.run(["bash", str(SCRIPT), "--print-dependencies"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_its_dependencies_are_pyprojects_pins_without_torch() -> None:
    pins = _pins()
    listed = dict(requirement.split("==", 1) for requirement in _listed())
    assert "torch" not in listed  # the GPU machine brings its own CUDA build
    assert {name: pins.get(name) for name in listed} == listed
    text = SCRIPT.read_text(encoding="utf-8")
    modules = re.search(r"^MODULES=\((.*)\)$", text, re.M)
    assert modules is not None and len(modules.group(1).split()) == len(listed)


def test_its_dependencies_cover_what_the_checks_import() -> None:
    """Import the CUDA tests and the benchmarks the script runs, and map every module then loaded to the pyproject
    dependency it comes from: each must be torch or listed in the script."""
    probe = """
import importlib, importlib.metadata as md, sys
for name in ["tests.test_device_cuda", "tests.test_device", "benchmarks.steer_speed", "benchmarks.render_speed",
             "benchmarks.batch_throughput", "models.evaluation", "server.batch"]:
    importlib.import_module(name)
import pyloudnorm, vita  # imported lazily by models.evaluation.compare and models.material.vital_note
owners = md.packages_distributions()
print(" ".join(sorted({d.lower() for m in list(sys.modules) for d in owners.get(m.split(".")[0], [])})))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    imported = set(out.stdout.split())
    ours = {name.lower() for name in _pins()}
    listed = {requirement.split("==")[0].lower() for requirement in _listed()}
    assert (imported & ours) - {"torch", "reatimbre"} <= listed


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_it_stops_with_one_line_and_writes_it(tmp_path: Path) -> None:
    out = tmp_path / "check.txt"
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    run = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=env)
    assert run.returncode == 2
    assert "has no torch that sees a CUDA device" in run.stdout and out.read_text().strip().endswith(f"(see {out})")
