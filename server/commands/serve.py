"""``reatimbre serve``: run the local HTTP JSON API (and optionally the OSC link to REAPER)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
from pathlib import Path

from models.device import add_device_argument
from models.errors import ReaTimbreError
from server.auth import load_or_create_token, token_path
from server.outputs import default_output_dir
from server.serverconfig import DEFAULT_HOST, DEFAULT_PORT, ServerConfig

LOOPBACK_NAMES = ("localhost",)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the local inference server (HTTP JSON API for render jobs and REAPER's actions)",
        description="Run the local inference server on a loopback address. Every request needs the token "
        "stored in the user's config directory; outputs are written only under --output-dir.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"loopback address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where renders are written (default <user data dir>/renders)",
    )
    parser.add_argument("--workers", type=int, default=2, help="jobs run at the same time (default 2)")
    parser.add_argument("--queue-size", type=int, default=32, help="jobs that may wait; more get 429 (default 32)")
    parser.add_argument(
        "--osc-port",
        type=int,
        default=None,
        help="UDP port REAPER's OSC control surface listens on (enables OSC)",
    )
    parser.add_argument(
        "--osc-host",
        default="127.0.0.1",
        help="host REAPER's OSC control surface runs on (default 127.0.0.1)",
    )
    parser.add_argument(
        "--osc-listen-port",
        type=int,
        default=None,
        help="UDP port to receive REAPER's OSC feedback on (REAPER's 'device port'; default: no feedback)",
    )
    add_device_argument(parser)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from models.device import resolve_device
    from server.app import create_app

    device = resolve_device(args.device)  # `--device cuda` without CUDA fails here, not in every job
    _check_loopback(args.host)
    _check_port_free(args.host, args.port)
    if args.osc_listen_port is not None and args.osc_port is None:
        raise ReaTimbreError("--osc-listen-port needs --osc-port (the port REAPER's OSC control surface listens on)")
    for label, value in (("--workers", args.workers), ("--queue-size", args.queue_size)):
        if value < 1:
            raise ReaTimbreError(f"{label} must be at least 1, got {value}")
    config = ServerConfig(
        token=load_or_create_token(),
        host=args.host,
        port=args.port,
        output_dir=args.output_dir if args.output_dir is not None else default_output_dir(),
        workers=args.workers,
        queue_size=args.queue_size,
        osc_reaper_host=args.osc_host,
        osc_reaper_port=args.osc_port,
        osc_listen_port=args.osc_listen_port,
        write_server_info=True,
        device=str(device.device),
    )
    app = create_app(config)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    url_host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"reatimbre server on http://{url_host}:{args.port}/v1 (token in {token_path()}, "
        f"outputs in {app.state.output_dir}; jobs on {device.describe()})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def _check_loopback(host: str) -> None:
    if host in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ReaTimbreError(f"--host {host} is not a loopback address; the server only listens on this machine")


def _check_port_free(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ReaTimbreError(f"--port must be 1..65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ReaTimbreError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
