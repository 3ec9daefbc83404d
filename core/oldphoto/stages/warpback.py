"""Warp-back and blending of enhanced faces (face SPEC section d), pure numpy.

Reproduces the official stage-4 script on scikit-image 0.18 / OpenCV 4.4: per-channel histogram
matching against the truncated aligned crop, a bicubic inverse warp, the pasted square's nearest-
neighbour mask, a 25x25 erosion and a 25x25 Gaussian blur (sigma 4.1) for the alpha, and sequential
float64 blending in detection order. OpenCV is not needed: the two filters are re-implemented with
OpenCV's kernel formula and summation order so the alpha matches to the last bits.

To stay fast on big photos the warp, the mask and the filters run on the window a face can reach
(``face_window``); outside it the official warp and alpha are exactly 0, and the windows reproduce
the official values inside bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import align

ERODE_SIZE = 25
"""9x9 all-ones erosion, 3 iterations = one 25x25 square minimum (OpenCV enlarges the rect itself)."""
BLUR_SIZE = 25
"""``cv2.GaussianBlur(mask, (25, 25), 0)``; sigma 0 -> 0.3 * ((25 - 1) / 2 - 1) + 0.8 = 4.1."""


def histogram_luts(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """SPEC d.4: per-channel LUT[v] = smallest level r with cdf_ref[r] >= cdf_src[v] (256 unit bins).

    Integer cumulative counts are compared after scaling by the other image's pixel count, which is
    exact and equals the official normalised-cdf comparison (both counts are S^2 there).
    Returns uint8 (channels, 256).
    """
    if source.shape[-1] != reference.shape[-1]:
        raise ValueError("source and reference must have the same number of channels")
    n_src = source.shape[0] * source.shape[1]
    n_ref = reference.shape[0] * reference.shape[1]
    luts = np.empty((source.shape[-1], 256), np.uint8)
    for ch in range(source.shape[-1]):
        cdf_src = np.cumsum(np.bincount(source[..., ch].ravel(), minlength=256)).astype(np.int64) * n_ref
        cdf_ref = np.cumsum(np.bincount(reference[..., ch].ravel(), minlength=256)).astype(np.int64) * n_src
        luts[ch] = np.searchsorted(cdf_ref, cdf_src, side="left").clip(0, 255)
    return luts


def match_histograms(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each channel of ``source`` through its :func:`histogram_luts` table."""
    luts = histogram_luts(source, reference)
    out = np.empty_like(source)
    for ch in range(source.shape[-1]):
        out[..., ch] = luts[ch][source[..., ch]]
    return out


def _reach_window(matrix: np.ndarray, size: int, shape: tuple[int, int], margin: int) -> tuple[slice, slice]:
    """Photo window covering every pixel whose crop coordinates lie within ``margin`` px of the crop."""
    pts = np.array([[-margin, -margin, 1], [size + margin, -margin, 1],
                    [-margin, size + margin, 1], [size + margin, size + margin, 1]], dtype=np.float64).T
    xy = (np.asarray(matrix, dtype=np.float64) @ pts)[:2]
    x0 = max(int(math.floor(xy[0].min())) - 1, 0)
    x1 = min(int(math.ceil(xy[0].max())) + 2, shape[1])
    y0 = max(int(math.floor(xy[1].min())) - 1, 0)
    y1 = min(int(math.ceil(xy[1].max())) + 2, shape[0])
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def face_window(matrix: np.ndarray, size: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Photo window outside which pasting this face changes nothing (SPEC d, made local).

    The crop's reach (bicubic taps 2 px beyond the crop, nearest mask 0.5 px) grown by the erosion and
    blur reach (12 + 2 * 12 px). Non-zero mask pixels are then >= 24 px from every window edge that is
    not a photo edge, so a blur with reflected borders inside the window reads only zeros there, as
    the full-image blur does: the window gives the official values bit for bit.
    """
    rs, cs = _reach_window(matrix, size, shape, margin=3)
    m = ERODE_SIZE // 2 + 2 * (BLUR_SIZE // 2)
    r0, r1 = max(rs.start - m, 0), min(max(rs.stop, rs.start) + m, shape[0])
    c0, c1 = max(cs.start - m, 0), min(max(cs.stop, cs.start) + m, shape[1])
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def warp_back(
    face: np.ndarray, matrix: np.ndarray, photo_shape: tuple[int, int], window: tuple[slice, slice] | None = None
) -> np.ndarray:
    """SPEC d.5: bicubic warp of the S x S face with ``inverse`` (photo -> crop), clip rule of b.

    ``matrix`` is the crop->photo T; the warp samples with T^-1 (``np.linalg.inv``, as skimage's
    ``.inverse``). Float64 on the 0..255 scale, for the whole photo or only ``window``; 0 where the
    crop does not reach.
    """
    rs, cs = window if window is not None else (slice(0, photo_shape[0]), slice(0, photo_shape[1]))
    img = face.astype(np.float64)
    shape = (rs.stop - rs.start, cs.stop - cs.start)
    out = align.warp_bicubic(img, np.linalg.inv(matrix), shape, (rs.start, cs.start))
    return align.clip_like_skimage018(out, float(img.min()), float(img.max()))


def backward_mask(
    fwd_mask: np.ndarray, matrix: np.ndarray, photo_shape: tuple[int, int], window: tuple[slice, slice] | None = None
) -> np.ndarray:
    """SPEC d.6: nearest warp of the forward mask with T^-1 (0 outside the crop): the pasted square."""
    rs, cs = window if window is not None else (slice(0, photo_shape[0]), slice(0, photo_shape[1]))
    shape = (rs.stop - rs.start, cs.stop - cs.start)
    return align.warp_nearest(fwd_mask, np.linalg.inv(matrix), shape, (rs.start, cs.start)).astype(np.uint8)


def _min_filter_1d(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    r = size // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    p = np.pad(a, pad, constant_values=np.inf)  # OpenCV's erode border value: outside never erodes
    n = a.shape[axis]
    out = np.take(p, range(0, n), axis=axis)
    for k in range(1, size):
        np.minimum(out, np.take(p, range(k, k + n), axis=axis), out=out)
    return out


def erode(mask: np.ndarray, size: int = ERODE_SIZE) -> np.ndarray:
    """Square minimum filter, +inf outside (``cv2.erode`` with a 9x9 kernel, 3 iterations, for 25)."""
    return _min_filter_1d(_min_filter_1d(mask, size, 0), size, 1)


def gaussian_kernel(size: int = BLUR_SIZE, sigma: float = 0.0) -> np.ndarray:
    """``cv2.getGaussianKernel(size, sigma, CV_64F)`` with OpenCV's formula and rounding order."""
    if sigma <= 0:
        sigma = ((size - 1) * 0.5 - 1) * 0.3 + 0.8
    scale2x = -0.5 / (sigma * sigma)
    k = np.array([math.exp(scale2x * (i - (size - 1) * 0.5) ** 2) for i in range(size)], dtype=np.float64)
    total = 0.0
    for v in k:
        total += v
    return k * (1.0 / total)


def _reflect101(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    return np.pad(a, pad, mode="reflect")  # numpy's "reflect" = OpenCV BORDER_REFLECT_101


def gaussian_blur(img: np.ndarray, size: int = BLUR_SIZE) -> np.ndarray:
    """``cv2.GaussianBlur(img, (size, size), 0)`` on float64, BORDER_REFLECT_101.

    OpenCV filters rows first with a plain tap-by-tap sum, then columns with its symmetric column
    filter ``k0*c + sum_k k_k*(below_k + above_k)``; we keep both orders.
    """
    k = gaussian_kernel(size)
    r = size // 2
    p = _reflect101(img, r, 1)
    w = img.shape[1]
    rows = k[0] * p[:, 0:w]
    for i in range(1, size):
        rows += k[i] * p[:, i : i + w]
    q = _reflect101(rows, r, 0)
    h = img.shape[0]
    out = k[r] * q[r : r + h] + 0.0
    for i in range(1, r + 1):
        out += k[r + i] * (q[r + i : r + i + h] + q[r - i : r - i + h])
    return out


def blend_alpha(back_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SPEC d.7: (eroded mask on the 0..255 scale, alpha in [0, 1]) of a 0/1 backward mask, float64."""
    eroded = erode(back_mask.astype(np.float64) * 255.0)
    return eroded, gaussian_blur(eroded) / 255.0


def blend_into(current: np.ndarray, warped: np.ndarray, alpha: np.ndarray, window: tuple[slice, slice]) -> None:
    """SPEC d.7, in place: ``current = clip((warped*a + (1 - a)*current) / 255, 0, 1) * 255`` (float64).

    ``warped`` and ``alpha`` cover ``window``; outside it alpha is 0 and the formula reduces to the
    (not quite identity) ``clip(current / 255, 0, 1) * 255``, which is applied there in place.
    """
    a = alpha[..., None]
    im = warped * a + (1 - a) * current[window]
    im /= 255.0
    np.clip(im, 0.0, 1.0, out=im)
    im *= 255.0
    current /= 255.0
    np.clip(current, 0.0, 1.0, out=current)
    current *= 255.0
    current[window] = im


@dataclass
class PasteDebug:
    """Per-face intermediates of :func:`paste_faces`, full photo size (for the golden checks)."""

    aligned_reference: np.ndarray
    forward_mask: np.ndarray
    matched: np.ndarray
    warped: np.ndarray
    backward_mask: np.ndarray
    eroded: np.ndarray
    alpha: np.ndarray
    blended_after: np.ndarray
    extra: dict = field(default_factory=dict)


def _full(win: np.ndarray, window: tuple[slice, slice], shape: tuple[int, int], dtype) -> np.ndarray:
    out = np.zeros(tuple(shape) + win.shape[2:], dtype=dtype)
    out[window] = win
    return out


def paste_faces(
    photo: np.ndarray,
    faces: list[tuple[np.ndarray, np.ndarray]],
    *,
    debug: list[PasteDebug] | None = None,
    face_strength: float = 1.0,
) -> np.ndarray:
    """SPEC d: blend restored faces ``[(T crop->photo, restored S x S x 3 u8), ...]`` into ``photo``.

    References, crops and masks always come from the original photo; only the running float image
    accumulates, so later faces are blended over earlier ones. Returns the final uint8 image
    (``img_as_ubyte(current / 255)``). With no faces the photo is returned unchanged (a copy).
    Warp, mask and alpha are computed on :func:`face_window` only (same values, far less work).

    ``face_strength`` (not in the official code) scales each face's alpha after the blur: the
    feathered mask keeps its shape and only its height changes, so 0 leaves the photo as it is
    and 1 (the default, skipped) is the official blend to the bit.
    """
    if not faces:
        return photo.copy()
    current = photo.astype(np.float64)
    shape = photo.shape[:2]
    for matrix, restored in faces:
        size = restored.shape[0]
        ref = align.aligned_reference(photo, matrix, size)
        fwd = align.forward_mask(shape, matrix, size)
        matched = match_histograms(restored, ref)
        window = face_window(matrix, size, shape)
        warped = warp_back(matched, matrix, shape, window)
        back = backward_mask(fwd, matrix, shape, window)
        eroded, alpha = blend_alpha(back) if back.size else (back.astype(np.float64),) * 2
        if face_strength != 1.0:
            alpha = alpha * face_strength
        blend_into(current, warped, alpha, window)
        if debug is not None:
            debug.append(PasteDebug(
                ref, fwd, matched,
                _full(warped, window, shape, np.float64), _full(back, window, shape, np.uint8),
                _full(eroded, window, shape, np.float64), _full(alpha, window, shape, np.float64),
                current.copy(),
            ))
    return align.img_as_ubyte(current / 255.0)
