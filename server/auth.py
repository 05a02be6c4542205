"""The server's access token and the loopback Host check.

The token lives in ``<config dir>/token`` (mode 0600), is created on first use and is shared with the
REAPER scripts, which read the same file. Requests must carry ``Authorization: Bearer <token>``;
requests whose ``Host`` header is not a loopback name are refused, which defeats DNS rebinding.
"""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
from pathlib import Path

from models.errors import ReaTimbreError
from models.userdirs import config_dir

TOKEN_FILE_NAME = "token"
TOKEN_BYTES = 32
LOOPBACK_HOST_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def token_path(directory: Path | None = None) -> Path:
    """Where the token is stored: ``<config dir>/token``."""
    return (directory if directory is not None else config_dir()) / TOKEN_FILE_NAME


def load_or_create_token(directory: Path | None = None) -> str:
    """Return the token from ``<config dir>/token``, creating the file (mode 0600) if it does not exist.

    Creation is atomic and never replaces a token another process wrote in the meantime.
    """
    path = token_path(directory)
    if path.exists():
        return _read_token(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    fd, tmp_name = tempfile.mkstemp(prefix=".token-", dir=path.parent)  # mkstemp creates it with mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(token + "\n")
        os.chmod(tmp_name, 0o600)
        try:
            os.link(tmp_name, path)  # fails if the token appeared meanwhile: keep the existing one
        except FileExistsError:
            return _read_token(path)
        except OSError:
            if path.exists():
                return _read_token(path)
            os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return token


def _read_token(path: Path) -> str:
    token = path.read_text(encoding="ascii", errors="replace").strip()
    if len(token) < 16 or not token.isprintable() or " " in token:
        raise ReaTimbreError(f"the token file {path} is damaged; delete it and restart the server")
    return token


def token_matches(authorization_header: str | None, token: str) -> bool:
    """True when ``authorization_header`` is ``Bearer <token>`` (compared in constant time)."""
    if not authorization_header:
        return False
    scheme, _, supplied = authorization_header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(supplied.strip().encode(), token.encode())


def host_is_loopback(host_header: str | None) -> bool:
    """True when a ``Host`` header names the loopback interface (``localhost``, ``127.0.0.1``, ``[::1]``).

    A port is allowed; a missing header is refused (HTTP/1.1 clients always send one).
    """
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not _is_port(rest)):
            return False
    else:
        name, colon, port = host.partition(":")
        if colon and not port.isdigit():
            return False
    return name in LOOPBACK_HOST_NAMES


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit()
