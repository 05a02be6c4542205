"""``install.py --reaper``: put ReaTimbre's actions into a REAPER installation, and take them out again.

Standard library only (it runs before anything else is installed). What it does, idempotently:

* copies the ReaScripts and the modules they import to ``<resource>/Scripts/ReaTimbre/`` and the OSC pattern
  file to ``<resource>/OSC/``;
* registers each action in ``reaper-kb.ini`` (``SCR 4 0 RS<id> "Custom: …" "ReaTimbre/…"``);
* adds an OSC control surface using ReaTimbre's pattern file to ``reaper.ini`` (listening on 8000, sending to
  127.0.0.1:9000);
* stores the command that starts the server in ``reaper-extstate.ini`` (``[ReaTimbre] server_command``);
* with ``--reapy``: also the hardened reapy server action, the web interface reapy's client uses for its
  handshake (port 2307, on the loopback-only reapy protocol) and ``[reapy] activate_reapy_server``.

Every REAPER file it edits is backed up once, before the first edit, under ``<resource>/ReaTimbre-backup/``,
and only the lines ReaTimbre owns are touched; other lines and line endings stay as they were. ``--uninstall``
restores a backup when the file has not changed since (else it removes only ReaTimbre's lines) and deletes the
files it copied. REAPER should be closed while this runs (it rewrites its ini files when it quits).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from models.atomic_files import write_bytes

REPO = Path(__file__).resolve().parent.parent
SCRIPT_SOURCE = REPO / "reaper_scripts"
SCRIPTS_SUBDIR = "ReaTimbre"
BACKUP_DIR = "ReaTimbre-backup"
MANIFEST = "manifest.json"
OSC_PATTERN = "ReaTimbre.ReaperOSC"
OSC_SURFACE_NAME = "ReaTimbre"
OSC_LISTEN_PORT = 8000
OSC_DEVICE_PORT = 9000
WEB_INTERFACE_PORT = 2307
REAPY_SCRIPT = "ReaTimbre_reapy server (loopback only).py"
LIB_FILES = {
    "lib/extension/__init__.py": "extension/__init__.py",
    "lib/extension/coach_steps.py": "extension/coach_steps.py",
    "lib/extension/fx_names.py": "extension/fx_names.py",
    "lib/extension/reaper_ops.py": "extension/reaper_ops.py",
    "lib/extension/reapy_bridge.py": "extension/reapy_bridge.py",
    "lib/models/errors.py": "models/errors.py",
}
LIB_MODELS_INIT = '"""The part of ReaTimbre\'s models package the REAPER actions need (its error type)."""\n'


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
    if not (path / "reaper.ini").is_file():
        hint = "" if explicit else " (for a portable install pass --resource-path <the folder with reaper.ini>)"
        raise ReaperInstallError(f"no REAPER resource path at {path}: reaper.ini not found{hint}")
    return path.resolve()


# --------------------------------------------------------------------------- small file helpers
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lines(data: bytes) -> tuple[list[str], str]:
    text = data.decode("utf-8", "surrogateescape")
    newline = "\r\n" if "\r\n" in text else "\n"
    return text.splitlines(keepends=True), newline


def _join(lines: list[str]) -> bytes:
    return "".join(lines).encode("utf-8", "surrogateescape")


def _ensure_final_newline(lines: list[str], newline: str) -> None:
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline


def set_ini_value(data: bytes, section: str, key: str, value: str | None) -> bytes:
    """Set (or with None remove) ``key=value`` in ``[section]``, touching no other line."""
    lines, newline = _lines(data)
    start = end = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if start is not None and end is None:
                end = i
            if stripped[1:-1].lower() == section.lower():
                start, end = i, None
    if start is not None and end is None:
        end = len(lines)
    if start is None:
        if value is None:
            return data
        _ensure_final_newline(lines, newline)
        lines += [f"[{section}]{newline}", f"{key}={value}{newline}"]
        return _join(lines)
    for i in range(start + 1, end):
        name = lines[i].split("=", 1)[0].strip()
        if "=" in lines[i] and name.lower() == key.lower():
            if value is None:
                del lines[i]
                if not any(line.strip() for line in lines[start + 1 : end - 1]):
                    del lines[start : end - 1]  # the section is empty now: drop its header too
            else:
                ending = lines[i][len(lines[i].rstrip("\r\n")) :] or newline
                lines[i] = f"{key}={value}{ending}"
            return _join(lines)
    if value is None:
        return data
    insert_at = end
    while insert_at > start + 1 and not lines[insert_at - 1].strip():
        insert_at -= 1  # keep blank lines between sections after our line
    if insert_at == len(lines):
        _ensure_final_newline(lines, newline)
    lines.insert(insert_at, f"{key}={value}{newline}")
    return _join(lines)


def get_ini_value(data: bytes, section: str, key: str) -> str | None:
    current = None
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].lower()
        elif current == section.lower() and "=" in line and line.split("=", 1)[0].strip().lower() == key.lower():
            return line.split("=", 1)[1]
    return None


# --------------------------------------------------------------------------- what ReaTimbre adds
def action_id(relative_path: str) -> str:
    """A stable command id for a script (``RS`` + 40 hex digits), so re-installs keep key bindings."""
    return "RS" + hashlib.sha1(relative_path.replace("\\", "/").encode("utf-8")).hexdigest()


def action_scripts(include_reapy: bool) -> list[Path]:
    scripts = sorted(SCRIPT_SOURCE.glob("ReaTimbre_*.py"))
    return [s for s in scripts if include_reapy or s.name != REAPY_SCRIPT]


def kb_lines(include_reapy: bool) -> list[str]:
    """The ``SCR`` lines registering ReaTimbre's actions in the main section."""
    out = []
    for script in action_scripts(include_reapy):
        relative = os.path.join(SCRIPTS_SUBDIR, script.name)
        out.append(f'SCR 4 0 {action_id(relative)} "Custom: {script.stem}" "{relative}"')
    return out


def edit_keymap(data: bytes, wanted: list[str]) -> bytes:
    """Replace ReaTimbre's SCR lines in reaper-kb.ini with ``wanted`` (empty: remove them)."""
    lines, newline = _lines(data)
    marker = f'"{SCRIPTS_SUBDIR}{os.sep}'
    kept = [line for line in lines if not (line.startswith("SCR ") and marker in line)]
    _ensure_final_newline(kept, newline)
    return _join(kept + [line + newline for line in wanted])


def osc_surface_line() -> str:
    return f'OSC "{OSC_SURFACE_NAME}" 3 {OSC_LISTEN_PORT} "127.0.0.1" {OSC_DEVICE_PORT} 1024 10 "{OSC_PATTERN}"'


def web_interface_line() -> str:
    return f"HTTP 0 {WEB_INTERFACE_PORT} '' 'index.html' 0 ''"


def _surfaces(data: bytes) -> dict[str, str]:
    out = {}
    count = int(get_ini_value(data, "REAPER", "csurf_cnt") or 0)
    for n in range(count):
        value = get_ini_value(data, "REAPER", f"csurf_{n}")
        if value is not None:
            out[f"csurf_{n}"] = value
    return out


def edit_surfaces(data: bytes, wanted: list[str], owned: list[str]) -> bytes:
    """Make the control surfaces ``wanted`` present in reaper.ini; surfaces in ``owned`` that are not wanted
    are removed (and the later ones renumbered)."""
    surfaces = _surfaces(data)
    values = list(surfaces.values())
    keep = [v for v in values if v not in owned or v in wanted]
    for line in wanted:
        if line not in keep:
            keep.append(line)
    if keep == values:
        return data
    for n in range(max(len(values), len(keep))):
        data = set_ini_value(data, "REAPER", f"csurf_{n}", keep[n] if n < len(keep) else None)
    return set_ini_value(data, "REAPER", "csurf_cnt", str(len(keep)) if keep else None)


def reapy_action() -> str:
    """The action id reapy's client triggers to start our reapy server."""
    return "_" + action_id(os.path.join(SCRIPTS_SUBDIR, REAPY_SCRIPT))


def set_reapy_activation(data: bytes, enabled: bool) -> bytes:
    """Point ``[reapy] activate_reapy_server`` at our action, or remove it if it is ours (never the user's)."""
    if enabled:
        return set_ini_value(data, "reapy", "activate_reapy_server", reapy_action())
    if get_ini_value(data, "reapy", "activate_reapy_server") == reapy_action():
        return set_ini_value(data, "reapy", "activate_reapy_server", None)
    return data


# --------------------------------------------------------------------------- install / uninstall
class _Session:
    """Backups and the manifest for one resource path."""

    def __init__(self, resource: Path) -> None:
        self.resource = resource
        self.backup_dir = resource / BACKUP_DIR
        manifest = self.backup_dir / MANIFEST
        self.manifest = (
            json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {"edited": {}, "created": {}}
        )

    def edit(self, name: str, change) -> bool:  # noqa: ANN001 - a bytes -> bytes function
        path = self.resource / name
        before = path.read_bytes() if path.exists() else b""
        after = change(before)
        if after == before:
            return False
        record = self.manifest["edited"].get(name)
        if record is None:
            backup = self.backup_dir / name
            if path.exists():
                self.backup_dir.mkdir(parents=True, exist_ok=True)
                write_bytes(backup, before, make_parents=True)
            record = {"existed": path.exists()}
        write_bytes(path, after, make_parents=True)
        record["installed_sha256"] = _sha(after)
        self.manifest["edited"][name] = record
        return True

    def create(self, relative: str, data: bytes) -> bool:
        path = self.resource / relative
        if path.exists() and path.read_bytes() == data:
            self.manifest["created"][relative] = _sha(data)
            return False
        if path.exists() and relative not in self.manifest["created"]:
            write_bytes(self.backup_dir / "replaced" / relative, path.read_bytes(), make_parents=True)
        write_bytes(path, data, make_parents=True)
        self.manifest["created"][relative] = _sha(data)
        return True

    def save(self) -> None:
        write_bytes(
            self.backup_dir / MANIFEST, (json.dumps(self.manifest, indent=2) + "\n").encode(), make_parents=True
        )


def install(resource: Path, server_command: list[str], include_reapy: bool = False) -> list[str]:
    """Install into ``resource``; return one line per change (empty when everything was already in place)."""
    session = _Session(resource)
    changes = []
    scripts_dir = Path("Scripts") / SCRIPTS_SUBDIR
    files = {scripts_dir / s.name: s.read_bytes() for s in action_scripts(include_reapy)}
    for helper in sorted(SCRIPT_SOURCE.glob("reatimbre_*.py")):
        files[scripts_dir / helper.name] = helper.read_bytes()
    for target, source in LIB_FILES.items():
        files[scripts_dir / target] = (REPO / source).read_bytes()
    files[scripts_dir / "lib" / "models" / "__init__.py"] = LIB_MODELS_INIT.encode()
    files[Path("OSC") / OSC_PATTERN] = (SCRIPT_SOURCE / OSC_PATTERN).read_bytes()
    for relative, data in files.items():
        if session.create(relative.as_posix(), data):
            changes.append(f"copied {relative}")
    if session.edit("reaper-kb.ini", lambda d: edit_keymap(d, kb_lines(include_reapy))):
        changes.append("registered the actions in reaper-kb.ini")
    surfaces = [osc_surface_line()] + ([web_interface_line()] if include_reapy else [])
    owned = [osc_surface_line(), web_interface_line()]
    if session.edit("reaper.ini", lambda d: edit_surfaces(d, surfaces, owned)):
        changes.append(
            "configured the OSC control surface"
            + (" and the web interface" if include_reapy else "")
            + " in reaper.ini"
        )

    def extstate(data: bytes) -> bytes:
        data = set_ini_value(data, "ReaTimbre", "server_command", json.dumps(server_command))
        return set_reapy_activation(data, include_reapy)

    if session.edit("reaper-extstate.ini", extstate):
        changes.append("stored the server command in reaper-extstate.ini")
    session.save()
    return changes


def uninstall(resource: Path) -> list[str]:
    """Undo :func:`install`; return one line per change."""
    session = _Session(resource)
    if not session.manifest["edited"] and not session.manifest["created"]:
        raise ReaperInstallError(f"ReaTimbre is not installed in {resource}")
    changes = []
    for relative, digest in sorted(session.manifest["created"].items()):
        path = resource / relative
        if path.exists() and _sha(path.read_bytes()) == digest:
            path.unlink()
            changes.append(f"removed {relative}")
        elif path.exists():
            changes.append(f"kept {relative}: it was changed after installing")
        replaced = session.backup_dir / "replaced" / relative
        if replaced.exists() and not path.exists():
            write_bytes(path, replaced.read_bytes(), make_parents=True)
            changes.append(f"restored the earlier {relative}")
    for directory in sorted({(resource / r).parent for r in session.manifest["created"]}, key=lambda p: -len(p.parts)):
        while directory != resource and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
            directory = directory.parent
    surgical = {
        "reaper-kb.ini": lambda d: edit_keymap(d, []),
        "reaper.ini": lambda d: edit_surfaces(d, [], [osc_surface_line(), web_interface_line()]),
        "reaper-extstate.ini": lambda d: set_reapy_activation(
            set_ini_value(d, "ReaTimbre", "server_command", None), False
        ),
    }
    for name, record in sorted(session.manifest["edited"].items()):
        path = resource / name
        current = path.read_bytes() if path.exists() else b""
        backup = session.backup_dir / name
        if _sha(current) == record.get("installed_sha256"):
            if record.get("existed"):
                write_bytes(path, backup.read_bytes(), make_parents=True)
            elif path.exists():
                path.unlink()
            changes.append(f"restored {name} from its backup")
        else:  # REAPER or the user changed it since: take out only ReaTimbre's lines
            write_bytes(session.backup_dir / f"{name}.before-uninstall", current, make_parents=True)
            write_bytes(path, surgical[name](current), make_parents=True)
            changes.append(f"removed ReaTimbre's lines from {name} (it changed after installing)")
        backup.unlink(missing_ok=True)
    shutil.rmtree(session.backup_dir / "replaced", ignore_errors=True)
    (session.backup_dir / MANIFEST).unlink()
    if not any(session.backup_dir.iterdir()):
        session.backup_dir.rmdir()
    return changes


# --------------------------------------------------------------------------- install.py's options
def add_arguments(parser) -> None:  # noqa: ANN001 - an argparse.ArgumentParser
    """install.py's REAPER options."""
    parser.add_argument("--reaper", action="store_true", help="also install ReaTimbre's actions into REAPER")
    parser.add_argument(
        "--resource-path",
        help="REAPER's resource path (default: the standard one; portable installs: the folder with reaper.ini)",
    )
    parser.add_argument("--reapy", action="store_true", help="with --reaper: also enable the hardened reapy server")
    parser.add_argument("--uninstall", action="store_true", help="remove ReaTimbre from REAPER, restoring backups")


def run(args, python: Path) -> int:  # noqa: ANN001 - argparse.Namespace
    """Carry out ``--reaper`` / ``--uninstall`` for install.py; errors are printed as one line."""
    try:
        resource = find_resource_path(args.resource_path)
        if args.uninstall:
            changes = uninstall(resource)
        else:
            changes = install(resource, [str(python), "-m", "server", "serve"], include_reapy=args.reapy)
    except (ReaperInstallError, OSError) as exc:
        print(f"install.py: {exc}", file=sys.stderr)
        return 1
    for line in changes:
        print(line)
    what = "removed from" if args.uninstall else "installed into"
    state = "" if changes else " (nothing to change)"
    print(f"ReaTimbre {what} REAPER at {resource}{state}; restart REAPER to pick it up")
    return 0
