"""Pixel bookkeeping for the GIMP plug-in, in pure Python (stdlib only).

Why a separate module: GIMP's own Python has no numpy and cannot see the oldphoto environment, and
these rules (which babl format matches an image precision, how the layer's alpha survives, how the
image-sized selection becomes a layer-sized damage mask) must be unit-testable without GIMP. Every
function works on ``bytes`` with C-speed slicing, never on per-pixel Python loops, so a 24 MP layer
stays fast. ``oldphoto gimp install`` copies this file next to the plug-in as ``oldphoto_pixels.py``.

Conventions: interleaved, row-major, top-left origin; ``R'G'B'`` means sRGB-encoded (perceptual)
values, which is what the networks expect; alpha is straight (not premultiplied), as in babl.
"""

from __future__ import annotations

# GIMP precision nicks look like "u16-linear", "float-non-linear", "half-perceptual".
# Component type -> (babl type name, bytes per component). Alpha is linear in every babl format, so
# reading and writing it in the image's own component type keeps it bit-exact at any precision.
_COMPONENTS = {
    "u8": ("u8", 1),
    "u16": ("u16", 2),
    "u32": ("u32", 4),
    "half": ("half", 2),
    "float": ("float", 4),
    "double": ("double", 8),
}

NETWORK_RGB = "R'G'B' u8"
"""What the worker receives and returns: 8-bit sRGB without alpha."""
READ_RGBA = "R'G'B'A u8"
"""How the plug-in reads the layer: babl converts any precision, gray and linear light to this."""
SELECTION = "Y u8"
"""The selection channel as one byte per pixel (0 = unselected, 255 = fully selected)."""


def component_type(precision_nick: str) -> tuple[str, int]:
    """Babl component type and its size in bytes for a ``Gimp.Precision`` value nick."""
    kind = precision_nick.split("-", 1)[0].lower()
    try:
        return _COMPONENTS[kind]
    except KeyError:
        raise ValueError(f"unknown GIMP precision {precision_nick!r}") from None


def native_rgba_format(precision_nick: str) -> str:
    """The babl RGBA format in the image's own component type (e.g. ``R'G'B'A u16``)."""
    return f"R'G'B'A {component_type(precision_nick)[0]}"


def rgba_to_rgb(rgba: bytes, width: int, height: int) -> bytes:
    """Drop alpha: the networks see the color as stored, like the official ``convert("RGB")``."""
    _check(rgba, width * height * 4, "RGBA")
    out = bytearray(width * height * 3)
    for c in range(3):
        out[c::3] = rgba[c::4]
    return bytes(out)


def rgb_to_opaque_rgba(rgb: bytes, width: int, height: int) -> bytes:
    """Restored RGB with alpha 255, to be written first and then given the original's alpha."""
    _check(rgb, width * height * 3, "RGB")
    out = bytearray(b"\xff" * (width * height * 4))
    for c in range(3):
        out[c::4] = rgb[c::3]
    return bytes(out)


def splice_alpha(color: bytes, alpha_from: bytes, bytes_per_component: int) -> bytes:
    """Color channels of ``color`` with the alpha channel of ``alpha_from`` (both RGBA, same type).

    Copying the alpha *bytes* instead of converting values is what keeps the original alpha exact in
    16-bit, 32-bit and float images, where an 8-bit round trip would quantize it.
    """
    if len(color) != len(alpha_from):
        raise ValueError(f"color has {len(color)} bytes but alpha source has {len(alpha_from)}")
    bpp = 4 * bytes_per_component
    if len(color) % bpp:
        raise ValueError(f"{len(color)} bytes is not a whole number of {bpp}-byte pixels")
    out = bytearray(color)
    first = 3 * bytes_per_component
    for k in range(first, bpp):
        out[k::bpp] = alpha_from[k::bpp]
    return bytes(out)


def layer_mask_from_selection(
    selection: bytes,
    image_size: tuple[int, int],
    layer_offsets: tuple[int, int],
    layer_size: tuple[int, int],
    threshold: int = 128,
) -> bytes:
    """The image-sized selection cut to the layer's rectangle: one byte per layer pixel, 0 or 255.

    The layer may be offset, smaller than or partly outside the canvas; its pixels outside the
    canvas cannot be selected and get 0. Feathered selections count as damage from ``threshold``
    (half selected) up, since the networks take a binary mask.
    """
    iw, ih = image_size
    ox, oy = layer_offsets
    lw, lh = layer_size
    _check(selection, iw * ih, "selection")
    binar = bytes(0 if v < threshold else 255 for v in range(256))
    out = bytearray(lw * lh)
    x0, x1 = max(ox, 0), min(ox + lw, iw)
    y0, y1 = max(oy, 0), min(oy + lh, ih)
    if x0 >= x1 or y0 >= y1:
        return bytes(out)
    n = x1 - x0
    for y in range(y0, y1):
        src = y * iw + x0
        dst = (y - oy) * lw + (x0 - ox)
        out[dst:dst + n] = selection[src:src + n].translate(binar)
    return bytes(out)


def mask_is_empty(mask: bytes) -> bool:
    return not mask.strip(b"\x00")


def _check(data: bytes, expected: int, what: str) -> None:
    if len(data) != expected:
        raise ValueError(f"{what} buffer has {len(data)} bytes, expected {expected}")


def image_mask_from_layer_mask(
    mask: bytes,
    image_size: tuple[int, int],
    layer_offsets: tuple[int, int],
    layer_size: tuple[int, int],
) -> bytes:
    """A layer-sized 0/255 mask placed on the image's canvas (GIMP channels are image-sized).

    The inverse of :func:`layer_mask_from_selection`: the layer may be offset, smaller than or partly
    outside the canvas; canvas pixels the layer does not cover get 0, layer pixels off the canvas are
    dropped.
    """
    iw, ih = image_size
    ox, oy = layer_offsets
    lw, lh = layer_size
    _check(mask, lw * lh, "mask")
    out = bytearray(iw * ih)
    x0, x1 = max(ox, 0), min(ox + lw, iw)
    y0, y1 = max(oy, 0), min(oy + lh, ih)
    if x0 >= x1 or y0 >= y1:
        return bytes(out)
    n = x1 - x0
    for y in range(y0, y1):
        src = (y - oy) * lw + (x0 - ox)
        dst = y * iw + x0
        out[dst:dst + n] = mask[src:src + n]
    return bytes(out)
