"""The server's settings and the ``server.json`` file that tells clients where a running server listens."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from models.atomic_files import write_text
from models.userdirs import config_dir
from server.outputs import default_output_dir

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 47810
SERVER_INFO_FILE_NAME = "server.json"


@dataclass(frozen=True)
class ServerConfig:
    """Everything :func:`server.app.create_app` needs; the defaults are the documented ones."""

    token: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    output_dir: Path = field(default_factory=default_output_dir)
    workers: int = 2
    queue_size: int = 32
    max_finished_jobs: int = 500
    max_body_bytes: int = 64 * 1024
    max_input_bytes: int = 1024 * 1024 * 1024
    osc_reaper_host: str = "127.0.0.1"
    osc_reaper_port: int | None = None
    osc_listen_port: int | None = None
    write_server_info: bool = False
    device: str = "cpu"  # torch device for training and rendering jobs: cpu, cuda or cuda:N (already resolved)


def server_info_path(directory: Path | None = None) -> Path:
    """``<config dir>/server.json``."""
    return (directory if directory is not None else config_dir()) / SERVER_INFO_FILE_NAME


def write_server_info(host: str, port: int, directory: Path | None = None) -> Path:
    """Atomically write ``{"host", "port", "pid"}`` for clients to find this server."""
    path = server_info_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps({"host": host, "port": port, "pid": os.getpid()}) + "\n")
    return path


def remove_server_info(directory: Path | None = None) -> None:
    """Remove ``server.json`` if this process wrote it (another server may have replaced it since)."""
    path = server_info_path(directory)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(info, dict) and info.get("pid") == os.getpid():
        path.unlink(missing_ok=True)
