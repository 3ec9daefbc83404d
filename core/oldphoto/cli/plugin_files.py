"""What ``oldphoto gimp`` and ``oldphoto krita`` share: copying plug-in files, the worker options and
the ``install | uninstall | path`` commands themselves.

Why shared: both hosts get the same bridge client (:data:`oldphoto.bridge.CLIENT_MODULES`, standard
library only) as a package of their own, both must replace files atomically (a host that reads a
half-written plug-in shows an import error), and both record the same worker settings from the same
command-line options. The commands differ only in names, folders and messages, so each host module
describes itself as a :class:`PluginHost` and keeps only what is really its own (where the host
looks for plug-ins, which files go where). Files come through importlib.resources, so installing
works from a wheel as well as from a checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from .. import bridge


def write_file(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (a new mtime also makes GIMP query the plug-in again)."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def copy_resource(package: str, resource: str, target: Path) -> None:
    """Copy a file shipped in ``package`` to ``target`` (through importlib.resources: wheel or checkout)."""
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
    """The line install prints so the user sees which Python (and weights) the plug-in will use."""
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


@dataclass(frozen=True)
class PluginHost:
    """Everything ``install | uninstall | path`` need to know about one host application.

    Why a description rather than a base class: the host modules differ only in data and in two
    functions (where the files go, how they are removed), so the commands are written once below
    and the messages cannot drift apart between GIMP and Krita.
    """

    name: str
    """The application as users know it, in messages: ``GIMP``, ``Krita``."""
    command: str
    """The ``oldphoto`` sub-command: ``gimp``, ``krita``."""
    folder_option: str
    """The option naming the folder the host loads plug-ins from, e.g. ``--plugins-dir``."""
    folder_kind: str
    """What that folder is called in help texts: ``plug-ins``, ``pykrita``."""
    folder_help: str
    """Help of :attr:`folder_option` (says what the default is)."""
    default_folder: Callable[[], Path]
    """The user's folder when :attr:`folder_option` is not given (also what ``path`` prints)."""
    install: Callable[[Path, bridge.WorkerConfig], Path]
    """Copy the plug-in into the folder with these worker settings; returns what was installed."""
    uninstall: Callable[[Path], Path | None]
    """Remove our plug-in from the folder; returns what was removed, None when it is not there."""
    after_install: tuple[str, ...]
    """Lines printed after a successful install: how to enable and find the plug-in."""
    unwritable_hint: str
    """Printed after "cannot write to <folder> (<error>);" when installing fails."""

    @property
    def install_command(self) -> str:
        """``oldphoto <command> install``: recorded in the worker settings and named in errors."""
        return f"oldphoto {self.command} install"

    def folder(self, args: argparse.Namespace) -> Path:
        """The folder :attr:`folder_option` names, else :attr:`default_folder`."""
        given = getattr(args, self.folder_option.lstrip("-").replace("-", "_"))
        return Path(given) if given else self.default_folder()


def cmd_install(host: PluginHost, args: argparse.Namespace) -> int:
    """``oldphoto <host> install``: 0 installed, 1 the folder is not writable, 2 bad ``--python``."""
    folder = host.folder(args)
    config = worker_config(args, host.install_command)
    if config is None:
        return 2
    try:
        dest = host.install(folder, config)
    except OSError as exc:
        print(f"{host.install_command}: cannot write to {folder} ({exc}); {host.unwritable_hint}", file=sys.stderr)
        return 1
    print(f"Installed the {host.name} plug-in in {dest}")
    print(describe_worker(config))
    for line in host.after_install:
        print(line)
    return 0


def cmd_uninstall(host: PluginHost, args: argparse.Namespace) -> int:
    """``oldphoto <host> uninstall``: 0 removed or nothing to remove, 1 it could not be removed."""
    folder = host.folder(args)
    try:
        removed = host.uninstall(folder)
    except OSError as exc:
        print(f"oldphoto {host.command} uninstall: cannot remove it from {folder} ({exc}).", file=sys.stderr)
        return 1
    if removed is None:
        print(f"The {host.name} plug-in is not installed in {folder}; nothing to remove.")
    else:
        print(f"Removed {removed}; restart {host.name}.")
    return 0


def cmd_path(host: PluginHost, args: argparse.Namespace) -> int:
    """``oldphoto <host> path``: the folder install would use, so users can check it before installing."""
    print(host.default_folder())
    return 0


def add_standard_actions(sub: Any, host: PluginHost) -> None:
    """Add ``install``, ``uninstall`` and ``path`` to a host's ``ACTION`` sub-parsers (``sub``, from
    ``add_subparsers``); the host module adds its own actions (Krita's ``zip``) beside them."""
    i = sub.add_parser("install", help=f"copy the plug-in into {host.name}'s {host.folder_kind} folder")
    i.add_argument(host.folder_option, help=host.folder_help)
    add_worker_arguments(i, host.name)
    i.set_defaults(func=partial(cmd_install, host))

    u = sub.add_parser("uninstall", help="remove the plug-in (and stop its worker)")
    u.add_argument(host.folder_option, help=host.folder_help)
    u.set_defaults(func=partial(cmd_uninstall, host))

    w = sub.add_parser("path", help=f"print the {host.folder_kind} folder `install` would use")
    w.set_defaults(func=partial(cmd_path, host))
