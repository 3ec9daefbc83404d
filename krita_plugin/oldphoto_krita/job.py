"""One restore request to the oldphoto worker, run on a thread so that Krita's GUI stays responsive.

Why a plain thread polled by the GUI (not Qt signals): the job touches no Qt or Krita object, so it
can be tested without Krita, and the GUI side reads its state from a ``QTimer`` on the GUI thread,
where every Krita API call must happen.
"""

from __future__ import annotations

import threading
from typing import Any

from .client import bridge


class Job:
    """Send ``rgb`` (and the damage mask) to the worker; ``state`` tells the GUI how it goes."""

    def __init__(self, config: bridge.WorkerConfig, rgb: bytes, size: tuple[int, int],
                 options: bridge.RestoreOptions, *, mask: bytes | None = None, want_mask: bool = False,
                 detect_only: bool = False, guide: dict[str, Any] | None = None) -> None:
        """``guide``: the colour guidance keywords of ``WorkerClient.restore`` (``reference`` and
        ``reference_size``, or ``points_layer``)."""
        self.config, self.rgb, self.size, self.options = config, rgb, size, options
        self.guide = dict(guide or {})
        self.mask, self.want_mask, self.detect_only = mask, want_mask, detect_only
        self.fraction = 0.0
        self.message = "Connecting to the oldphoto worker"
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self.result: bytes | None = None
        self.result_mask: bytes | None = None
        self.info: dict[str, Any] = {}
        self.error: str | None = None
        self._client: bridge.WorkerClient | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="oldphoto-krita-job")

    def start(self) -> Job:
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the worker to stop (it answers ``cancelled``); safe from any thread, any time."""
        self.cancelled.set()
        with self._lock:
            client = self._client
        if client is not None:
            try:
                client.cancel()
            except bridge.OldPhotoError:
                pass  # already gone: the job ends on its own

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def _status(self, message: str) -> None:
        self.message = message

    def _progress(self, fraction: float, message: str) -> None:
        self.fraction = max(0.0, min(1.0, float(fraction)))
        if message:
            self.message = message

    def _run(self) -> None:
        w, h = self.size
        try:
            with bridge.WorkerClient.connect(self.config, status=self._status) as client:
                with self._lock:
                    self._client = client
                if self.cancelled.is_set():
                    raise bridge.WorkerCancelled()
                if self.detect_only:
                    self.result_mask = client.detect(self.rgb, w, h, self.options, progress=self._progress)
                else:
                    self.result, self.info = client.restore(self.rgb, w, h, self.options, mask=self.mask,
                                                            want_mask=self.want_mask, progress=self._progress,
                                                            **self.guide)
                    self.result_mask = self.info.get("mask_pixels")
        except bridge.WorkerCancelled:
            self.cancelled.set()
        except bridge.OldPhotoError as exc:  # worker missing, weights missing, out of memory, ...
            if not self.cancelled.is_set():  # a cancel that raced the reply is still a cancel
                self.error = str(exc)
        except Exception as exc:  # a bug: still a message, never a traceback
            self.error = f"Restore Old Photo failed unexpectedly ({type(exc).__name__}: {exc}). Please report this."
        finally:
            with self._lock:
                self._client = None
            self.done.set()
