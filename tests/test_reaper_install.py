"""install.py --reaper / --uninstall on a temporary REAPER resource directory, including hostile conditions."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from bare_python import import_with_a_bare_python

from extension import file_transaction, reaper_running
from extension import reaper_install as ri
from extension.rpp_tree import split_fields

_spec = importlib.util.spec_from_file_location("install", Path(__file__).resolve().parent.parent / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)

REAPER_INI = (
    b"[REAPER]\r\nlastthemefn5=Default\r\ncsurf_cnt=1\r\ncsurf_0=MCU 0 0 0 0 0 0\r\nreascript=1\r\n"
    b"\r\n[verchk]\r\nlastcheck=1\r\n"
)
KB_INI = b'KEY 1 65 40001 0\nSCR 4 0 RSabc "Custom: mine.lua" mine.lua\n'
PYTHON = Path("/opt/venv/bin/python")
REAPER_PIDS = reaper_running.reaper_pids
"""The real scan (the autouse fixture below replaces the module's function, so no test sees a real REAPER)."""
REAPY_HTTP = "HTTP 0 2307 '' 'index.html' 0 ''"
"""The web-interface line reapy's own ``reapy.configure_reaper()`` writes."""


@pytest.fixture(autouse=True)
def no_reaper_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaper_running, "reaper_pids", lambda *a, **k: [])


@pytest.fixture
def resource(tmp_path: Path) -> Path:
    root = tmp_path / "REAPER"
    root.mkdir()
    (root / "reaper.ini").write_bytes(REAPER_INI)
    (root / "reaper-kb.ini").write_bytes(KB_INI)
    return root


def _snapshot(root: Path) -> dict[str, object]:
    """Every file's bytes and mode, every symlink's target, every folder."""
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            out[name] = ("link", os.readlink(path))
        elif path.is_file():
            out[name] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        else:
            out[name] = "dir"
    return out


def _surfaces(root: Path) -> list[str]:
    return ri.surfaces(ri.IniLines.parse((root / "reaper.ini").read_bytes()))


# --------------------------------------------------------------------------- action ids (reference §4)
def test_action_ids_are_the_ones_reaper_computes() -> None:
    cockos = "RS1ee9bb229dabffe151848d7efa3c10f748e1a1cf"  # the id of Cockos/lyrics.lua in every REAPER install
    assert ri.action_id("Cockos/lyrics.lua") == cockos
    assert ri.action_id("Cockos\\lyrics.lua") == cockos
    assert ri.kb_line("Cockos/lyrics.lua") == f'SCR 4 0 {cockos} "Custom: lyrics.lua" Cockos/lyrics.lua'
    line = ri.kb_line("ReaTimbre\\ReaTimbre_Start local server.py")
    assert line.endswith('"Custom: ReaTimbre_Start local server.py" "ReaTimbre/ReaTimbre_Start local server.py"')
    for line in ri.kb_lines(include_reapy=True):
        assert "\\" not in line and '"ReaTimbre/ReaTimbre_' in line


def test_kb_paths_use_forward_slashes_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sep", "\\")
    monkeypatch.setattr(os.path, "join", lambda *parts: "\\".join(parts))
    assert all('"ReaTimbre/' in line for line in ri.kb_lines(include_reapy=True))
    assert ri.reapy_action() == "_" + ri.action_id("ReaTimbre/" + ri.REAPY_SCRIPT)


# --------------------------------------------------------------------------- install, idempotence, uninstall
def test_install_registers_actions_surface_and_server_command(resource: Path) -> None:
    changes = ri.install(resource, [str(PYTHON), "-m", "server", "serve"])
    scripts = resource / "Scripts" / "ReaTimbre"
    assert (scripts / "ReaTimbre_Render selected items through a neural effect.py").is_file()
    assert (scripts / "lib" / "extension" / "reaper_ops.py").is_file()
    assert not (scripts / ri.REAPY_SCRIPT).exists()  # only with --reapy
    assert not (resource / "Scripts" / "__startup.py").exists()
    assert (resource / "OSC" / "ReaTimbre.ReaperOSC").is_file()

    kb = (resource / "reaper-kb.ini").read_text()
    assert kb.startswith(KB_INI.decode())  # the user's lines are untouched
    scr = [line for line in kb.splitlines() if "ReaTimbre_" in line]
    assert len(scr) == len(ri.action_scripts(False)) and all(line.startswith("SCR 4 0 RS") for line in scr)
    assert '"Custom: ReaTimbre_Synth coach - suggest steps toward the selected item.py" "ReaTimbre/' in kb

    ini = (resource / "reaper.ini").read_bytes()
    surface = b'csurf_1=OSC "ReaTimbre" 3 8000 "127.0.0.1" 9000 1024 10 "ReaTimbre.ReaperOSC"\r\n'
    assert surface in ini and b"csurf_cnt=2\r\n" in ini
    assert ini.replace(surface, b"").replace(b"csurf_cnt=2", b"csurf_cnt=1") == REAPER_INI  # nothing else moved
    state = ri.IniLines.parse((resource / "reaper-extstate.ini").read_bytes()).get("ReaTimbre", "server_command")
    assert json.loads(state) == [str(PYTHON), "-m", "server", "serve"]
    manifest = json.loads((resource / "ReaTimbre-backup" / "manifest.json").read_text())
    assert manifest["kb"]["lines"] == scr
    assert manifest["surfaces"][0]["value"] == surface.decode().split("=", 1)[1].strip()
    assert manifest["surfaces"][0]["csurf_cnt_before"] == "1"
    assert any("reaper-kb.ini" in c for c in changes)

    before = _snapshot(resource)
    assert ri.install(resource, [str(PYTHON), "-m", "server", "serve"]) == []  # idempotent
    assert _snapshot(resource) == before


def test_installed_actions_import_with_a_bare_python(resource: Path) -> None:
    """REAPER's Python has no packages: the installed scripts must find everything beside them."""
    ri.install(resource, [str(PYTHON)])
    scripts = resource / "Scripts" / "ReaTimbre"
    result = import_with_a_bare_python(scripts, "reatimbre_action, reatimbre_audition, reatimbre_server")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(scripts / "lib" / "extension" / "reaper_ops.py")


@pytest.mark.parametrize("web_interface", [False, True])
def test_uninstall_restores_every_file_byte_for_byte(resource: Path, web_interface: bool) -> None:
    (resource / "reaper-extstate.ini").write_bytes(b"[reapy]\nactivate_reapy_server=_RSmine\nx=1\n")
    (resource / "Scripts").mkdir()
    (resource / "Scripts" / "__startup.py").write_bytes(b"from reaper_python import *\nRPR_ShowConsoleMsg('hi')")
    original = _snapshot(resource)
    ri.install(resource, [str(PYTHON)], include_reapy=True, web_interface=web_interface)
    extstate = (resource / "reaper-extstate.ini").read_bytes()
    # reapy's own client cannot reach the token-checking server, so its web handshake setting is never touched
    assert b"activate_reapy_server=_RSmine" in extstate
    ri.uninstall(resource)
    assert _snapshot(resource) == original
    with pytest.raises(ri.ReaperInstallError, match="not installed"):
        ri.uninstall(resource)


# --------------------------------------------------------------------------- no LAN exposure (issue 24.1)
def _assert_nothing_reachable_unauthenticated(root: Path) -> None:
    for value in _surfaces(root):
        fields = split_fields(value)
        if fields[0] == "HTTP":
            assert fields[1] != "0" or ":" in fields[3] and all(fields[3].split(":", 1)), value
        if fields[0] == "OSC":
            assert int(fields[2]) & 4 == 0, f"OSC surface binds messages to actions: {value}"
    pattern = root / "OSC" / "ReaTimbre.ReaperOSC"
    for line in pattern.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "ACTION" not in line.split()[0].upper() and "/action" not in line.lower(), line


@pytest.mark.parametrize(("reapy", "web"), [(False, False), (True, False), (True, True)])
def test_install_writes_no_unauthenticated_http_surface_nor_osc_action_addresses(
    resource: Path, reapy: bool, web: bool
) -> None:
    ri.install(resource, [str(PYTHON)], include_reapy=reapy, web_interface=web)
    _assert_nothing_reachable_unauthenticated(resource)
    http = [s for s in _surfaces(resource) if s.startswith("HTTP")]
    assert len(http) == int(web)
    if web:
        user, password = split_fields(http[0])[3].split(":")
        assert user == "reatimbre" and len(password) >= 20
        assert ri.install(resource, [str(PYTHON)], include_reapy=reapy, web_interface=web) == []  # same password


def test_startup_script_starts_the_reapy_action_and_nothing_else(resource: Path) -> None:
    ri.install(resource, [str(PYTHON)], include_reapy=True)
    code = (resource / "Scripts" / "__startup.py").read_text()
    calls: list[tuple[str, tuple[object, ...]]] = []
    fake = types.ModuleType("reaper_python")
    fake.RPR_NamedCommandLookup = lambda name: calls.append(("lookup", (name,))) or 55001
    fake.RPR_Main_OnCommand = lambda cmd, flag: calls.append(("run", (cmd, flag)))
    fake.RPR_ShowConsoleMsg = lambda text: calls.append(("console", (text,)))
    saved = sys.modules.get("reaper_python")
    sys.modules["reaper_python"] = fake
    try:
        exec(compile(code, "__startup.py", "exec"), {"__name__": "__main__"})
        fake.RPR_NamedCommandLookup = lambda name: 0  # not registered: a console line, no crash
        exec(compile(code, "__startup.py", "exec"), {"__name__": "__main__"})
    finally:
        if saved is None:
            del sys.modules["reaper_python"]
        else:
            sys.modules["reaper_python"] = saved
    assert calls[:2] == [("lookup", (ri.reapy_action(),)), ("run", (55001, 0))]
    assert calls[2][0] == "console" and "not registered" in calls[2][1][0]
    assert ri.reapy_action().lstrip("_") in (resource / "reaper-kb.ini").read_text()


# --------------------------------------------------------------------------- the installer owns only what it wrote
def test_reapys_own_web_interface_line_survives_install_and_uninstall(resource: Path) -> None:
    ini = REAPER_INI.replace(b"csurf_cnt=1\r\n", b"csurf_cnt=2\r\n").replace(
        b"reascript=1", f"csurf_1={REAPY_HTTP}\r\nreascript=1".encode()
    )
    (resource / "reaper.ini").write_bytes(ini)
    (resource / "reaper-extstate.ini").write_bytes(b"[reapy]\r\nactivate_reapy_server=_RSreapysown\r\n")
    original = _snapshot(resource)
    ri.install(resource, [str(PYTHON)], include_reapy=True)
    assert _surfaces(resource)[:2] == ["MCU 0 0 0 0 0 0", REAPY_HTTP]
    ri.uninstall(resource)
    assert _snapshot(resource) == original
    with pytest.raises(ri.ReaperInstallError, match="already a web interface on port 2307"):
        ri.install(resource, [str(PYTHON)], include_reapy=True, web_interface=True)
    assert _snapshot(resource) == original


def test_uninstall_after_reaper_rewrote_and_renumbered_its_files(resource: Path) -> None:
    ri.install(resource, [str(PYTHON)], include_reapy=True)
    ours = _surfaces(resource)[1]
    # REAPER quits: it rewrites reaper.ini (our surface first now, keys reordered, a value changed) and
    # reaper-kb.ini (lines sorted, a new user action), and the user adds a surface.
    (resource / "reaper.ini").write_bytes(
        b'[REAPER]\r\ncsurf_2=OSC "phone" 1 8100 "" 9100 1024 10 ""\r\nreascript=1\r\ncsurf_cnt=3\r\n'
        b"csurf_1=MCU 0 0 0 0 0 0\r\ncsurf_0=" + ours.encode() + b"\r\nlastthemefn5=Default\r\n"
        b"\r\n[verchk]\r\nlastcheck=2\r\n"
    )
    kb = (resource / "reaper-kb.ini").read_text().splitlines()
    (resource / "reaper-kb.ini").write_text("\n".join(sorted(kb + ["KEY 1 66 40002 0"])) + "\n")
    ri.uninstall(resource)
    assert (resource / "reaper.ini").read_bytes() == (
        b"[REAPER]\r\nreascript=1\r\ncsurf_cnt=2\r\n"
        b'csurf_1=OSC "phone" 1 8100 "" 9100 1024 10 ""\r\ncsurf_0=MCU 0 0 0 0 0 0\r\nlastthemefn5=Default\r\n'
        b"\r\n[verchk]\r\nlastcheck=2\r\n"
    )
    assert sorted((resource / "reaper-kb.ini").read_text().splitlines()) == sorted(
        KB_INI.decode().splitlines() + ["KEY 1 66 40002 0"]
    )
    assert not (resource / "Scripts").exists() and not (resource / "ReaTimbre-backup").exists()


def test_a_stale_surface_line_past_csurf_cnt_comes_back(resource: Path) -> None:
    stale = REAPER_INI.replace(b"reascript=1", b'csurf_1=OSC "old" 1 8001 "" 9001 1024 10 ""\r\nreascript=1')
    (resource / "reaper.ini").write_bytes(stale)
    ri.install(resource, [str(PYTHON)])
    assert _surfaces(resource)[1].startswith('OSC "ReaTimbre"')
    ri.uninstall(resource)
    assert (resource / "reaper.ini").read_bytes() == stale


def test_symlinked_ini_stays_a_link_and_modes_are_kept(resource: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "reaper.ini"
    real.parent.mkdir()
    (resource / "reaper.ini").rename(real)
    (resource / "reaper.ini").symlink_to(real)
    real.chmod(0o640)
    (resource / "reaper-kb.ini").chmod(0o600)
    original = _snapshot(resource)
    ri.install(resource, [str(PYTHON)])
    assert (resource / "reaper.ini").is_symlink() and os.readlink(resource / "reaper.ini") == str(real)
    assert b'"ReaTimbre"' in real.read_bytes()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert stat.S_IMODE((resource / "reaper-kb.ini").stat().st_mode) == 0o600
    ri.uninstall(resource)
    assert _snapshot(resource) == original and real.read_bytes() == REAPER_INI


def test_read_only_file_refuses_and_changes_nothing(resource: Path) -> None:
    (resource / "reaper-kb.ini").chmod(0o444)
    original = _snapshot(resource)
    with pytest.raises(ri.ReaperInstallError, match="reaper-kb.ini is read-only"):
        ri.install(resource, [str(PYTHON)])
    assert _snapshot(resource) == original
    assert not list(resource.rglob(".reatimbre-*"))


@pytest.mark.parametrize("bad", [b"csurf_cnt=two", b"csurf_cnt=", b"csurf_cnt=3"])
def test_malformed_reaper_ini_is_a_clear_error_and_nothing_changes(resource: Path, bad: bytes) -> None:
    (resource / "reaper.ini").write_bytes(REAPER_INI.replace(b"csurf_cnt=1", bad))
    original = _snapshot(resource)
    with pytest.raises(ri.ReaperInstallError, match="reaper.ini: csurf_"):
        ri.install(resource, [str(PYTHON)], include_reapy=True)
    assert _snapshot(resource) == original  # not even the scripts were copied


def test_a_failure_while_writing_rolls_every_file_back(resource: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (resource / "reaper-extstate.ini").write_bytes(b"[other]\nk=v\n")
    original = _snapshot(resource)
    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src: str, dst: str) -> None:
        calls["n"] += 1
        if str(dst).endswith("manifest.json"):  # the last file written: every other one was replaced by then
            calls["failed_at"] = calls["n"]
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(file_transaction.os, "replace", failing_replace)
    with pytest.raises(ri.ReaperInstallError, match="nothing was changed: .*No space left"):
        ri.install(resource, [str(PYTHON)], include_reapy=True)
    assert calls["failed_at"] > 20 and calls["n"] == calls["failed_at"] + 3  # reaper.ini, -kb.ini, -extstate.ini
    assert _snapshot(resource) == original


def test_refuses_while_reaper_runs_unless_forced(resource: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaper_running, "reaper_pids", lambda *a, **k: [4242])
    original = _snapshot(resource)
    with pytest.raises(ri.ReaperInstallError, match=r"REAPER is running \(pid 4242\).*--force"):
        ri.install(resource, [str(PYTHON)])
    assert _snapshot(resource) == original
    assert ri.install(resource, [str(PYTHON)], force=True)
    with pytest.raises(ri.ReaperInstallError, match="REAPER is running"):
        ri.uninstall(resource)
    assert ri.uninstall(resource, force=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_running_reaper_process_is_detected(tmp_path: Path) -> None:
    fake = tmp_path / "reaper"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    process = subprocess.Popen([str(fake), "30"])
    try:
        deadline = time.monotonic() + 5
        while process.pid not in REAPER_PIDS() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.pid in REAPER_PIDS()
    finally:
        process.kill()
        process.wait()
    assert process.pid not in REAPER_PIDS()


def test_proc_scan_reads_comm_and_program_name(tmp_path: Path) -> None:
    for pid, comm, cmdline in [
        ("11", "reaper\n", b"/opt/REAPER/reaper\0-nosplash\0"),
        ("12", "bash\n", b"/bin/bash\0reaper\0"),
        ("13", "python3\n", b"/usr/bin/python3\0"),
        ("14", "REAPER\n", b""),
    ]:
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "comm").write_text(comm)
        (tmp_path / pid / "cmdline").write_bytes(cmdline)
    (tmp_path / "self").mkdir()
    assert REAPER_PIDS("linux", tmp_path) == [11, 14]


# --------------------------------------------------------------------------- install.py
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
    with pytest.raises(SystemExit):
        install.main(["--web-interface", "--resource-path", str(resource)])  # an option without --reaper
    assert "go with --reaper" in capsys.readouterr().err
    (resource / "reaper.ini").write_bytes(REAPER_INI.replace(b"csurf_cnt=1", b"csurf_cnt=x"))
    assert install.main(["--reaper", "--resource-path", str(resource)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "csurf_cnt='x' is not a number" in err[0]


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


def test_a_surface_the_user_edited_is_kept_and_reported(resource: Path) -> None:
    ri.install(resource, [str(PYTHON)])
    ini = resource / "reaper.ini"
    ini.write_bytes(ini.read_bytes().replace(b' 3 8000 "127.0.0.1" 9000 ', b" 3 8200 '127.0.0.1' 9000 "))
    changes = ri.uninstall(resource)
    assert any("kept the OSC surface 'ReaTimbre'" in c for c in changes)
    assert b"csurf_cnt=2" in ini.read_bytes() and b"8200" in ini.read_bytes()


def test_a_surface_reaper_requoted_is_still_found(resource: Path) -> None:
    ri.install(resource, [str(PYTHON)])
    ini = resource / "reaper.ini"
    ini.write_bytes(ini.read_bytes().replace(b'"127.0.0.1"', b"'127.0.0.1'"))
    ri.uninstall(resource)
    assert ini.read_bytes() == REAPER_INI


def test_a_fresh_resource_folder_is_left_as_it_was_found(tmp_path: Path) -> None:
    """A REAPER that never had an action list or ExtState file: uninstall removes the files the install made."""
    root = tmp_path / "REAPER"
    root.mkdir()
    (root / "reaper.ini").write_bytes(REAPER_INI)
    original = _snapshot(root)
    ri.install(root, [str(PYTHON)], include_reapy=True)
    assert (root / "reaper-kb.ini").is_file() and (root / "Scripts" / "__startup.py").is_file()
    ri.uninstall(root)
    assert _snapshot(root) == original
