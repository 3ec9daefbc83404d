"""CIE Lab (D65, 2 degree observer) exactly as scikit-image computes it (``skimage.color`` 0.19-0.26).

Both guided colour models convert with scikit-image: Deep Exemplar (exemplar SPEC §3.1, §5.4) and
SIGGRAPH17 (siggraph17 SPEC §4.2, §6.2, §7.2). The formulas are a few lines of numpy, written here
instead of depending on scikit-image because (a) scikit-image changed them across versions (before
0.19 ``lab2rgb`` computed float32 input in float64 and handled negative Z differently), so pinning the
0.26 behaviour in our own code keeps results independent of what is installed, and (b) it would be a
large dependency for two functions. ``tests/test_guided_colour.py`` checks them against the golden
arrays made with scikit-image 0.26.

dtype rules follow scikit-image >= 0.19: integer input is scaled to float64 in [0, 1]; float32 stays
float32 (each step in float32, Python scalars being "weak" under NumPy 2), float64 stays float64.
"""

from __future__ import annotations

import numpy as np

XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
WHITE_D65 = (0.95047, 1.0, 1.08883)


def _as_float(rgb: np.ndarray) -> np.ndarray:
    """scikit-image's ``img_as_float`` for the types the models feed it (uint8 -> /255 in float64)."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
    if rgb.dtype in (np.float32, np.float64):
        return rgb.copy()
    raise TypeError(f"unsupported dtype {rgb.dtype}")


def rgb2lab(rgb: np.ndarray) -> np.ndarray:
    """``skimage.color.rgb2lab`` (sRGB -> XYZ -> Lab), channels last."""
    arr = _as_float(rgb)
    mask = arr > 0.04045
    arr[mask] = np.power((arr[mask] + 0.055) / 1.055, 2.4)
    arr[~mask] /= 12.92
    xyz = arr @ XYZ_FROM_RGB.T.astype(arr.dtype)
    xyz = xyz / np.asarray(WHITE_D65, dtype=xyz.dtype)
    mask = xyz > 0.008856
    xyz[mask] = np.cbrt(xyz[mask])
    xyz[~mask] = 7.787 * xyz[~mask] + 16.0 / 116.0
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    return np.stack([(116.0 * y) - 16.0, 500.0 * (x - y), 200.0 * (y - z)], axis=-1)


def lab2rgb(lab: np.ndarray) -> np.ndarray:
    """``skimage.color.lab2rgb``: negative Z clipped to 0, result clipped to [0, 1] (float in, same float out)."""
    lab = np.asarray(lab)
    if lab.dtype not in (np.float32, np.float64):
        lab = lab.astype(np.float64)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    y = (L + 16.0) / 116.0
    x = (a / 500.0) + y
    z = y - (b / 200.0)
    z = np.where(z < 0, np.zeros_like(z), z)
    out = np.stack([x, y, z], axis=-1)
    mask = out > 0.2068966
    out[mask] = np.power(out[mask], 3.0)
    out[~mask] = (out[~mask] - 16.0 / 116.0) / 7.787
    out *= np.asarray(WHITE_D65, dtype=out.dtype)
    arr = out @ RGB_FROM_XYZ.T.astype(out.dtype)
    mask = arr > 0.0031308
    arr[mask] = 1.055 * np.power(arr[mask], 1 / 2.4) - 0.055
    arr[~mask] *= 12.92
    np.clip(arr, 0, 1, out=arr)
    return arr
