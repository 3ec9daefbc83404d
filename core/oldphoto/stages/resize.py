"""The official code's resize rules (global SPEC §4.1, §5.2), made independent of the installed Pillow.

Pillow resamples in two single-axis passes, and every pass of an 8-bit image rounds and clips to
uint8, so the *order* of the passes changes pixels (one level on 11-20 % of them). Pillow up to 12.x
runs the horizontal pass first; Pillow 13.0.0 (``ImagingResampleInner`` in ``libImaging/Resample.c``)
runs the vertical pass first when the height shrinks by more than twice as many pixels as the width:
``dy > 0 and dy > 2 * dx`` with ``dy = in_h - out_h`` and ``dx = in_w - out_w`` (pixel counts of the
whole image, not ratios; a box does not enter the rule). Pillow 12.x also has a Python-level special
case that goes vertical first for images over 100 times taller than wide.

The official outputs in ``shared/reference`` were made with Pillow 13.0.0, so that is the reference:
:func:`resize` asks Pillow for each single-axis pass explicitly, in the order Pillow 13 picks. A
single-axis pass is the same computation in Pillow 10 to 13 (same filters, coefficients and 22-bit
fixed-point rounding; checked against arrays made with 13.0.0 in ``tests/data/resize_pillow13.npz``),
so the result does not depend on which Pillow is installed. Writing the resampler again in numpy
would also do that, but at a tenth of Pillow's speed on real scans, for no gain in exactness.

Nearest neighbour is a single lookup per pixel (no passes, no rounding) and goes to Pillow as is.
"""

from __future__ import annotations

from PIL import Image

NEAREST = Image.Resampling.NEAREST
BILINEAR = Image.Resampling.BILINEAR
BICUBIC = Image.Resampling.BICUBIC
LANCZOS = Image.Resampling.LANCZOS

Box = tuple[float, float, float, float]

# The smallest side the networks run at after the round-to-4 (quality) or round-to-16 (with a mask):
# below 8 px the VAE's reflection pads at its 1/4 resolution have nothing to reflect (torch refuses),
# round-to-16 gives 0 below 9 px, and HR's 8x8 patch attention at 1/4 resolution needs 32 px. Found
# by running the seeded networks on every side from 1 to 40 px; the official code crashes the same
# way. Padding such photos up would restore a different image, so they are refused with the minimum
# named (:func:`check_processable`).
MIN_PROCESSED_SIDE = {"quality": 8, "scratch": 16, "hr": 32}


def round_to(v: float, multiple: int) -> int:
    """``int(round(v / multiple) * multiple)`` with Python's half-to-even ``round``, as the official code."""
    return int(round(v / multiple) * multiple)


def processing_multiple(mode: str) -> int:
    """Quality mode rounds both sides to multiples of 4 (SPEC §5.2), scratch/HR to 16 (detection's full_size)."""
    return 4 if mode == "quality" else 16


def min_input_side(mode: str) -> int:
    """The smallest photo side whose rounded side reaches :data:`MIN_PROCESSED_SIDE` (6 px, or 9 with a mask)."""
    k = processing_multiple(mode)
    return next(s for s in range(1, 64) if round_to(s, k) >= MIN_PROCESSED_SIDE[mode])


def check_processable(size: tuple[int, int], mode: str, name: str = "The photo") -> None:
    """Raise :class:`~oldphoto.errors.InputError` naming the minimum when a side is too small for ``mode``."""
    from ..errors import InputError

    need = min_input_side(mode)
    if min(size) >= need:
        return
    what = {"quality": "restoration", "scratch": "scratch repair", "hr": "HR scratch repair"}
    minima = ", ".join(f"{what[m]} {min_input_side(m)} px" for m in what)
    raise InputError(
        f"{name} is {size[0]}x{size[1]} px, too small for {what[mode]}: each side must be at least {need} px "
        f"({minima}). Enlarge it first."
    )


def vertical_first(in_size: tuple[int, int], out_size: tuple[int, int]) -> bool:
    """Pillow 13's pass order: vertical first iff the height loses more than twice the pixels the width does."""
    dx = in_size[0] - out_size[0]
    dy = in_size[1] - out_size[1]
    return dy > 0 and dy > 2 * dx


def resize(img: Image.Image, size: tuple[int, int], resample: int, box: Box | None = None) -> Image.Image:
    """``img.resize(size, resample, box)`` as Pillow 13.0.0 computes it, whatever Pillow is installed.

    Only the modes whose passes round (8-bit) or whose order changes float sums matter; for them the
    two passes run as separate Pillow calls. Modes that Pillow converts around a resize (RGBA/LA are
    premultiplied, P/1 forced to nearest) are left to one Pillow call: the pipeline never resizes them.
    """
    w, h = img.size
    if box is None:
        box = (0.0, 0.0, float(w), float(h))
    if size == img.size and tuple(box) == (0, 0, w, h):
        return img.copy()
    if resample == NEAREST or img.mode not in ("RGB", "L", "I", "F", "I;16"):
        return img.resize(size, resample, box=box)
    x0, y0, x1, y1 = box
    out_w, out_h = size
    if vertical_first(img.size, size):
        tmp = img.resize((w, out_h), resample, box=(0, y0, w, y1))
        return tmp.resize(size, resample, box=(x0, 0, x1, out_h))
    tmp = img.resize((out_w, h), resample, box=(x0, 0, x1, h))
    return tmp.resize(size, resample, box=(0, y0, out_w, y1))


def resize_if_needed(img: Image.Image, size: tuple[int, int], resample: int) -> Image.Image:
    return img if img.size == size else resize(img, size, resample)
