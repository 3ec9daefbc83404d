"""Serving the web demo for tests: the real app (oldphoto_gradio.build_app + launch) on 127.0.0.1 at
a free port, in this process, with whatever weights folder the test gives it."""

from __future__ import annotations

import contextlib
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(weights_dir: str | Path, **options: Any) -> Iterator[str]:
    """Start the demo, yield its URL, close it afterwards."""
    from oldphoto_gradio.app import build_app, launch

    demo = build_app(weights_dir=weights_dir, device="cpu", **options)
    port = free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:  # the page itself must load
            assert r.status == 200
        yield url
    finally:
        demo.close()


def small_photo(path: Path, size: tuple[int, int] = (128, 96), seed: int = 0) -> Path:
    """A small photo-like image (smooth gradient + noise) for fast CPU restorations."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=2) * 200 + 30).astype(np.float32)
    arr = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(arr, "RGB").save(path)
    return path
