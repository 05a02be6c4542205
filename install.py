#!/usr/bin/env python3
"""One-command setup for ReaTimbre.

    python3 install.py            # create .venv and install ReaTimbre into it
    python3 install.py --dev      # the same, plus the test tools and every optional extra (Ray, reapy, DawDreamer)
    python3 install.py --reaper [--resource-path DIR] [--reapy] [--web-interface] [--force]
                                  # also add ReaTimbre's actions to REAPER (docs/install.md)
    python3 install.py --uninstall [--resource-path DIR] [--force]   # take them out of REAPER again

The script is idempotent: it re-installs only when ``pyproject.toml`` (or the chosen extras)
changed since the last successful run. It uses only the standard library, so it runs on a bare
Python 3.11 before anything else is installed. Nothing is downloaded at run time by ReaTimbre
itself; this script is the only step that talks to the package index.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from extension import reaper_install

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".reatimbre-install-stamp"
SUPPORTED = ((3, 11), (3, 12))


def venv_python(venv_dir: Path = VENV) -> Path:
    """Path of the interpreter inside ``venv_dir`` on this platform."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _fingerprint(extras: list[str]) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(",".join(sorted(extras)).encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv(extras: list[str], quiet: bool = False) -> Path:
    """Create ``.venv`` if needed and install the project (editable) with ``extras``."""
    if sys.version_info[:2] not in SUPPORTED:
        raise SystemExit(
            f"install.py: Python {sys.version_info[0]}.{sys.version_info[1]} is not supported; "
            "run it with Python 3.11 (the pinned torch==2.13.0 CPU build is for 3.11)"
        )
    python = venv_python()
    if not python.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    fingerprint = _fingerprint(extras)
    if STAMP.exists() and STAMP.read_text().strip() == fingerprint:
        if not quiet:
            print("ReaTimbre is already installed and up to date", flush=True)
        return python
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    # torch first and on its own: pinned to the CPU build, never a CUDA wheel.
    steps = [
        [str(python), "-m", "pip", "install", "--quiet", "torch==2.13.0"],
        [str(python), "-m", "pip", "install", "--quiet", "-e", target],
    ]
    for cmd in steps:
        print("running:", " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
    STAMP.write_text(fingerprint + "\n")
    warm_pitch_tracker(python, quiet=quiet)
    print("ReaTimbre installed; the command is", VENV / ("Scripts" if os.name == "nt" else "bin") / "reatimbre")
    return python


def warm_pitch_tracker(python: Path, quiet: bool = False) -> bool:
    """Have librosa compile its pitch tracker into its cache in ``.venv`` now (``models.pitch.warm_up``).

    Otherwise a producer's first ``match`` or ``coach --target`` waits about half a minute longer than every later
    one. Not fatal: on failure it prints one line and the compile happens at the first use instead. Returns True
    when it ran.
    """
    if not quiet:
        print("compiling librosa's pitch tracker (once, about half a minute)", flush=True)
    cmd = [str(python), "-c", "from models.pitch import warm_up; warm_up()"]
    try:
        result = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1] if result.returncode != 0 else ""
    except OSError as exc:
        reason = str(exc)
    if reason:
        print(
            f"warning: could not compile the pitch tracker now ({reason}); the first match will do it instead",
            file=sys.stderr,
        )
        return False
    return True


AMSYNTH_VST = Path("/usr/lib/vst/amsynth_vst.so")
# Debian packages of the test plug-ins, each with one file it installs: amsynth (the instrument the plug-in host
# tests use) and the third-party effects of the steering memory tests (benchmarks/steer_memory.py). On the dev
# machine the three effect packages (41 MB of .debs) took 9 s to download and install, apt-get update 1.6 s.
# Then the renderers of the other-origin test material (models/other_origin.py): fluidsynth with the FluidR3 GM
# soundfont (about 150 MB installed) and espeak-ng.
TEST_PLUGIN_PACKAGES = {
    "amsynth": AMSYNTH_VST,
    "dragonfly-reverb-vst": Path("/usr/lib/lxvst/DragonflyHallReverb-vst.so"),
    "zam-plugins": Path("/usr/lib/vst/ZamComp-vst.so"),
    "dpf-plugins-vst": Path("/usr/lib/vst/SoulForce-vst.so"),
    "fluidsynth": Path("/usr/bin/fluidsynth"),
    "fluid-soundfont-gm": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    "espeak-ng": Path("/usr/bin/espeak-ng"),
}


def ensure_amsynth(quiet: bool = False) -> bool:
    """Install the test plug-ins' Debian packages (amsynth and the effects of TEST_PLUGIN_PACKAGES) if missing.

    Only on Linux, as root, with apt-get present; a failure prints one line and is not fatal. Returns True when
    the plug-ins are there afterwards.
    """
    missing = [package for package, path in TEST_PLUGIN_PACKAGES.items() if not path.exists()]
    if not missing:
        return True
    if not sys.platform.startswith("linux") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        if not quiet:
            print(f"note: {', '.join(missing)} not installed; their plug-in tests will be skipped", flush=True)
        return False
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        if not quiet:
            print(f"note: no apt-get here to install {', '.join(missing)}; their tests will be skipped", flush=True)
        return False
    print(f"installing {', '.join(missing)} (apt-get) for the plug-in tests", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([apt_get, "update", "-qq"], [apt_get, "install", "-y", "-qq", *missing]):
        result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
            print(f"warning: could not install test plug-ins ({' '.join(cmd[1:])} failed: {reason})", file=sys.stderr)
            return False
    return all(path.exists() for path in TEST_PLUGIN_PACKAGES.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also install the test tools")
    parser.add_argument("--quiet", action="store_true", help="print less")
    reaper_install.add_arguments(parser)
    args = parser.parse_args(argv)
    if (args.reapy or args.web_interface) and not args.reaper:
        parser.error("--reapy and --web-interface go with --reaper")
    if args.uninstall:
        return reaper_install.run(args, venv_python())
    extras = ["dev"] if args.dev else (["reapy"] if args.reapy else [])
    try:
        ensure_venv(extras, quiet=args.quiet)
        if args.dev:
            ensure_amsynth(quiet=args.quiet)
    except subprocess.CalledProcessError as exc:
        print(f"install.py: a setup step failed (exit {exc.returncode}): {' '.join(exc.cmd)}", file=sys.stderr)
        return 1
    if args.reaper:
        return reaper_install.run(args, venv_python())
    return 0


if __name__ == "__main__":
    sys.exit(main())
