"""Copying plug-in files out of the installed distribution, for ``oldphoto gimp|krita install``.

Why shared: both hosts get the same bridge client (:data:`oldphoto.bridge.CLIENT_MODULES`, standard
library only) as a package of their own, and both must replace files atomically (a host that reads
a half-written plug-in shows an import error). Files come through importlib.resources, so installing
works from a wheel as well as from a checkout.
"""

from __future__ import annotations

import os
import shutil
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
