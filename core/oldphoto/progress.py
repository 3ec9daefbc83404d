"""Progress and cancellation from inside a network pass.

Why: on a large photo one network pass takes minutes (the scratch-mode attention at 2048 px takes
tens of minutes on a 2-core CPU), so a progress bar that only moves between stages looks hung and a
Cancel button that is only honoured between stages does nothing. Every network the ``Restorer``
loads calls :func:`tick` before each convolution, and the attention blocks call it for every row
block; the pipeline installs a per-thread handler with :func:`ticking` that updates the progress and
raises :class:`~oldphoto.errors.Cancelled` when the user asked to stop. A context variable (not a
global) keeps two restorations in two threads from seeing each other's handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from torch import nn

TickFn = Callable[[str], None]
"""``handler(detail)``: ``detail`` is "" between layers, or e.g. "attention 40%" inside a block."""

_handler: ContextVar[TickFn | None] = ContextVar("oldphoto_tick_handler", default=None)


def tick(detail: str = "") -> None:
    """Report that a network made progress; may raise ``Cancelled`` (from the handler)."""
    fn = _handler.get()
    if fn is not None:
        fn(detail)


@contextmanager
def ticking(handler: TickFn | None) -> Iterator[None]:
    """Run the enclosed network passes with ``handler`` receiving their ticks (this thread only)."""
    token = _handler.set(handler)
    try:
        yield
    finally:
        _handler.reset(token)


def _before_layer(module: nn.Module, args: tuple) -> None:
    tick()


def add_layer_ticks(net: nn.Module) -> int:
    """A forward pre-hook on every convolution of ``net`` that calls :func:`tick`; returns how many."""
    n = 0
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            m.register_forward_pre_hook(_before_layer)
            n += 1
    return n
