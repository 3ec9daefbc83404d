"""``oldphoto gimp install | uninstall | path``: put the GIMP 3 plug-in where GIMP looks for it.

Why a command: GIMP 3 silently ignores a plug-in that is not ``plug-ins/<name>/<name>.py`` or not
executable, and the plug-in must know which Python runs the worker (GIMP's own Python has no
torch). Installing copies the plug-in, its pixel helpers and the bridge client (the package
``oldphoto_bridge/``, shared with the Krita plug-in) out of the installed distribution and records
``sys.executable`` in ``oldphoto-worker.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

from .. import bridge
from .plugin_files import PluginHost, add_standard_actions, copy_bridge_client, copy_resource, stop_worker

PLUGIN_NAME = "restore_old_photo"
FILES = {
    # installed name -> (package, resource)
    f"{PLUGIN_NAME}.py": ("oldphoto_gimp", "restore_old_photo.py"),
    "oldphoto_pixels.py": ("oldphoto_gimp", "pixels.py"),
}
BRIDGE_PACKAGE = "oldphoto_bridge"
"""The folder the bridge client is copied into, imported by the plug-in as ``oldphoto_bridge``."""
INSTALL_COMMAND = "oldphoto gimp install"
"""Recorded in the worker settings; the bridge names it when the worker cannot be reached."""


def gimp_profile_base(platform: str | None = None, env: dict[str, str] | None = None,
                      home: Path | None = None) -> Path:
    """Where GIMP keeps its per-user folders (``.../GIMP``) on this platform."""
    platform = platform or sys.platform
    env = dict(os.environ) if env is None else env
    home = home or Path.home()
    if platform.startswith("win"):
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "GIMP"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "GIMP"


def default_plugins_dir(platform: str | None = None, env: dict[str, str] | None = None,
                        home: Path | None = None) -> Path:
    """The user's GIMP 3 plug-ins folder: ``$GIMP3_DIRECTORY/plug-ins`` when set, else the newest
    existing ``GIMP/3.x`` profile (GIMP 3.2 moves to ``3.2``), else ``GIMP/3.0``."""
    env = dict(os.environ) if env is None else env
    if env.get("GIMP3_DIRECTORY"):
        return Path(env["GIMP3_DIRECTORY"]) / "plug-ins"
    base = gimp_profile_base(platform, env, home)
    versions = []
    if base.is_dir():
        for d in base.iterdir():
            m = re.fullmatch(r"3\.(\d+)", d.name)
            if m and d.is_dir():
                versions.append((int(m.group(1)), d))
    profile = max(versions)[1] if versions else base / "3.0"
    return profile / "plug-ins"


def install(plugins_dir: Path, config: bridge.WorkerConfig) -> Path:
    """Copy the plug-in into ``plugins_dir/<name>/`` and write the worker config; returns the folder."""
    dest = plugins_dir / PLUGIN_NAME
    dest.mkdir(parents=True, exist_ok=True)
    copy_bridge_client(dest / BRIDGE_PACKAGE)
    stale = dest / f"{BRIDGE_PACKAGE}.py"  # the single-file bridge that earlier versions installed
    if stale.is_file():
        stale.unlink()
    for name, (package, resource) in FILES.items():
        copy_resource(package, resource, dest / name)  # a new mtime makes GIMP query the plug-in again
    main = dest / f"{PLUGIN_NAME}.py"
    main.chmod(main.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    config.save(dest / bridge.CONFIG_NAME)
    return dest


def uninstall(plugins_dir: Path) -> Path | None:
    """Remove our folder (only if it is ours) and stop its worker; returns what was removed."""
    dest = plugins_dir / PLUGIN_NAME
    if not (dest / f"{PLUGIN_NAME}.py").is_file():
        return None
    stop_worker(dest / bridge.CONFIG_NAME, INSTALL_COMMAND)
    shutil.rmtree(dest)
    return dest


HOST = PluginHost(
    name="GIMP",
    command="gimp",
    folder_option="--plugins-dir",
    folder_kind="plug-ins",
    folder_help="GIMP's plug-ins folder (default: the user's GIMP 3 profile, see `oldphoto gimp path`)",
    default_folder=default_plugins_dir,
    install=install,
    uninstall=uninstall,
    after_install=("Restart GIMP, then use Filters > Enhance > Restore Old Photo...",),
    unwritable_hint="pass --plugins-dir with GIMP's plug-ins folder.",
)
"""``oldphoto gimp install | uninstall | path`` as :mod:`.plugin_files` runs them."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``oldphoto gimp`` and its actions."""
    p = subparsers.add_parser("gimp", help="install or remove the GIMP 3 plug-in",
                              description="Install or remove the GIMP 3 plug-in 'Restore Old Photo'.")
    sub = p.add_subparsers(dest="gimp_command", metavar="ACTION", required=True)
    add_standard_actions(sub, HOST)
    return p
