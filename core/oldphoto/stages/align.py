"""Face alignment (face SPEC section b): template, similarity fit and the crop warps.

Everything here is pure numpy and reproduces the official stage-2/stage-4 scripts as they ran on
scikit-image 0.18.3 (the only version the official blend code works with), bit for bit: the float32
template statistics inside the Umeyama fit, ``img_as_float``'s ``u8 * (1/255)``, skimage's bilinear /
bicubic / nearest kernels with a constant-0 border, and 0.18's clip rule after the warp.

Matrices map homogeneous (x = column, y = row, 1) column vectors; ``T`` maps crop -> photo.
"""

from __future__ import annotations

import numpy as np

TARGET_FACE_SCALE = 1.3
"""``target_face_scale`` of the official scripts: the template is shrunk about the crop centre."""

_TEMPLATE_512 = (196.0, 226.0, 316.0, 226.0, 256.0, 286.0, 220.0, 360.4, 292.0, 360.4)
"""The five reference points (eyes, nose, mouth corners; image-left first) in a 512-px frame."""


def template(size: int, scale: float = TARGET_FACE_SCALE) -> np.ndarray:
    """SPEC b: (5, 2) float32 template for an S x S crop, computed in float32 as the official code.

    float32 matters: the template's mean and variances enter the fit in float32 (see ``similarity``).
    """
    pts = np.array(_TEMPLATE_512, dtype=np.float32) / np.float32(256.0) - np.float32(1.0)
    pts = pts.reshape(5, 2)
    return (pts * np.float32(scale) + np.float32(1)) / np.float32(2) * np.float32(size)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama least-squares similarity mapping ``src`` onto ``dst`` (skimage 0.18 ``_umeyama``).

    Returns the 3x3 float64 matrix. ``src`` keeps its dtype for the mean, the centring and the
    variances (float32 for the template, as in the official run), while ``dst``, the cross-covariance,
    the SVD and the rest are float64. The variance sum is promoted to float64 explicitly because
    numpy >= 2 would otherwise keep ``1.0 / float32`` in float32 (numpy 1 promoted it).
    """
    src = np.asarray(src)
    dst = np.asarray(dst, dtype=np.float64)
    num, dim = src.shape
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_demean = src - src_mean
    dst_demean = dst - dst_mean
    a = dst_demean.T @ src_demean.astype(np.float64) / num
    d = np.ones((dim,), dtype=np.float64)
    if np.linalg.det(a) < 0:
        d[dim - 1] = -1
    t = np.eye(dim + 1, dtype=np.float64)
    u, s, v = np.linalg.svd(a)
    rank = np.linalg.matrix_rank(a)
    if rank == 0:
        return np.full_like(t, np.nan)
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(v) > 0:
            t[:dim, :dim] = u @ v
        else:
            keep = d[dim - 1]
            d[dim - 1] = -1
            t[:dim, :dim] = u @ np.diag(d) @ v
            d[dim - 1] = keep
    else:
        t[:dim, :dim] = u @ np.diag(d) @ v
    var_sum = np.float64(src_demean.var(axis=0).sum())
    scale = 1.0 / var_sum * (s @ d)
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean.astype(np.float64).T)
    t[:dim, :dim] *= scale
    return t


def crop_transform(landmarks: np.ndarray, size: int) -> np.ndarray:
    """SPEC b: 3x3 crop->photo similarity for five (x, y) landmarks (ints from dlib, or floats)."""
    return similarity(template(size), np.asarray(landmarks, dtype=np.float64).reshape(5, 2))


# --------------------------------------------------------------------------------------------------
# skimage-0.18 warps (constant border 0). ``matrix`` maps output (x, y) to input (x, y).


def _source_coords(matrix: np.ndarray, shape: tuple[int, int], origin: tuple[int, int] = (0, 0)):
    """Input (x, y) of every output pixel, evaluated like skimage's ``_transform_affine``."""
    rows, cols = shape
    r = np.arange(origin[0], origin[0] + rows, dtype=np.float64)[:, None]
    c = np.arange(origin[1], origin[1] + cols, dtype=np.float64)[None, :]
    m = np.asarray(matrix, dtype=np.float64)
    x = m[0, 0] * c + m[0, 1] * r + m[0, 2]
    y = m[1, 0] * c + m[1, 1] * r + m[1, 2]
    return x, y


def _pad_index(idx: np.ndarray, n: int, pad: int) -> np.ndarray:
    """Index into an array padded by ``pad`` zeros each side; anything outside maps to a zero."""
    j = idx + pad
    return np.where((idx < 0) | (idx >= n), 0, j)


def _padded(image: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(image, ((pad, pad), (pad, pad)) + ((0, 0),) * (image.ndim - 2))


def warp_bilinear(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Order-1 warp of a float64 H x W[ x C] image (skimage ``bilinear_interpolation``), no clipping.

    x0 = floor(x), x1 = ceil(x) and the taps outside the image read 0 (cval), exactly as skimage.
    """
    x, y = _source_coords(matrix, shape)
    h, w = image.shape[:2]
    p = _padded(image, 1)
    x0, y0 = np.floor(x), np.floor(y)
    x1, y1 = np.ceil(x), np.ceil(y)
    dc, dr = x - x0, y - y0
    c0 = _pad_index(x0.astype(np.int64), w, 1)
    c1 = _pad_index(x1.astype(np.int64), w, 1)
    r0 = _pad_index(y0.astype(np.int64), h, 1)
    r1 = _pad_index(y1.astype(np.int64), h, 1)
    if image.ndim == 3:
        dc, dr = dc[..., None], dr[..., None]
    top = (1 - dc) * p[r0, c0] + dc * p[r0, c1]
    bottom = (1 - dc) * p[r1, c0] + dc * p[r1, c1]
    return (1 - dr) * top + dr * bottom


def _cubic(x: np.ndarray, f0, f1, f2, f3):
    """skimage's Catmull-Rom (a = -0.5) in its Horner form; the operation order fixes the last bit."""
    return f1 + 0.5 * x * (f2 - f0 + x * (2.0 * f0 - 5.0 * f1 + 4.0 * f2 - f3 + x * (3.0 * (f1 - f2) + f3 - f0)))


def warp_bicubic(
    image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int], origin: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Order-3 warp (skimage ``bicubic_interpolation``): 4x4 taps floor-1..floor+2, x first, then y.

    ``origin`` (row, col) evaluates only a window of the output, so callers can skip the large part of
    a photo a face crop cannot reach.
    """
    x, y = _source_coords(matrix, shape, origin)
    h, w = image.shape[:2]
    pad = 2
    p = _padded(image, pad)
    xf, yf = np.floor(x), np.floor(y)
    xc, xr = x - xf, y - yf
    c0, r0 = xf.astype(np.int64) - 1, yf.astype(np.int64) - 1
    cols = [_pad_index(c0 + k, w, pad) for k in range(4)]
    if image.ndim == 3:
        xc, xr = xc[..., None], xr[..., None]
    rows_interp = []
    for k in range(4):
        rk = _pad_index(r0 + k, h, pad)
        rows_interp.append(_cubic(xc, *(p[rk, ck] for ck in cols)))
    return _cubic(xr, *rows_interp)


def warp_nearest(
    image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int], origin: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Order-0 warp: C ``round`` (half away from zero) of the source point, 0 outside; never clipped.

    ``origin`` (row, col) evaluates only a window of the output, as in :func:`warp_bicubic`.
    """
    x, y = _source_coords(matrix, shape, origin)
    h, w = image.shape[:2]
    c = _round_half_away(x)
    r = _round_half_away(y)
    p = _padded(image, 1)
    return p[_pad_index(r, h, 1), _pad_index(c, w, 1)]


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C ``round``: exact (no ``floor(v + 0.5)`` double rounding)."""
    t = np.trunc(v)
    frac = v - t  # exact for doubles
    return (t + np.where(np.abs(frac) >= 0.5, np.sign(v), 0.0)).astype(np.int64)


def clip_like_skimage018(output: np.ndarray, lo: float, hi: float, cval: float = 0.0) -> np.ndarray:
    """SPEC b clip rule of skimage 0.18 (after order >= 1 warps, constant mode).

    With lo <= cval <= hi the output is clipped to [lo, hi]; otherwise exact-cval outputs (fully
    outside the source) are remembered, everything is clipped and those are put back. This raises
    partially-outside pixels darker than the photo minimum to that minimum (a visible hard edge).
    """
    out = np.array(output, dtype=np.float64, copy=True)
    preserve = not (lo <= cval <= hi)
    if preserve:
        keep = out == cval
    np.clip(out, lo, hi, out=out)
    if preserve:
        out[keep] = cval
    return out


def crop_float(photo: np.ndarray, matrix: np.ndarray, size: int, *, preserve_range: bool) -> np.ndarray:
    """Bilinear S x S x 3 crop of a uint8 photo through crop->photo ``matrix``, clipped as skimage 0.18.

    ``preserve_range=False`` works on ``img_as_float`` = ``u8 * (1/255)`` (stage 2, result in [0, 1]);
    ``True`` on the 0..255 values (stage 4's histogram reference).
    """
    img = photo.astype(np.float64) if preserve_range else np.multiply(photo, 1.0 / 255, dtype=np.float64)
    out = warp_bilinear(img, matrix, (size, size))
    return clip_like_skimage018(out, float(img.min()), float(img.max()))


def img_as_ubyte(v: np.ndarray) -> np.ndarray:
    """skimage ``img_as_ubyte`` of a float image in [0, 1]: ``rint(v * 255)`` (half to even)."""
    return np.clip(np.rint(np.multiply(v, 255, dtype=np.float64)), 0, 255).astype(np.uint8)


def aligned_crop(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Stage-2 crop (the generator input): bilinear on [0, 1], clip rule, ``img_as_ubyte`` rounding."""
    return img_as_ubyte(crop_float(photo, matrix, size, preserve_range=False))


def aligned_reference(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Stage-4 histogram reference: the preserve-range crop truncated by ``astype(uint8)`` (not rounded)."""
    return crop_float(photo, matrix, size, preserve_range=True).astype(np.uint8)


def forward_mask(photo_shape: tuple[int, int], matrix: np.ndarray, size: int) -> np.ndarray:
    """S x S uint8 0/1: crop pixels whose nearest photo pixel exists (order-0 warp of all ones)."""
    ones = np.ones(photo_shape[:2], dtype=np.uint8)
    return warp_nearest(ones, matrix, (size, size)).astype(np.uint8)
