"""``oldphoto krita install | uninstall | path | zip``: put the Krita plug-in where Krita looks for it.

Why a command: Krita's Python has no torch and ``sys.executable`` inside Krita is not a usable
interpreter, so the plug-in must be told which Python runs the worker. Installing copies the plug-in
package, the bridge client shared with GIMP (as ``oldphoto_krita/bridge/``), the ``.desktop`` file
and the ``.action`` file out of the installed distribution (importlib.resources: a wheel or a
checkout), and writes the worker settings ``oldphoto_krita/oldphoto-worker.json``. ``zip`` builds the
archive Krita's Tools > Scripts > Import Python Plugin from File accepts (without settings: the
dialog asks for the worker's Python).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

from .. import bridge
from .plugin_files import PluginHost, add_standard_actions, copy_bridge_client, copy_resource, stop_worker

PLUGIN = "oldphoto_krita"
INSTALL_COMMAND = "oldphoto krita install"
"""Recorded in the worker settings; the bridge names it when the worker cannot be reached."""
META_FILES = (f"{PLUGIN}.desktop", f"{PLUGIN}.action")
"""Shipped inside the package, installed beside it (``pykrita/``) and in ``actions/``."""


def default_pykrita_dir(platform: str | None = None, env: dict[str, str] | None = None,
                        home: Path | None = None) -> Path:
    """Krita's per-user ``pykrita`` folder (its resource folder's ``pykrita``) on this platform."""
    platform = platform or sys.platform
    env = dict(os.environ) if env is None else env
    home = home or Path.home()
    if platform.startswith("win"):
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "krita" / "pykrita"


def _plugin_modules() -> list[str]:
    return sorted(p.name for p in resources.files(PLUGIN).iterdir() if p.name.endswith(".py"))


def install(pykrita_dir: Path, config: bridge.WorkerConfig | None) -> Path:
    """Copy the plug-in into ``pykrita_dir``; returns its package folder. ``config=None``: no settings."""
    package = pykrita_dir / PLUGIN
    if package.is_dir():
        shutil.rmtree(package)  # no stale module of an earlier version survives
    package.mkdir(parents=True)
    for name in _plugin_modules():
        copy_resource(PLUGIN, name, package / name)
    copy_bridge_client(package / "bridge")
    copy_resource(PLUGIN, f"{PLUGIN}.desktop", pykrita_dir / f"{PLUGIN}.desktop")
    actions = pykrita_dir.parent / "actions"
    actions.mkdir(exist_ok=True)
    copy_resource(PLUGIN, f"{PLUGIN}.action", actions / f"{PLUGIN}.action")
    if config is not None:
        config.save(package / bridge.CONFIG_NAME)
    return package


def uninstall(pykrita_dir: Path) -> Path | None:
    """Remove our files (only ours) and stop the worker; returns the package folder removed."""
    package = pykrita_dir / PLUGIN
    if not (package / "__init__.py").is_file():
        return None
    stop_worker(package / bridge.CONFIG_NAME, INSTALL_COMMAND)
    shutil.rmtree(package)
    for path in (pykrita_dir / f"{PLUGIN}.desktop", pykrita_dir.parent / "actions" / f"{PLUGIN}.action"):
        if path.is_file():
            path.unlink()
    return package


def build_zip(target: Path) -> Path:
    """The release archive for Import Python Plugin from File: the ``.desktop`` and ``.action`` files
    at its root and the package (with the bridge client) beside them."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    entries = [(name, PLUGIN, name) for name in META_FILES]
    entries += [(f"{PLUGIN}/{name}", PLUGIN, name) for name in _plugin_modules()]
    entries += [(f"{PLUGIN}/bridge/{name}", "oldphoto.bridge", name) for name in bridge.CLIENT_MODULES]
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, package, resource in entries:
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))  # same sources, same bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, resources.files(package).joinpath(resource).read_bytes())
    os.replace(tmp, target)
    return target


HOST = PluginHost(
    name="Krita",
    command="krita",
    folder_option="--pykrita-dir",
    folder_kind="pykrita",
    folder_help="Krita's pykrita folder (default: the user's, see `oldphoto krita path`)",
    default_folder=default_pykrita_dir,
    install=install,
    uninstall=uninstall,
    after_install=("To enable it: restart Krita, tick 'Restore Old Photo (oldphoto)' in Settings > Configure Krita > "
                   "Python Plugin Manager, and restart Krita again.",
                   "Then use Tools > Scripts > Restore Old Photo..."),
    unwritable_hint="pass --pykrita-dir with Krita's pykrita folder "
                    "(Settings > Manage Resources > Open Resource Folder, then pykrita).",
)
"""``oldphoto krita install | uninstall | path`` as :mod:`.plugin_files` runs them; ``zip`` is below."""


def _cmd_zip(args: argparse.Namespace) -> int:
    """``oldphoto krita zip``: for users who install through Krita's own dialog instead."""
    target = build_zip(Path(args.output))
    print(f"Wrote {target}: in Krita use Tools > Scripts > Import Python Plugin from File, then enter the "
          "worker's Python in the dialog (or run `oldphoto krita install` instead).")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``oldphoto krita``: the standard actions plus ``zip``."""
    p = subparsers.add_parser("krita", help="install or remove the Krita plug-in",
                              description="Install or remove the Krita plug-in 'Restore Old Photo'.")
    sub = p.add_subparsers(dest="krita_command", metavar="ACTION", required=True)
    add_standard_actions(sub, HOST)
    z = sub.add_parser("zip", help="build the archive for Krita's Import Python Plugin from File")
    z.add_argument("output", help="the .zip to write")
    z.set_defaults(func=_cmd_zip)
    return p
