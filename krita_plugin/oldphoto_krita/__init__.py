"""oldphoto's Krita plug-in: Tools > Scripts > "Restore Old Photo…" (Wan et al., CVPR 2020).

Krita's Python has no torch, so the plug-in only moves pixels: it sends the active paint layer to an
oldphoto worker over the bridge shared with the GIMP plug-in (the package ``bridge/`` that
``oldphoto krita install`` copies in, with the worker's settings ``oldphoto-worker.json``) and puts
the answer into a new layer above the original.

Outside Krita (unit tests, the installer) importing this package registers nothing.
"""

try:
    from krita import Krita
except ImportError:  # not inside Krita
    Krita = None

if Krita is not None and Krita.instance() is not None:
    from .extension import RestoreExtension

    Krita.instance().addExtension(RestoreExtension(Krita.instance()))
