"""``oldphoto worker`` / ``python -m oldphoto.bridge_worker``: the worker's command line.

Why apart from :mod:`.worker`: the ``oldphoto`` CLI registers this subcommand on every start, which
must not import numpy or torch; the worker module is imported only when a worker actually runs.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``oldphoto worker``: the process the GIMP and Krita plug-ins (any client of the protocol) talk to."""
    p = subparsers.add_parser(
        "worker",
        help="serve restore requests for the GIMP and Krita plug-ins (bridge protocol)",
        description="Keep the networks loaded and serve restore requests over a UNIX socket or stdin/stdout.",
    )
    add_arguments(p)
    p.set_defaults(func=run_worker)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="listen on this UNIX socket (persistent worker)")
    where.add_argument("--stdio", action="store_true", help="serve one client on stdin/stdout")
    p.add_argument("--idle-timeout", type=float, default=0.0, metavar="S",
                   help="with --socket: exit after S seconds without clients (default 0 = never)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--weights-dir", default=None, help="folder of <component>.safetensors weights")


def run_worker(args: argparse.Namespace) -> int:
    from .worker import run_worker as run  # numpy and torch load here, never in a host's Python

    return run(args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m oldphoto.bridge_worker",
                                description="The oldphoto worker serving the GIMP and Krita plug-ins.")
    add_arguments(p)
    return run_worker(p.parse_args(argv))
