"""Automatic colourisation (DDColor), pre- and post-processing as pure functions (colorize SPEC §3, §5).

The official pipeline (``ddcolor/pipeline.py``) works on a float BGR copy of the whole photo: its
Lab lightness at full size, a bilinear ``cv2.resize`` to S x S, the grey RGB network input from the
resized lightness, then the network's ab upsampled by torch's legacy "nearest" rule and joined to the
full-size lightness, back to BGR with OpenCV. OpenCV's float Lab conversions are not the textbook
formulas (SPEC §3: fixed-point tables, a/b in 1/64 steps), so they are used here too
(``opencv-contrib-python-headless``; ``tests/test_colorize.py`` pins the numbers we rely on).

Memory: everything after the network is per pixel, so :func:`compose` runs in row strips of
``STRIP_ROWS`` (bit-identical to one pass: cvtColor, the index gather and the rounding have no
neighbourhood) and never holds a full-size float copy; the only full-size float array is the
``cv2.resize`` input of :func:`network_input` (12 bytes per pixel, freed before the network runs).
Photos are RGB uint8 arrays throughout (``COLOR_RGB2Lab`` / ``COLOR_Lab2RGB`` are the BGR
conversions with the channels named the other way round).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

INPUT_SIZE = 512
"""The official input size (``scripts/infer.py --input_size``)."""
MODELS = {
    "modelscope": "ddcolor_modelscope",
    "paper": "ddcolor_paper",
    "artistic": "ddcolor_artistic",
    "tiny": "ddcolor_paper_tiny",
}
"""``colorize_model`` value -> weights component (MODEL_ZOO.md; ``modelscope`` is the official default)."""
DEFAULT_MODEL = "modelscope"
STRIP_ROWS = 256
"""Rows per post-processing strip: 256 x 6000 px is ~18 MB of float work space."""
_LUT = (np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
"""``(img / 255.0).astype(float32)`` of the official code, for every uint8 code (one gather, no float64 copy)."""


@dataclass(frozen=True)
class ColorPrediction:
    """What the network predicted for one photo: all a re-blend needs besides the photo itself."""

    model: str
    """``colorize_model`` value ("modelscope", "paper", "artistic", "tiny")."""
    ab: np.ndarray
    """(2, S, S) float32: Lab a and b at the network's size, unbounded."""


def to_float(rgb: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 -> float32 in [0, 1], exactly ``(img / 255.0).astype(np.float32)``."""
    return _LUT[rgb]


def network_input(rgb: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """(1, 3, S, S) float32 grey RGB the network sees (SPEC §3 steps 1-6)."""
    resized = cv2.resize(to_float(rgb), (size, size))  # default INTER_LINEAR, aspect ratio not kept
    lab = cv2.cvtColor(resized, cv2.COLOR_RGB2Lab)
    lab[:, :, 1:] = 0
    grey = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.ascontiguousarray(grey.transpose(2, 0, 1)[None])


def nearest_indices(src: int, out: int) -> np.ndarray:
    """torch's legacy ``F.interpolate(mode="nearest")`` source indices: float32 scale and product (SPEC §5.8)."""
    scale = np.float32(src) / np.float32(out)
    idx = np.floor(np.arange(out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, src - 1)


def upsample_ab(ab: np.ndarray, height: int, width: int) -> np.ndarray:
    """(2, S, S) -> (H, W, 2) float32 by the official nearest rule (used whole only by refcheck)."""
    rows = nearest_indices(ab.shape[1], height)
    cols = nearest_indices(ab.shape[2], width)
    return np.ascontiguousarray(ab[:, rows][:, :, cols].transpose(1, 2, 0))


def lightness(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 Lab L of the photo (SPEC §3 step 2), strip by strip."""
    out = np.empty(rgb.shape[:2], np.float32)
    for r0 in range(0, rgb.shape[0], STRIP_ROWS):
        out[r0 : r0 + STRIP_ROWS] = cv2.cvtColor(to_float(rgb[r0 : r0 + STRIP_ROWS]), cv2.COLOR_RGB2Lab)[:, :, 0]
    return out


def compose(
    rgb: np.ndarray,
    ab: np.ndarray,
    *,
    color_strength: float = 1.0,
    tick: Callable[[float], None] | None = None,
) -> np.ndarray:
    """The colour photo: the photo's own full-size L with the upsampled ab, uint8 RGB (SPEC §5 steps 8-11).

    ``color_strength`` scales a and b (float32) before the conversion; 1 skips the multiplication
    (bit-identical to the official output), 0 gives the grey photo: the lightness with a = b = 0,
    whose three channels are then made equal (OpenCV's Lab->RGB leaves them up to ~1e-6 apart, which
    can round to different levels). ``tick(fraction)`` is called between strips (progress, cancel).
    """
    h, w = rgb.shape[:2]
    rows = nearest_indices(ab.shape[1], h)
    cols = nearest_indices(ab.shape[2], w)
    ab_cols = np.ascontiguousarray(ab[:, :, cols].transpose(1, 2, 0))  # (S, W, 2): one gather per strip left
    if color_strength != 1.0:
        ab_cols = ab_cols * np.float32(color_strength)
    out = np.empty((h, w, 3), np.uint8)
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(h, r0 + STRIP_ROWS)
        lab = cv2.cvtColor(to_float(rgb[r0:r1]), cv2.COLOR_RGB2Lab)
        lab[:, :, 1:] = ab_cols[rows[r0:r1]]
        res = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        res *= np.float32(255.0)
        strip = np.round(res).astype(np.uint8)
        if color_strength == 0.0:
            strip[:, :, 0] = strip[:, :, 1]
            strip[:, :, 2] = strip[:, :, 1]
        out[r0:r1] = strip
        if tick is not None:
            tick(r1 / h)
    return out


def is_grey(image) -> bool:
    """True when a photo has no colour of its own: grey, or toned in one hue (sepia, cyanotype).

    For surfaces that offer "only if the photo is grey". Measured on a copy of at most 256 px in
    OpenCV's Lab: a toned print's chroma (a, b) lies along one direction (its hue; the amount
    follows the lightness), so the photo counts as monochrome when the spread across that direction
    is below ``TONED_ACROSS`` and along it below ``TONED_ALONG`` (standard deviations, Lab units),
    whatever the tint's mean; colour photos spread in both (the test photos: 5-15 across).
    """
    from PIL import Image

    from ..imageio import load_rgb

    if isinstance(image, Image.Image) and image.mode in ("L", "LA", "1", "I", "I;16", "F"):
        return True
    img = load_rgb(image)
    img.thumbnail((256, 256))
    arr = np.asarray(img)
    if arr.size == 0:
        return True
    if np.array_equal(arr[:, :, 0], arr[:, :, 1]) and np.array_equal(arr[:, :, 1], arr[:, :, 2]):
        return True
    lab = cv2.cvtColor(to_float(arr), cv2.COLOR_RGB2Lab)
    ab = lab[:, :, 1:].reshape(-1, 2).astype(np.float64)
    spread = np.sqrt(np.maximum(np.linalg.eigvalsh(np.cov(ab, rowvar=False)), 0.0))  # ascending
    return bool(spread[0] < TONED_ACROSS and spread[1] < TONED_ALONG)


TONED_ACROSS = 2.0
TONED_ALONG = 12.0


def check_model(colorize_model: object) -> str:
    """The weights component of a ``colorize_model`` value; a one-line InputError otherwise."""
    from ..errors import InputError

    if colorize_model not in MODELS:
        raise InputError(f"colorize_model must be one of {', '.join(MODELS)} (got {colorize_model!r}).")
    return MODELS[colorize_model]  # type: ignore[index]


def predict(net, rgb: np.ndarray, *, size: int = INPUT_SIZE, device=None) -> np.ndarray:
    """Run DDColor on a photo: (2, S, S) float32 ab (the caller holds torch.inference_mode)."""
    import torch

    x = torch.from_numpy(network_input(rgb, size))
    if device is not None:
        x = x.to(device)
    ab = net(x)
    return ab[0].float().cpu().numpy()


def colorize_array(net, rgb: np.ndarray, *, size: int = INPUT_SIZE, color_strength: float = 1.0,
                   device=None) -> tuple[np.ndarray, np.ndarray]:
    """The whole official pipeline on an RGB uint8 array: (colour RGB uint8, ab at S x S)."""
    ab = predict(net, rgb, size=size, device=device)
    return compose(rgb, ab, color_strength=color_strength), ab
