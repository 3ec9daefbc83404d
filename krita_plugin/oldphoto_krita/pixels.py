"""Pixel bookkeeping for the Krita plug-in, in pure Python on ``bytes`` (no numpy in Krita's Python).

Why a module of its own: these rules (Krita's channel order, where alpha lives at every bit depth,
how a selection becomes a binary damage mask, which rectangle is restored) must be unit-testable
without Krita. Slices run at C speed; there are no per-pixel Python loops.

Krita's ``Node.pixelData`` is interleaved, row-major, with the channels of the colour model in
Krita's order: ``B G R A`` for RGBA at every depth, ``G A`` for GRAYA, ``C M Y K A``, ``L a b A``;
alpha is always the last channel.
"""

from __future__ import annotations

SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"
"""Krita's built-in sRGB profile: the networks see and return 8-bit sRGB."""
CHANNELS = {"RGBA": 4, "GRAYA": 2, "CMYKA": 5, "LABA": 4, "XYZA": 4, "YCbCrA": 4}
"""Channels (alpha included) of Krita's colour models."""
MODELS = ("RGBA", "GRAYA")
"""The colour models the plug-in restores. Krita's conversions from CMYK and Lab to 8-bit sRGB and back
are not faithful (tens of levels off on a round trip, measured in Krita 5.1), so those are refused
with a message instead of silently shifting the colours of the whole photo."""
DEPTH_BYTES = {"U8": 1, "U16": 2, "F16": 2, "F32": 4, "F64": 8}
"""Bytes per channel of Krita's colour depths."""
THRESHOLD = 128
"""A feathered selection counts as damage from half selected up (the networks take a binary mask)."""


def is_network_format(model: str, depth: str, profile: str) -> bool:
    """Whether a layer's pixels can go to the worker as they are (8-bit sRGB), without conversion."""
    return model == "RGBA" and depth == "U8" and profile == SRGB_PROFILE


def pixel_size(model: str, depth: str) -> tuple[int, int]:
    """(channels, bytes per channel) of a colour space; ValueError names one Krita cannot give us."""
    try:
        return CHANNELS[model], DEPTH_BYTES[depth]
    except KeyError:
        raise ValueError(f"unsupported colour space {model}/{depth}") from None


def bgra_to_rgb(bgra: bytes, width: int, height: int) -> bytes:
    """Krita's 8-bit ``B G R A`` to the networks' ``R G B`` (alpha dropped: the networks see the
    colour as stored, like the official ``convert("RGB")``)."""
    _check(bgra, width * height * 4, "BGRA")
    out = bytearray(width * height * 3)
    out[0::3] = bgra[2::4]
    out[1::3] = bgra[1::4]
    out[2::3] = bgra[0::4]
    return bytes(out)


def bgra_to_rgba(bgra: bytes) -> bytes:
    """Krita's 8-bit ``B G R A`` to ``R G B A`` (a "Colour points" layer as the worker reads it)."""
    _check(bgra, len(bgra) - len(bgra) % 4, "BGRA")
    out = bytearray(bgra)
    out[0::4] = bgra[2::4]
    out[2::4] = bgra[0::4]
    return bytes(out)


def rgb_to_bgra(rgb: bytes, alpha: bytes, width: int, height: int) -> bytes:
    """The restored ``R G B`` with one alpha byte per pixel, in Krita's 8-bit ``B G R A``."""
    _check(rgb, width * height * 3, "RGB")
    _check(alpha, width * height, "alpha")
    out = bytearray(width * height * 4)
    out[0::4] = rgb[2::3]
    out[1::4] = rgb[1::3]
    out[2::4] = rgb[0::3]
    out[3::4] = alpha
    return bytes(out)


def alpha_u8(bgra: bytes) -> bytes:
    """The alpha bytes of 8-bit BGRA pixels."""
    return bytes(bgra[3::4])


def splice_alpha(color: bytes, alpha_from: bytes, channels: int, bytes_per_channel: int) -> bytes:
    """``color``'s pixels with the alpha channel (the last one) of ``alpha_from``, same colour space.

    Copying alpha *bytes* keeps the original's alpha exact in 16-bit and float layers, where the
    8-bit detour through the networks would quantize it.
    """
    if len(color) != len(alpha_from):
        raise ValueError(f"color has {len(color)} bytes but alpha source has {len(alpha_from)}")
    bpp = channels * bytes_per_channel
    if len(color) % bpp:
        raise ValueError(f"{len(color)} bytes is not a whole number of {bpp}-byte pixels")
    out = bytearray(color)
    for k in range((channels - 1) * bytes_per_channel, bpp):
        out[k::bpp] = alpha_from[k::bpp]
    return bytes(out)


def keep_alpha_where(data: bytes, mask: bytes, channels: int, bytes_per_channel: int) -> bytes:
    """``data`` with alpha zeroed where ``mask`` is 0 (kept where 255): a layer that shows only the
    masked pixels. Zero bytes are 0 in every depth, float included; the AND runs on big integers at
    C speed instead of a per-pixel loop."""
    bpp = channels * bytes_per_channel
    n = len(mask)
    if len(data) != n * bpp:
        raise ValueError(f"{len(data)} bytes of pixels for a mask of {n} pixels")
    out = bytearray(data)
    m = int.from_bytes(mask, "little")
    for k in range((channels - 1) * bytes_per_channel, bpp):
        out[k::bpp] = (int.from_bytes(data[k::bpp], "little") & m).to_bytes(n, "little")
    return bytes(out)


def binary_mask(selection: bytes, threshold: int = THRESHOLD) -> bytes:
    """A selection's bytes (0..255 per pixel) as a damage mask of 0 / 255."""
    return selection.translate(bytes(0 if v < threshold else 255 for v in range(256)))


def mask_is_empty(mask: bytes) -> bool:
    return not mask.strip(b"\x00")


def intersect(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """The overlap of two ``(x, y, w, h)`` rectangles, or None when they do not overlap."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _check(data: bytes, expected: int, what: str) -> None:
    if len(data) != expected:
        raise ValueError(f"{what} buffer has {len(data)} bytes, expected {expected}")
