"""Turning what the user painted in the image editor into the scratch mask the pipeline takes.

The editor hands back its layers at the size of its canvas, which is not always the photo's size: the
app shows large photos downscaled for painting, and a fixed or resized canvas letterboxes the photo.
These pure functions map layers back onto the photo at full resolution, so a stroke lands on the
same scratch whatever size it was painted at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from oldphoto.stages.resize import BILINEAR, NEAREST, resize

# Alpha (0-255) from which a painted pixel counts as damage. Half-covered anti-aliased stroke edges
# count, faint halos do not; a semi-transparent brush colour (alpha 0.8 = 204) still counts.
PAINT_THRESHOLD = 128

MASK_COLOR = (255, 0, 64)
"""Colour of the detected mask when it is put into the editor for correction (opaque, visible on
most photos and the same as the editor's brush, so corrections look like the detection)."""


def layer_coverage(layer: Any) -> np.ndarray:
    """One editor layer -> uint8 HxW coverage (255 = painted).

    Layers with alpha (the editor's RGBA strokes): the alpha channel, whatever the colour, because
    the colour under a transparent pixel is arbitrary. Layers without alpha, or whose alpha is opaque
    everywhere (an API client sending a black-and-white mask saved as RGBA): the brightest channel,
    white = damage.
    """
    if isinstance(layer, (str, Path)):
        with Image.open(layer) as im:
            layer = im.copy()
    if isinstance(layer, Image.Image):
        if layer.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in layer.info:
            layer = layer.convert("RGBA")
        elif layer.mode not in ("L", "RGB"):
            layer = layer.convert("L")
    arr = np.asarray(layer)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        raise ValueError(f"editor layers must be uint8 images, got dtype {arr.dtype}")
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        alpha = arr[:, :, -1]
        if alpha.min(initial=255) < 255:
            return alpha
        return arr[:, :, :-1].max(axis=2)  # opaque everywhere: a black-and-white mask
    if arr.ndim == 3 and arr.shape[2] in (1, 3):
        return arr.max(axis=2)
    raise ValueError(f"editor layers must be HxW, HxWx3 or HxWx4 images, got shape {arr.shape}")


def photo_box(canvas: tuple[int, int], photo: tuple[int, int]) -> tuple[float, float, float, float]:
    """Where a photo of size ``photo`` (W, H) sits on a canvas of size ``canvas`` (W, H).

    The editor scales the photo to fit and centres it (Gradio's ``fixed_canvas`` behaviour); when the
    aspect ratios match, which is the usual case, this is the whole canvas.
    """
    cw, ch = canvas
    pw, ph = photo
    scale = min(cw / pw, ch / ph)
    w, h = pw * scale, ph * scale
    x0, y0 = (cw - w) / 2, (ch - h) / 2
    return (x0, y0, x0 + w, y0 + h)


def layers_to_mask(layers: Sequence[Any], size: tuple[int, int]) -> np.ndarray | None:
    """Union of painted layers -> bool HxW mask at the photo's ``size`` (W, H); None if nothing painted.

    Coverage is resampled bilinearly and then thresholded, so a stroke painted on a small canvas
    becomes a smooth region at full resolution instead of blocky nearest-neighbour steps.
    """
    w, h = size
    out = np.zeros((h, w), dtype=bool)
    painted = False
    for layer in layers:
        if layer is None:
            continue
        cov = layer_coverage(layer)
        if not (cov >= PAINT_THRESHOLD).any():
            continue
        painted = True
        ch, cw = cov.shape
        if (cw, ch) == (w, h):
            out |= cov >= PAINT_THRESHOLD
            continue
        box = photo_box((cw, ch), (w, h))
        img = resize(Image.fromarray(cov, "L"), (w, h), BILINEAR, box=box)
        out |= np.asarray(img) >= PAINT_THRESHOLD
    return out if painted else None


def editor_to_mask(value: Mapping[str, Any] | None, size: tuple[int, int]) -> np.ndarray | None:
    """A ``gr.ImageEditor`` value (``{"background", "layers", "composite"}``) -> mask or None."""
    if not value:
        return None
    return layers_to_mask(value.get("layers") or [], size)


def mask_to_layer(
    mask: np.ndarray, canvas: tuple[int, int], color: tuple[int, int, int] = MASK_COLOR
) -> np.ndarray:
    """Bool mask (any size, the photo's aspect ratio) -> RGBA uint8 layer of ``canvas`` (W, H).

    Used to put the detected scratches into the editor so the user corrects them with brush and
    eraser; :func:`layers_to_mask` gives the same mask back (up to resampling).
    """
    cw, ch = canvas
    m = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    if m.size != (cw, ch):
        m = resize(m, (cw, ch), NEAREST)
    alpha = np.asarray(m)
    layer = np.zeros((ch, cw, 4), dtype=np.uint8)
    layer[..., :3] = color
    layer[..., 3] = alpha
    layer[alpha == 0, :3] = 0
    return layer


def mask_preview(mask: np.ndarray) -> Image.Image:
    """Bool mask -> black-and-white image (white = damage), how the pipeline and the CLI show masks."""
    return Image.fromarray(mask.astype(np.uint8) * 255, "L")
