"""oldphoto's web demo (Gradio): ``build_app()`` gives the page, ``launch()`` serves it.

Importing this package does not import Gradio, so ``oldphoto --help`` stays fast; the names below
load ``.app`` on first access.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_NAME", "build_app", "launch"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
