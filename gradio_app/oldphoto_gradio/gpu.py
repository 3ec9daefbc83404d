"""ZeroGPU support: on a Hugging Face Space with ZeroGPU hardware a GPU is attached only while a
function decorated with ``spaces.GPU`` runs, for at most the duration it asks for. Asking for too
little aborts big photos; asking for too much lowers the visitor's queue priority, so the duration
follows the photo's size and the options. Without the ``spaces`` package (local runs, tests) the
function is returned unchanged; on other Space hardware ``spaces.GPU`` is itself a no-op.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

MIN_SECONDS = 20
MAX_SECONDS = 120


def gpu_seconds(photo: Any, mask: Any = None, scratches: str = "none", hr: bool = False, faces: bool = True,
                progress: Any = None, cancel: Any = None, adjust: Any = None, color: dict | None = None,
                *_: Any, **__: Any) -> int:
    """Seconds of GPU to request for one restoration (same arguments as the decorated function).

    Rough budget per megapixel on a shared A100 slice, with network loading on the first call:
    quality mode is cheap, scratch handling (detection + non-local mapping) and HR cost more, faces
    add a fixed amount per run; colour (``color`` names a ``colorize`` method) runs its network at a
    fixed 512 px plus a full-size colour conversion.
    """
    w, h = getattr(photo, "size", (1024, 1024))
    mp = w * h / 1e6
    per_mp = 10.0
    if scratches == "auto" or mask is not None:
        per_mp += 15.0
    if hr:
        per_mp += 15.0
    colour = bool(color) and color.get("colorize", "none") != "none"
    if colour:
        per_mp += 3.0
    seconds = 15.0 + per_mp * mp + (15.0 if faces else 0.0) + (10.0 if colour else 0.0)
    return int(min(MAX_SECONDS, max(MIN_SECONDS, round(seconds))))


def on_gpu(fn: F, duration: Callable[..., int] = gpu_seconds) -> F:
    """``spaces.GPU(duration=duration)(fn)`` when the ``spaces`` package is importable, else ``fn``."""
    try:
        spaces = importlib.import_module("spaces")
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)
