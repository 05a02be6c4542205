"""Starting and stopping the local ReaTimbre server from REAPER (shared by the two server actions).

The command that runs the server (``[<venv python>, "-m", "server", "serve"]``) is stored by
``install.py --reaper`` as the persistent ExtState ``ReaTimbre/server_command`` (a JSON list).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import reatimbre_action
from reatimbre_client import Client, ClientError, config_dir, server_pid

from models.errors import ReaTimbreError

START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0


def server_command() -> list[str]:
    text = reatimbre_action.get_state("server_command")
    try:
        command = json.loads(text) if text else None
    except ValueError:
        command = None
    if not (isinstance(command, list) and command and all(isinstance(c, str) for c in command)):
        raise ReaTimbreError("ReaTimbre is not set up for REAPER: run 'python3 install.py --reaper' first")
    return command


def is_running() -> bool:
    try:
        return Client(timeout_seconds=1.0).health().get("status") == "ok"
    except ClientError:
        return False


def start() -> None:
    """Start ``reatimbre serve`` detached (log in <config dir>/server.log) and report when it answers."""
    if is_running():
        host, port = Client().host, Client().port
        reatimbre_action.show_info(f"the ReaTimbre server is already running at {host}:{port}")
        return
    command = server_command()
    directory = config_dir()
    os.makedirs(directory, exist_ok=True)
    log_path = os.path.join(directory, "server.log")
    options = {}
    if sys.platform == "win32":
        options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
    else:
        options["start_new_session"] = True
    with open(log_path, "ab") as log:
        try:
            subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True, **options
            )
        except OSError as exc:
            raise ReaTimbreError(f"cannot start the ReaTimbre server ({command[0]}): {exc}") from None
    reatimbre_action.status("starting the local server...")

    def started(ok: bool) -> None:
        if ok:
            client = Client()
            reatimbre_action.status(f"server running at {client.host}:{client.port}")
        else:
            reatimbre_action.show_error(f"the ReaTimbre server did not start; see {log_path}")

    reatimbre_action.wait_for_server(True, START_TIMEOUT_SECONDS, started)


def stop() -> None:
    """Stop the server that wrote ``server.json`` (only after it answered with our token)."""
    pid = server_pid()
    if pid is None or not is_running():
        reatimbre_action.show_info("the ReaTimbre server is not running")
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as exc:
        raise ReaTimbreError(f"cannot stop the ReaTimbre server (pid {pid}): {exc}") from None
    reatimbre_action.status("stopping the local server...")

    def stopped(ok: bool) -> None:
        if ok:
            reatimbre_action.status("server stopped")
        else:
            reatimbre_action.show_error(f"the ReaTimbre server (pid {pid}) is still answering")

    reatimbre_action.wait_for_server(False, STOP_TIMEOUT_SECONDS, stopped)
