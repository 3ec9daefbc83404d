"""oldphoto: restore damaged old photos (Wan et al., "Bringing Old Photos Back to Life", CVPR 2020).

The public entry point is :class:`oldphoto.pipeline.Restorer`; it is re-exported here lazily so that
``import oldphoto`` stays cheap for the GIMP bridge and the CLI's ``--help``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Restorer", "RestoreResult", "OldPhotoError", "__version__"]


def __getattr__(name: str):
    if name in ("Restorer", "RestoreResult"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "OldPhotoError":
        from .errors import OldPhotoError

        return OldPhotoError
    raise AttributeError(name)
