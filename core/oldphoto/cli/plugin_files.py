"""What ``oldphoto gimp`` and ``oldphoto krita`` share: copying plug-in files, the worker options.

Why shared: both hosts get the same bridge client (:data:`oldphoto.bridge.CLIENT_MODULES`, standard
library only) as a package of their own, both must replace files atomically (a host that reads a
half-written plug-in shows an import error), and both record the same worker settings from the same
command-line options. Files come through importlib.resources, so installing works from a wheel as
well as from a checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from .. import bridge


def write_file(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (a new mtime also makes GIMP query the plug-in again)."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def copy_resource(package: str, resource: str, target: Path) -> None:
    write_file(target, resources.files(package).joinpath(resource).read_bytes())


def copy_bridge_client(dest: Path) -> Path:
    """The bridge client as the package folder ``dest`` (emptied first: no stale module survives)."""
    if dest.is_dir():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in bridge.CLIENT_MODULES:
        copy_resource("oldphoto.bridge", name, dest / name)
    return dest


def add_worker_arguments(p: argparse.ArgumentParser, host: str) -> None:
    """The install command's options that say which worker the plug-in uses and how it reaches it."""
    p.add_argument("--python", help="Python that runs the worker (default: this one)")
    p.add_argument("--weights-dir", help="folder of <component>.safetensors for the worker")
    p.add_argument("--device", default="auto", help="worker device: auto (default), cpu, cuda, cuda:N")
    p.add_argument("--transport", choices=("auto", "socket", "stdio"), default="auto",
                   help="how the plug-in reaches the worker (default auto: a persistent worker on a "
                        "UNIX socket, or one worker per run over pipes on Windows)")
    p.add_argument("--socket", metavar="PATH",
                   help=f"UNIX socket of the worker as {host} sees it (for a {host} that cannot start "
                        "programs, e.g. Flatpak: start `oldphoto worker --socket PATH` yourself)")


def worker_config(args: argparse.Namespace, install_command: str) -> bridge.WorkerConfig | None:
    """The worker settings from :func:`add_worker_arguments`' options; None (after saying why) when
    ``--python`` names no file."""
    if args.python and not Path(args.python).is_file():
        print(f"{install_command}: --python {args.python} does not exist.", file=sys.stderr)
        return None
    weights_dir = str(Path(args.weights_dir).resolve()) if args.weights_dir else None
    return bridge.WorkerConfig(python=args.python or sys.executable, weights_dir=weights_dir, device=args.device,
                               transport=args.transport, socket=args.socket, install_command=install_command)


def describe_worker(config: bridge.WorkerConfig) -> str:
    return f"Worker: {config.python}" + (f" (weights from {config.weights_dir})" if config.weights_dir else "")


def stop_worker(config_path: Path, install_command: str) -> None:
    """Ask the persistent worker a plug-in's settings name to exit (uninstalling frees its memory)."""
    try:
        cfg = bridge.WorkerConfig.load(config_path, install_command=install_command)
        if cfg.uses_socket():
            with bridge.WorkerClient.connect(cfg, start=False) as client:
                client.shutdown()
    except (bridge.OldPhotoError, OSError):
        pass  # no worker running, or no settings: nothing to stop
