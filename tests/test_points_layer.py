"""Colour points from a layer of painted dots (oldphoto.stages.points_layer): each blob -> one point."""

from __future__ import annotations

import numpy as np
import pytest

from oldphoto.stages.points_layer import points_from_layer


def _layer(w=40, h=30):
    return np.zeros((h, w, 4), np.uint8)


def test_each_blob_is_a_point_at_its_centroid_with_its_mean_colour():
    layer = _layer()
    layer[2:5, 3:6] = (200, 20, 40, 255)  # a 3x3 dot centred on (4, 3)
    layer[20:22, 30:34] = (10, 60, 220, 255)  # a 4x2 dot centred on (31.5, 20.5)
    layer[20, 30] = (14, 64, 224, 255)  # one lighter pixel moves the mean colour a little
    pts = points_from_layer(layer)
    assert pts == [(4.0, 3.0, "#c81428"), (31.5, 20.5, "#0b3ddd")]  # (7 * 10 + 14) / 8 = 10.5 -> 11


def test_faint_pixels_and_empty_layers():
    layer = _layer()
    assert points_from_layer(layer) == []
    layer[10, 10] = (255, 0, 0, 127)  # below half coverage: not painted
    assert points_from_layer(layer) == []
    layer[10, 10, 3] = 128
    assert points_from_layer(layer) == [(10.0, 10.0, "#ff0000")]


def test_diagonal_touch_is_one_blob_and_gaps_make_two():
    layer = _layer()
    layer[5, 5] = layer[6, 6] = (0, 255, 0, 255)  # corner to corner: one dot
    layer[5, 9] = (0, 0, 255, 255)  # a pixel apart: another dot
    assert points_from_layer(layer) == [(5.5, 5.5, "#00ff00"), (9.0, 5.0, "#0000ff")]


def test_mean_colour_rounds_half_up_and_shape_is_checked():
    layer = _layer()
    layer[0, 0] = (1, 0, 0, 255)
    layer[0, 1] = (2, 0, 0, 255)  # mean 1.5 -> 2
    assert points_from_layer(layer) == [(0.5, 0.0, "#020000")]
    with pytest.raises(ValueError, match="RGBA"):
        points_from_layer(np.zeros((4, 4, 3), np.uint8))
