"""Colour points from a layer of painted dots: what a host (GIMP's "Colour points" layer) hands over.

A user who cannot type coordinates paints small dots of the wanted colours on a transparent layer.
Each connected blob of painted pixels becomes one colour point at the blob's centroid with the
blob's mean colour, in the layer's pixel coordinates: the ``hints`` of ``Restorer.restore`` with
``colorize="points"``. Pure image math (arrays in, points out), so that every host gets the same
points from the same layer and the hosts only read pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PAINTED_ALPHA = 128
"""Alpha (0-255) from which a pixel counts as painted: a dot's anti-aliased rim counts where it is at
least half covered, faint halos and stray soft-brush pixels do not."""

CONNECTIVITY = np.ones((3, 3), bool)
"""8-connectivity: pixels touching at a corner belong to one dot (a diagonal brush stroke stays one blob)."""


def points_from_layer(rgba: np.ndarray) -> list[tuple[float, float, str]]:
    """``(H, W, 4)`` uint8 RGBA (non-premultiplied, as GIMP and PNG store it) -> ``[(x, y, "#rrggbb")]``.

    One point per connected blob of pixels with alpha >= :data:`PAINTED_ALPHA` (8-connected), at the
    mean position of its pixels (x from the left, y from the top, pixel centres at whole numbers) with
    the mean colour of its pixels, rounded. Points are ordered by the blob's first pixel in reading
    order (top row first), so the same layer always gives the same list. An empty layer gives [].
    """
    arr = np.asarray(rgba)
    if arr.ndim != 3 or arr.shape[2] != 4:
        raise ValueError(f"expected an (H, W, 4) RGBA array, got shape {arr.shape}")
    painted = arr[..., 3] >= PAINTED_ALPHA
    labels, n = ndimage.label(painted, structure=CONNECTIVITY)
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    ys, xs = np.mgrid[0:arr.shape[0], 0:arr.shape[1]]
    cx = ndimage.mean(xs.astype(np.float64), labels, index)
    cy = ndimage.mean(ys.astype(np.float64), labels, index)
    colours = [ndimage.mean(arr[..., c].astype(np.float64), labels, index) for c in range(3)]
    points = []
    for i in range(n):
        rgb = [int(np.clip(np.floor(colours[c][i] + 0.5), 0, 255)) for c in range(3)]
        points.append((round(float(cx[i]), 2), round(float(cy[i]), 2), "#{:02x}{:02x}{:02x}".format(*rgb)))
    return points  # ndimage.label numbers blobs in reading order of their first pixel
