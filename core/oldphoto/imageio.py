"""Reading user images into the RGB uint8 form the networks expect, with clear errors.

The official code does ``Image.open(f).convert("RGB")``. We keep that conversion for ordinary 8-bit
RGB/RGBA/L/P images (so results match the reference), and fix what it gets wrong for users:
EXIF orientation is applied, 16-bit and float images are scaled instead of clipped, CMYK goes
through Pillow's conversion, and unreadable files raise :class:`InputError` with the file named.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .stages.resize import NEAREST, resize

# Pillow's own decompression-bomb guard is ~179 MP; we refuse earlier with our own message so that a
# user learns the limit and what to do, and so that the memory estimate of the pipeline holds.
MAX_PIXELS = 64_000_000


def _name(src: object) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    return "the image"


def open_image(src: str | os.PathLike | bytes | io.BufferedIOBase) -> Image.Image:
    """Open and decode a file; every failure becomes an :class:`InputError`."""
    name = _name(src)
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise InputError(f"{name}: file not found.")
        if path.is_dir():
            raise InputError(f"{name}: is a folder, not an image file.")
    data = io.BytesIO(src) if isinstance(src, bytes) else src
    try:
        with Image.open(data) as img:  # type: ignore[arg-type]
            if img.width * img.height > MAX_PIXELS:
                raise InputError(
                    f"{name}: {img.width}x{img.height} is too large ({img.width * img.height / 1e6:.0f} MP); "
                    f"the limit is {MAX_PIXELS / 1e6:.0f} MP. Downscale the photo first."
                )
            img.load()
            return img.copy() if img.fp is None else _detached(img)
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name}: not a readable image ({exc.__class__.__name__}).") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: the image file is corrupt or truncated ({exc}).") from exc


def _detached(img: Image.Image) -> Image.Image:
    out = img.copy()
    out.info = dict(img.info)
    exif = img.getexif()
    if exif:
        out.info["exif"] = exif.tobytes()
    return out


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow image -> 8-bit RGB, the way a user expects it to look."""
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not lose the photo
        pass
    mode = img.mode
    if mode in ("RGB",):
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F":
            hi = 1.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else 255.0
        else:
            hi = 65535.0 if arr.size and float(arr.max()) > 255 else 255.0
        arr8 = np.clip(np.round(np.nan_to_num(arr) / hi * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "CMYK":
        return img.convert("RGB")
    if mode in ("RGBA", "LA", "P", "PA", "L", "1", "La", "RGBa", "RGBX", "YCbCr", "LAB", "HSV"):
        # Alpha is dropped without compositing, as the official code does (SPEC global 4.1).
        return img.convert("RGB")
    try:
        return img.convert("RGB")
    except Exception as exc:
        raise InputError(f"Unsupported image mode {mode!r}.") from exc


def load_rgb(src) -> Image.Image:
    """Path / bytes / PIL image / uint8 array -> RGB PIL image."""
    if isinstance(src, Image.Image):
        return to_rgb(src)
    if isinstance(src, np.ndarray):
        return array_to_rgb(src)
    return to_rgb(open_image(src))


def array_to_rgb(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InputError(f"Expected an HxW, HxWx3 or HxWx4 image array, got shape {arr.shape}.")
    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            arr = np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.floating):
            arr = np.clip(np.round(np.nan_to_num(arr) * 255.0), 0, 255).astype(np.uint8)
        else:
            raise InputError(f"Unsupported image array dtype {arr.dtype}; use uint8.")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(arr[:, :, :3]), "RGB")


def load_mask(src, size: tuple[int, int]) -> np.ndarray:
    """User mask (path, PIL, array; 0/255, 0/1 or bool) -> bool HxW at ``size`` = (W, H).

    A mask of another size is resized with nearest neighbour; a mask whose aspect ratio differs
    from the photo's by more than 1% is refused, since it cannot belong to it.
    """
    if isinstance(src, np.ndarray):
        arr = src
        if arr.ndim == 3:
            arr = arr[..., :3].max(axis=2) if arr.shape[2] >= 3 else arr[..., 0]
        if arr.ndim != 2:
            raise InputError(f"The mask must be a 2-D array, got shape {src.shape}.")
        m = arr.astype(bool) if arr.dtype == bool else arr > (0 if arr.max(initial=0) <= 1 else 127)
    else:
        img = src if isinstance(src, Image.Image) else open_image(src)
        if img.mode in ("RGBA", "LA", "PA"):
            # painted layers: the stroke is where alpha is set; an opaque black-and-white mask is
            # read by its white pixels
            opaque = np.asarray(img.getchannel("A")) > 127
            white = opaque & (np.asarray(img.convert("L")) > 127)
            m = white if white.any() else opaque
        else:
            m = np.asarray(img.convert("L")) > 127
    w, h = size
    if m.shape != (h, w):
        mh, mw = m.shape
        if abs(mw / mh - w / h) > 0.01 * (w / h):
            raise InputError(
                f"The mask is {mw}x{mh} but the photo is {w}x{h}; the mask must have the photo's size "
                "(or the same aspect ratio)."
            )
        m = resize_mask(m, size)
    return m


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask to ``size`` = (W, H): damage stays binary."""
    if mask.shape == (size[1], size[0]):
        return mask
    return np.asarray(resize(Image.fromarray(mask.astype(np.uint8) * 255), size, NEAREST)) > 127
