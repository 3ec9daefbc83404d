"""The official code's resize rules (global SPEC §4.1, §5.2): Pillow resamplers, half-to-even rounding."""

from __future__ import annotations

from PIL import Image


def round_to(v: float, multiple: int) -> int:
    """``int(round(v / multiple) * multiple)`` with Python's half-to-even ``round``, as the official code."""
    return int(round(v / multiple) * multiple)


def resize_if_needed(img: Image.Image, size: tuple[int, int], resample: int) -> Image.Image:
    return img if img.size == size else img.resize(size, resample)
