"""The bridge client this plug-in talks to the worker with.

``oldphoto krita install`` copies oldphoto's bridge client (standard library only, the same code the
GIMP plug-in runs) into this package as ``bridge/``. Run from a checkout (the unit tests), that copy
is absent and the oldphoto package's own module is the same code.
"""

try:
    from . import bridge
except ImportError:
    from oldphoto import bridge

__all__ = ["bridge"]
