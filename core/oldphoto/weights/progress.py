"""Progress of weight downloads: terminal bars, and the same figures for the app surfaces.

Hub downloads and archive reads both draw huggingface_hub's tqdm bars (bytes, rate, time left),
so ``HF_HUB_DISABLE_PROGRESS_BARS=1`` silences both; ``--quiet`` calls :func:`set_quiet`, which wins
even over ``HF_HUB_DISABLE_PROGRESS_BARS=0`` (huggingface_hub's own switch gives the variable priority). A surface that has its own progress display (the web app's
Gradio bar, the GIMP status bar through the worker) installs a listener with :func:`reporting`;
a context variable, not a global, keeps two restorations in two threads apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from huggingface_hub.utils import tqdm as hf_tqdm

Listener = Callable[[str, int, int], None]
"""``listener(what, done_bytes, total_bytes)``; ``what`` names the file being fetched."""

_listener: ContextVar[Listener | None] = ContextVar("oldphoto_download_listener", default=None)
_quiet = False


def set_quiet(quiet: bool = True) -> None:
    """No download bars in this process (the listeners of :func:`reporting` still get the figures)."""
    global _quiet
    _quiet = quiet


@contextmanager
def reporting(listener: Listener | None) -> Iterator[None]:
    """Send the byte counts of downloads started inside the block to ``listener`` (this context)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def notify(what: str, done: int, total: int) -> None:
    fn = _listener.get()
    if fn is not None:
        fn(what, done, total)


class DownloadBar(hf_tqdm):
    """huggingface_hub's bar (honours its disable switches) that also feeds :func:`reporting`.

    Passed as ``tqdm_class`` to ``hf_hub_download`` and used for archive reads, so every download
    is drawn the same way and reaches the app surfaces the same way.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("unit", "B")
        kwargs.setdefault("unit_scale", True)
        kwargs.setdefault("unit_divisor", 1024)
        if _quiet:
            kwargs["disable"] = True
        super().__init__(*args, **kwargs)
        self._what = str(kwargs.get("desc") or "weights")
        self._done = int(kwargs.get("initial") or 0)

    def update(self, n: float | None = 1) -> bool | None:
        self._done += int(n or 0)
        notify(self._what, self._done, int(self.total or 0))
        return super().update(n)
