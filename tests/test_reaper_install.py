"""install.py --reaper / --uninstall on a temporary REAPER resource directory."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from extension import reaper_install as ri

_spec = importlib.util.spec_from_file_location("install", Path(__file__).resolve().parent.parent / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)

REAPER_INI = (
    b"[REAPER]\r\nlastthemefn5=Default\r\ncsurf_cnt=1\r\ncsurf_0=MCU 0 0 0 0 0 0\r\nreascript=1\r\n"
    b"\r\n[verchk]\r\nlastcheck=1\r\n"
)
KB_INI = b'KEY 1 65 40001 0\nSCR 4 0 RSabc "Custom: mine.lua" "mine.lua"\n'
PYTHON = Path("/opt/venv/bin/python")


@pytest.fixture
def resource(tmp_path: Path) -> Path:
    root = tmp_path / "REAPER"
    root.mkdir()
    (root / "reaper.ini").write_bytes(REAPER_INI)
    (root / "reaper-kb.ini").write_bytes(KB_INI)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_registers_actions_surface_and_server_command(resource: Path) -> None:
    changes = ri.install(resource, [str(PYTHON), "-m", "server", "serve"])
    scripts = resource / "Scripts" / "ReaTimbre"
    assert (scripts / "ReaTimbre_Render selected items through a neural effect.py").is_file()
    assert (scripts / "lib" / "extension" / "reaper_ops.py").is_file()
    assert not (scripts / ri.REAPY_SCRIPT).exists()  # only with --reapy
    assert (resource / "OSC" / "ReaTimbre.ReaperOSC").is_file()

    kb = (resource / "reaper-kb.ini").read_text()
    assert kb.startswith(KB_INI.decode())  # the user's lines are untouched
    scr = [line for line in kb.splitlines() if "ReaTimbre_" in line]
    assert len(scr) == 8 and all(line.startswith("SCR 4 0 RS") for line in scr)  # 8 actions with the self-test
    assert 'Custom: ReaTimbre_Synth coach - suggest steps toward the selected item" "ReaTimbre' in kb

    ini = (resource / "reaper.ini").read_bytes()
    assert b"csurf_cnt=2\r\n" in ini and b"csurf_0=MCU 0 0 0 0 0 0\r\n" in ini
    assert b'csurf_1=OSC "ReaTimbre" 3 8000 "127.0.0.1" 9000 1024 10 "ReaTimbre.ReaperOSC"\r\n' in ini
    surface = b'csurf_1=OSC "ReaTimbre" 3 8000 "127.0.0.1" 9000 1024 10 "ReaTimbre.ReaperOSC"\r\n'
    assert ini.replace(surface, b"").replace(b"csurf_cnt=2", b"csurf_cnt=1") == REAPER_INI  # nothing else moved
    state = ri.get_ini_value((resource / "reaper-extstate.ini").read_bytes(), "ReaTimbre", "server_command")
    assert json.loads(state) == [str(PYTHON), "-m", "server", "serve"]
    assert (resource / "ReaTimbre-backup" / "reaper.ini").read_bytes() == REAPER_INI
    assert any("reaper-kb.ini" in c for c in changes)

    before = _snapshot(resource)
    assert ri.install(resource, [str(PYTHON), "-m", "server", "serve"]) == []  # idempotent
    assert _snapshot(resource) == before


def test_installed_actions_import_with_a_bare_python(resource: Path) -> None:
    """REAPER's Python has no packages: the installed scripts must find everything beside them."""
    ri.install(resource, [str(PYTHON)])
    scripts = resource / "Scripts" / "ReaTimbre"
    code = (
        "import sys, types; sys.path.insert(0, sys.argv[1]); "
        "sys.modules['reaper_python'] = types.ModuleType('reaper_python'); "
        "import reatimbre_action, reatimbre_audition, reatimbre_server, extension.reaper_ops as ops; "
        "print(ops.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code, str(scripts)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(scripts / "lib" / "extension" / "reaper_ops.py")


def test_uninstall_restores_every_file(resource: Path) -> None:
    original = _snapshot(resource)
    ri.install(resource, [str(PYTHON)], include_reapy=True)
    assert b"csurf_2=HTTP 0 2307" in (resource / "reaper.ini").read_bytes()
    ri.uninstall(resource)
    assert _snapshot(resource) == original
    with pytest.raises(ri.ReaperInstallError, match="not installed"):
        ri.uninstall(resource)


def test_uninstall_keeps_later_changes_and_removes_only_our_lines(resource: Path) -> None:
    ri.install(resource, [str(PYTHON)], include_reapy=True)
    ini = resource / "reaper.ini"
    ini.write_bytes(ini.read_bytes().replace(b"lastcheck=1", b"lastcheck=2"))  # REAPER wrote a new value
    extstate = resource / "reaper-extstate.ini"
    extstate.write_bytes(extstate.read_bytes() + b"[other]\nk=v\n")
    ri.uninstall(resource)
    assert ini.read_bytes() == REAPER_INI.replace(b"lastcheck=1", b"lastcheck=2")
    assert extstate.read_bytes() == b"[other]\nk=v\n"
    assert (resource / "reaper-kb.ini").read_bytes() == KB_INI
    assert not (resource / "Scripts" / "ReaTimbre").exists()
    assert (resource / "ReaTimbre-backup" / "reaper.ini.before-uninstall").is_file()


def test_install_py_options(
    resource: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(install, "ensure_venv", lambda extras, quiet=False: PYTHON)
    assert install.main(["--reaper", "--resource-path", str(resource)]) == 0
    assert "installed into REAPER" in capsys.readouterr().out
    assert install.main(["--uninstall", "--resource-path", str(resource)]) == 0
    assert install.main(["--reaper", "--resource-path", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reaper.ini not found" in err[0]


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("win32", {"APPDATA": "C:/Users/u/AppData/Roaming", "HOME": "/h"}, "C:/Users/u/AppData/Roaming/REAPER"),
        ("darwin", {"HOME": "/Users/u"}, "/Users/u/Library/Application Support/REAPER"),
        ("linux", {"HOME": "/home/u"}, "/home/u/.config/REAPER"),
    ],
)
def test_default_resource_paths(platform: str, env: dict[str, str], expected: str) -> None:
    assert ri.default_resource_path(platform, env) == Path(expected)
