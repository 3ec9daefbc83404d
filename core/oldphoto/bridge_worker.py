"""``python -m oldphoto.bridge_worker``: the worker process's stable entry point.

Why a module of its own: installed GIMP and Krita plug-ins start the worker by this name (see
:data:`oldphoto.bridge.WORKER_MODULE`), so a plug-in and a worker environment of different oldphoto
versions still meet and the protocol check can name the mismatch. The code is :mod:`oldphoto.bridge`.
"""

from __future__ import annotations

import sys

from .bridge.cli import main
from .bridge.worker import Worker, run_worker, serve_socket, serve_stdio

__all__ = ["Worker", "main", "run_worker", "serve_socket", "serve_stdio"]

if __name__ == "__main__":
    sys.exit(main())
