"""Bridge to an oldphoto worker process, shared by the GIMP and Krita plug-ins.

Why: a host's Python (GIMP's, Krita's) cannot import oldphoto's networks, so the plug-in sends
pixels to a worker running in the user's oldphoto environment. The worker keeps one
:class:`oldphoto.Restorer` loaded, so only the first call pays for importing torch and loading weights.

* :mod:`.protocol`: framing, messages, :class:`RestoreOptions` (every dialog control), errors.
* :mod:`.client`: :class:`WorkerConfig` and :class:`WorkerClient` (finds or starts the worker).
* :mod:`.cli`: ``oldphoto worker`` / ``python -m oldphoto.bridge_worker``.
* :mod:`.worker`: the server (numpy, the pipeline); imported only inside a running worker.

Everything but :mod:`.worker` is standard library only: the install commands copy this package
(without :mod:`.worker`) into each plug-in, so both hosts run the same client code.
"""

from .cli import add_parser, run_worker
from .client import CONFIG_NAME, START_TIMEOUT, WORKER_MODULE, Progress, WorkerClient, WorkerConfig
from .protocol import (
    ADJUSTMENTS,
    COLOR_MODELS,
    COLOR_OPTIONS,
    COLORIZE,
    DETECT_ADJUSTMENTS,
    EXISTING_COLOR,
    MAGIC,
    MAX_JSON,
    MAX_PAYLOAD,
    PROTOCOL,
    SCRATCH_THRESHOLD,
    SCRATCHES,
    BridgeError,
    ConnectionClosed,
    OldPhotoError,
    ProtocolError,
    RestoreOptions,
    WorkerCancelled,
    WorkerError,
    ensure_socket_dir,
    read_message,
    write_message,
)

CLIENT_MODULES = ("__init__.py", "protocol.py", "client.py", "cli.py")
"""The files a host plug-in gets (the install commands copy them): all but the worker."""

__all__ = [
    "ADJUSTMENTS", "CLIENT_MODULES", "COLORIZE", "COLOR_MODELS", "COLOR_OPTIONS", "CONFIG_NAME", "DETECT_ADJUSTMENTS",
    "EXISTING_COLOR", "MAGIC", "MAX_JSON", "MAX_PAYLOAD",
    "PROTOCOL", "SCRATCHES", "SCRATCH_THRESHOLD", "START_TIMEOUT", "WORKER_MODULE", "BridgeError",
    "ConnectionClosed", "OldPhotoError", "Progress", "ProtocolError", "RestoreOptions", "WorkerCancelled",
    "WorkerClient", "WorkerConfig", "WorkerError", "add_parser", "ensure_socket_dir", "read_message",
    "run_worker", "write_message",
]
