"""``install.py --reaper``: put ReaTimbre's actions into a REAPER installation, and take them out again.

Standard library only (it runs before anything else is installed). See docs/install.md for what is written
where. In short, idempotently:

* copies the action scripts, their helper modules and the ``extension``/``models`` modules they import
  (:mod:`extension.reaper_payload`) to ``<resource>/Scripts/ReaTimbre/`` and the OSC pattern file to
  ``<resource>/OSC/``;
* registers each action in ``reaper-kb.ini`` under the id REAPER itself computes for the script;
* adds an OSC control surface (receive + send, no action binding) to ``reaper.ini``;
* stores the command that starts the server in ``reaper-extstate.ini`` (``[ReaTimbre] server_command``);
* with ``--reapy``: also the hardened reapy server action, started when REAPER starts by a few marked lines in
  ``Scripts/__startup.py``. REAPER's web interface is never turned on unless ``--web-interface`` is given, and
  then only with a random user and password.

The installer owns only what it wrote: ``<resource>/ReaTimbre-backup/manifest.json`` lists the exact lines it
added and the values it replaced, and uninstall takes out exactly those (found by content, so it works after
REAPER has rewritten and renumbered its files) and puts the replaced values back. It refuses to run while
REAPER runs (unless ``force``), reads and checks every file before changing any, and writes all changes
through :mod:`extension.file_transaction` (all or nothing; symlinks and file modes kept).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

from extension import reaper_payload, reaper_running
from extension.file_transaction import FileTransactionError, commit
from extension.ini_lines import IniLines
from extension.rpp_tree import split_fields

SCRIPTS_SUBDIR = "ReaTimbre"
BACKUP_DIR = "ReaTimbre-backup"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2
OSC_PATTERN = reaper_payload.OSC_PATTERN
OSC_SURFACE_NAME = "ReaTimbre"
OSC_LISTEN_PORT = 8000
OSC_DEVICE_PORT = 9000
OSC_FLAGS = 3
"""&1 receive, &2 send; never &4 (binding OSC messages to REAPER actions)."""
WEB_INTERFACE_PORT = 2307
WEB_INTERFACE_USER = "reatimbre"
REAPY_SCRIPT = "ReaTimbre_reapy server (loopback only).py"
STARTUP_SCRIPT = "Scripts/__startup.py"
STARTUP_BEGIN = "# >>> ReaTimbre: start the loopback-only reapy server (install.py --reaper --reapy) >>>"
STARTUP_END = "# <<< ReaTimbre (install.py --uninstall removes the lines between these markers) <<<"
KB_FILE = "reaper-kb.ini"
INI_FILE = "reaper.ini"
EXTSTATE_FILE = "reaper-extstate.ini"
_CSURF_KEY = re.compile(r"csurf_(\d+)\Z", re.IGNORECASE)


class ReaperInstallError(Exception):
    """A problem the user can fix; install.py prints it as one line. (install.py runs before ReaTimbre's
    own packages are installed, so this does not use models.errors.)"""


# --------------------------------------------------------------------------- locating REAPER
def default_resource_path(platform: str | None = None, environ: dict[str, str] | None = None) -> Path:
    """REAPER's standard per-user resource path on this platform."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    home = Path(env.get("HOME") or Path.home())
    if platform == "win32":
        appdata = env.get("APPDATA") or str(Path(env.get("USERPROFILE") or home) / "AppData" / "Roaming")
        return Path(appdata) / "REAPER"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "REAPER"
    return home / ".config" / "REAPER"


def find_resource_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The resource path to configure: ``explicit`` (a portable install's folder works too) or the default.

    It must already hold ``reaper.ini``, i.e. REAPER must have run once there.
    """
    path = Path(explicit).expanduser() if explicit else default_resource_path()
    if not (path / INI_FILE).is_file():
        hint = "" if explicit else " (for a portable install pass --resource-path <the folder with reaper.ini>)"
        raise ReaperInstallError(f"no REAPER resource path at {path}: reaper.ini not found{hint}")
    return path.resolve()


def refuse_if_reaper_runs(force: bool) -> None:
    """REAPER rewrites its ini files when it quits, undoing (or half-undoing) any edit made meanwhile."""
    pids = reaper_running.reaper_pids()
    if pids and not force:
        listed = ", ".join(str(p) for p in pids)
        raise ReaperInstallError(f"REAPER is running (pid {listed}); quit it first, or pass --force")


# --------------------------------------------------------------------------- REAPER's action ids
def _kb_field(value: str) -> str:
    """A reaper-kb.ini field as REAPER writes it: quoted only when it contains a space."""
    return f'"{value}"' if " " in value else value


def action_id(relative_path: str) -> str:
    """The command id REAPER gives a script: ``RS`` + SHA-1 of its path relative to ``Scripts/``, upper-cased,
    with ``/`` separators (reference §4: ``Cockos/lyrics.lua`` -> ``RS1ee9bb22…``)."""
    normalised = relative_path.replace("\\", "/").upper()
    return "RS" + hashlib.sha1(normalised.encode("utf-8")).hexdigest()


def kb_line(relative_path: str) -> str:
    """The ``SCR`` line REAPER writes for a script under ``Scripts/`` in the main section."""
    path = relative_path.replace("\\", "/")
    name = path.rsplit("/", 1)[-1]
    return f"SCR 4 0 {action_id(path)} {_kb_field(f'Custom: {name}')} {_kb_field(path)}"


def action_scripts(include_reapy: bool) -> list[Path]:
    scripts = reaper_payload.action_scripts()
    return [s for s in scripts if include_reapy or s.name != REAPY_SCRIPT]


def kb_lines(include_reapy: bool) -> list[str]:
    """The ``SCR`` lines registering ReaTimbre's actions."""
    return [kb_line(f"{SCRIPTS_SUBDIR}/{script.name}") for script in action_scripts(include_reapy)]


def reapy_action() -> str:
    """The named command (with its leading ``_``) of the reapy server action."""
    return "_" + action_id(f"{SCRIPTS_SUBDIR}/{REAPY_SCRIPT}")


def osc_surface_line() -> str:
    return (
        f'OSC "{OSC_SURFACE_NAME}" {OSC_FLAGS} {OSC_LISTEN_PORT} "127.0.0.1" {OSC_DEVICE_PORT} 1024 10 "{OSC_PATTERN}"'
    )


def web_interface_line(password: str) -> str:
    """REAPER's web interface with HTTP Basic auth (reference §5: the ``'user:pass'`` field)."""
    return f"HTTP 0 {WEB_INTERFACE_PORT} '{WEB_INTERFACE_USER}:{password}' 'index.html' 0 ''"


def startup_lines() -> list[str]:
    """The marked block ``__startup.py`` runs when REAPER starts: the reapy server action, by its id."""
    return [
        STARTUP_BEGIN,
        "try:",
        "    import reaper_python as _reatimbre_rp",
        f'    _reatimbre_id = _reatimbre_rp.RPR_NamedCommandLookup("{reapy_action()}")',
        "    if _reatimbre_id:",
        "        _reatimbre_rp.RPR_Main_OnCommand(_reatimbre_id, 0)",
        "    else:",
        '        _reatimbre_rp.RPR_ShowConsoleMsg("ReaTimbre: the reapy server action is not registered\\n")',
        "except Exception as _reatimbre_error:  # never stop the user's own startup code",
        "    try:",
        '        _reatimbre_rp.RPR_ShowConsoleMsg(f"ReaTimbre: reapy server not started: {_reatimbre_error}\\n")',
        "    except Exception:",
        "        pass",
        STARTUP_END,
    ]


# --------------------------------------------------------------------------- reaper.ini control surfaces
def _csurf_count(ini: IniLines) -> int:
    text = ini.get("REAPER", "csurf_cnt")
    if text is None:
        return 0
    if not text.strip().isdigit():
        raise ReaperInstallError(f"reaper.ini: csurf_cnt={text!r} is not a number; fix or remove that line")
    return int(text.strip())


def surfaces(ini: IniLines) -> list[str]:
    """The values of ``csurf_0`` … ``csurf_<cnt-1>`` (a missing one is an error: the file is damaged)."""
    values = []
    for n in range(_csurf_count(ini)):
        value = ini.get("REAPER", f"csurf_{n}")
        if value is None:
            raise ReaperInstallError(f"reaper.ini: csurf_{n} is missing although csurf_cnt is {_csurf_count(ini)}")
        values.append(value)
    return values


def _last_csurf_line(ini: IniLines) -> int | None:
    span = ini.section("REAPER")
    last = None
    if span is not None:
        for i in range(span[0] + 1, span[1]):
            key = ini.lines[i].split("=", 1)[0].strip()
            if "=" in ini.lines[i] and (key.lower() == "csurf_cnt" or _CSURF_KEY.match(key)):
                last = i
    return last


def add_surface(ini: IniLines, value: str) -> dict[str, Any]:
    """Append a surface; return what uninstall needs (the value, csurf_cnt's old text, a stale line replaced)."""
    count = _csurf_count(ini)
    surfaces(ini)  # validates
    record: dict[str, Any] = {"value": value, "csurf_cnt_before": ini.get("REAPER", "csurf_cnt")}
    key = f"csurf_{count}"
    record["stale_replaced"] = ini.get("REAPER", key)  # a leftover line past csurf_cnt, which REAPER ignores
    ini.set("REAPER", key, value, after=_last_csurf_line(ini))
    ini.set("REAPER", "csurf_cnt", str(count + 1), after=_last_csurf_line(ini))
    return record


def remove_surfaces(ini: IniLines, records: list[dict[str, Any]]) -> list[str]:
    """Take out the surfaces ``records`` added (found by value, wherever REAPER renumbered them); later ones move
    down. Put csurf_cnt's old text back when the count matches it again. Returns notes for the user."""
    values = surfaces(ini)
    old_count = len(values)
    notes = []
    for record in records:
        wanted = split_fields(record["value"])
        at = next((n for n, v in enumerate(values) if split_fields(v) == wanted), None)  # REAPER may requote
        if at is not None:
            del values[at]
        elif any(split_fields(v)[:2] == wanted[:2] for v in values):
            notes.append(f"kept the {wanted[0]} surface {wanted[1]!r} in reaper.ini: it was changed after installing")
        else:
            notes.append(f"the {wanted[0]} surface ReaTimbre added was already gone from reaper.ini")
    if len(values) == old_count:
        return notes
    for n, value in enumerate(values):
        if ini.get("REAPER", f"csurf_{n}") != value:
            ini.set("REAPER", f"csurf_{n}", value)
    stale = {f"csurf_{int(r['csurf_cnt_before'] or 0)}": r["stale_replaced"] for r in records if r["stale_replaced"]}
    for n in range(len(values), old_count):
        key = f"csurf_{n}"
        if stale.get(key) is not None:
            ini.set("REAPER", key, stale[key])
        else:
            ini.delete("REAPER", key)
    before = records[0]["csurf_cnt_before"] if records else None
    if before is not None and before.strip().isdigit() and int(before) == len(values):
        ini.set("REAPER", "csurf_cnt", before)
    elif before is None and not values:
        ini.delete("REAPER", "csurf_cnt")
    else:
        ini.set("REAPER", "csurf_cnt", str(len(values)))
    return notes


# --------------------------------------------------------------------------- the manifest
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _empty_manifest() -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "files": {},
        "kb": {"lines": [], "ending_added": False},
        "surfaces": [],
        "values": [],
        "startup": None,
    }


def _read_manifest(resource: Path) -> dict[str, Any] | None:
    path = resource / BACKUP_DIR / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReaperInstallError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ReaperInstallError(f"{path} was written by another version of install.py; uninstall with that one")
    return manifest


class _Files:
    """Every file the installer may touch, read (and checked) before anything is changed; edits stay in memory
    until :meth:`commit`."""

    def __init__(self, resource: Path) -> None:
        self.resource = resource
        self.original: dict[str, bytes | None] = {}
        self.current: dict[str, bytes | None] = {}

    def read(self, name: str) -> bytes | None:
        if name not in self.current:
            path = self.resource / name
            try:
                data = path.read_bytes() if path.exists() else None
            except OSError as exc:
                raise ReaperInstallError(f"cannot read {path}: {exc.strerror or exc}") from exc
            self.original[name] = self.current[name] = data
        return self.current[name]

    def ini(self, name: str) -> IniLines:
        return IniLines.parse(self.read(name) or b"")

    def write(self, name: str, data: bytes | None) -> None:
        self.read(name)
        self.current[name] = data

    def changed(self) -> dict[str, bytes | None]:
        return {n: d for n, d in self.current.items() if d != self.original[n]}

    def commit(self) -> None:
        try:
            commit({self.resource / n: d for n, d in self.changed().items()})
        except (FileTransactionError, OSError) as exc:
            raise ReaperInstallError(f"nothing was changed: {exc}") from exc


# --------------------------------------------------------------------------- removing (uninstall, reinstall)
def _remove(files: _Files, manifest: dict[str, Any]) -> list[str]:
    """Take ReaTimbre's files and lines out of ``files`` (in memory). Returns one line per change."""
    changes = []
    for relative, record in sorted(manifest["files"].items()):
        data = files.read(relative)
        backup = f"{BACKUP_DIR}/replaced/{relative}"
        if data is not None and _sha(data) != record["sha256"]:
            changes.append(f"kept {relative}: it was changed after installing")
            continue
        if record.get("replaced"):
            files.write(relative, files.read(backup))
            files.write(backup, None)
            changes.append(f"restored the earlier {relative}")
        elif data is not None:
            files.write(relative, None)
            changes.append(f"removed {relative}")
    kb = files.ini(KB_FILE)
    removed = [line for line in manifest["kb"]["lines"] if kb.remove_line(line)]
    if manifest["kb"]["ending_added"] and removed:
        kb.drop_final_ending()
    if removed:
        emptied = manifest["kb"].get("created", False) and not kb.lines  # a file the install made, now empty
        files.write(KB_FILE, None if emptied else kb.to_bytes())
        changes.append(f"removed {len(removed)} action(s) from reaper-kb.ini")
    if manifest["surfaces"]:
        ini = files.ini(INI_FILE)
        changes += remove_surfaces(ini, manifest["surfaces"])
        if ini.to_bytes() != files.read(INI_FILE):
            files.write(INI_FILE, ini.to_bytes())
            changes.append("removed ReaTimbre's control surface(s) from reaper.ini")
    for record in reversed(manifest["values"]):  # undo in the reverse order of doing
        ini = files.ini(record["file"])
        if ini.get(record["section"], record["key"]) != record["after"]:
            changes.append(f"kept [{record['section']}] {record['key']} in {record['file']}: changed since")
            continue
        if record["before"] is None:
            ini.delete(record["section"], record["key"], drop_empty_section=record["section_created"])
        else:
            ini.set(record["section"], record["key"], record["before"])
        emptied = record["file_created"] and not ini.lines
        files.write(record["file"], None if emptied else ini.to_bytes())
        changes.append(f"restored [{record['section']}] {record['key']} in {record['file']}")
    startup = manifest["startup"]
    if startup:
        script = files.ini(STARTUP_SCRIPT)
        if script.remove_block(startup["lines"]):
            if startup["ending_added"]:
                script.drop_final_ending()
            emptied = startup["created"] and not script.lines
            files.write(STARTUP_SCRIPT, None if emptied else script.to_bytes())
            changes.append(f"removed ReaTimbre's lines from {STARTUP_SCRIPT}")
    return changes


# --------------------------------------------------------------------------- adding
def _payload(include_reapy: bool) -> dict[str, bytes]:
    """Target path (relative to the resource path) -> bytes of every file to copy."""
    repo = reaper_payload.REPO
    scripts = f"Scripts/{SCRIPTS_SUBDIR}"
    files = {f"{scripts}/{s.name}": s.read_bytes() for s in action_scripts(include_reapy)}
    files.update({f"{scripts}/{h.name}": h.read_bytes() for h in reaper_payload.helper_modules()})
    files.update({f"{scripts}/lib/{f}": (repo / f).read_bytes() for f in reaper_payload.library_files()})
    files[f"OSC/{OSC_PATTERN}"] = (repo / reaper_payload.SCRIPT_DIR / OSC_PATTERN).read_bytes()
    return files


def _set_value(files: _Files, manifest: dict[str, Any], name: str, section: str, key: str, value: str) -> None:
    ini = files.ini(name)
    before = ini.get(section, key)
    if before == value:
        return
    record: dict[str, str | bool | None] = {
        "file": name,
        "section": section,
        "key": key,
        "before": before,
        "after": value,
    }
    record["section_created"] = ini.section(section) is None
    record["file_created"] = files.read(name) is None
    ini.set(section, key, value)
    files.write(name, ini.to_bytes())
    manifest["values"].append(record)


def _add(
    files: _Files,
    server_command: list[str],
    include_reapy: bool,
    web_password: str | None,
) -> dict[str, Any]:
    """Add ReaTimbre to ``files`` (in memory, on top of a state without it); return the new manifest."""
    manifest = _empty_manifest()
    for relative, data in _payload(include_reapy).items():
        existing = files.read(relative)
        record = {"sha256": _sha(data), "replaced": False}
        if existing is not None and existing != data:
            files.write(f"{BACKUP_DIR}/replaced/{relative}", existing)
            record["replaced"] = True
        files.write(relative, data)
        manifest["files"][relative] = record

    kb = files.ini(KB_FILE)
    present = {IniLines.content(line) for line in kb.lines}
    wanted = [line for line in kb_lines(include_reapy) if line not in present]
    if wanted:
        created = files.read(KB_FILE) is None
        manifest["kb"] = {"lines": wanted, "ending_added": kb.append(wanted), "created": created}
        files.write(KB_FILE, kb.to_bytes())

    ini = files.ini(INI_FILE)
    existing_surfaces = surfaces(ini)
    wanted_surfaces = [osc_surface_line()]
    if web_password is not None:
        for n, value in enumerate(existing_surfaces):
            fields = split_fields(value)
            if len(fields) > 2 and fields[0] == "HTTP" and fields[2] == str(WEB_INTERFACE_PORT):
                raise ReaperInstallError(
                    f"reaper.ini: csurf_{n} is already a web interface on port {WEB_INTERFACE_PORT}; "
                    "leave out --web-interface (ReaTimbre does not need it)"
                )
        wanted_surfaces.append(web_interface_line(web_password))
    for value in wanted_surfaces:
        if value not in existing_surfaces:
            manifest["surfaces"].append(add_surface(ini, value))
    if manifest["surfaces"]:
        files.write(INI_FILE, ini.to_bytes())

    _set_value(files, manifest, EXTSTATE_FILE, "ReaTimbre", "server_command", json.dumps(server_command))
    if web_password is not None:
        manifest["web_password"] = web_password

    if include_reapy:
        script = files.ini(STARTUP_SCRIPT)
        created = files.read(STARTUP_SCRIPT) is None
        ending_added = script.append(startup_lines())
        files.write(STARTUP_SCRIPT, script.to_bytes())
        manifest["startup"] = {"lines": startup_lines(), "ending_added": ending_added, "created": created}
    return manifest


def _write_manifest(files: _Files, manifest: dict[str, Any] | None) -> None:
    data = None if manifest is None else (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    files.write(f"{BACKUP_DIR}/{MANIFEST}", data)


def _prune_empty_folders(resource: Path, relatives: list[str]) -> None:
    for folder in sorted({(resource / r).parent for r in relatives}, key=lambda p: -len(p.parts)):
        while folder != resource and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


# --------------------------------------------------------------------------- install / uninstall
def install(
    resource: Path,
    server_command: list[str],
    include_reapy: bool = False,
    web_interface: bool = False,
    force: bool = False,
) -> list[str]:
    """Install into ``resource``; return one line per change (empty when everything was already in place)."""
    refuse_if_reaper_runs(force)
    files = _Files(resource)
    old = _read_manifest(resource)
    if old is not None:
        _remove(files, old)
    password = None
    if web_interface:
        password = (old or {}).get("web_password") or secrets.token_urlsafe(18)
    manifest = _add(files, server_command, include_reapy, password)
    _write_manifest(files, manifest)
    changed = files.changed()
    if not changed:
        return []
    files.commit()
    if old is not None:
        _prune_empty_folders(resource, [r for r in old["files"] if r not in manifest["files"]])
    changes = [f"wrote {name}" for name in sorted(changed) if not name.startswith(BACKUP_DIR)]
    if web_interface:
        changes.append(
            f"REAPER's web interface on port {WEB_INTERFACE_PORT} needs user {WEB_INTERFACE_USER!r}, password "
            f"{password!r} (also in reaper.ini)"
        )
    return changes


def uninstall(resource: Path, force: bool = False) -> list[str]:
    """Undo :func:`install`; return one line per change."""
    refuse_if_reaper_runs(force)
    manifest = _read_manifest(resource)
    if manifest is None:
        raise ReaperInstallError(f"ReaTimbre is not installed in {resource}")
    files = _Files(resource)
    changes = _remove(files, manifest)
    _write_manifest(files, None)
    files.commit()
    _prune_empty_folders(resource, [*manifest["files"], f"{BACKUP_DIR}/{MANIFEST}"])
    return changes


# --------------------------------------------------------------------------- install.py's options
def add_arguments(parser) -> None:  # noqa: ANN001 - an argparse.ArgumentParser
    """install.py's REAPER options."""
    parser.add_argument("--reaper", action="store_true", help="also install ReaTimbre's actions into REAPER")
    parser.add_argument(
        "--resource-path",
        help="REAPER's resource path (default: the standard one; portable installs: the folder with reaper.ini)",
    )
    parser.add_argument(
        "--reapy",
        action="store_true",
        help="with --reaper: also the hardened reapy server, started with REAPER from Scripts/__startup.py",
    )
    parser.add_argument(
        "--web-interface",
        action="store_true",
        help=f"with --reaper: also turn on REAPER's web interface (port {WEB_INTERFACE_PORT}, random password)",
    )
    parser.add_argument("--force", action="store_true", help="edit REAPER's files even while REAPER is running")
    parser.add_argument("--uninstall", action="store_true", help="remove ReaTimbre from REAPER")


def run(args, python: Path) -> int:  # noqa: ANN001 - argparse.Namespace
    """Carry out ``--reaper`` / ``--uninstall`` for install.py; errors are printed as one line."""
    try:
        resource = find_resource_path(args.resource_path)
        if args.uninstall:
            changes = uninstall(resource, force=args.force)
        else:
            changes = install(
                resource,
                [str(python), "-m", "server", "serve"],
                include_reapy=args.reapy,
                web_interface=args.web_interface,
                force=args.force,
            )
    except (ReaperInstallError, OSError) as exc:
        print(f"install.py: {exc}", file=sys.stderr)
        return 1
    for line in changes:
        print(line)
    what = "removed from" if args.uninstall else "installed into"
    state = "" if changes else " (nothing to change)"
    print(f"ReaTimbre {what} REAPER at {resource}{state}; restart REAPER to pick it up")
    return 0
