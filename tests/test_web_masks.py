"""Editor layers -> full-size scratch mask (oldphoto_gradio.masks): the web demo's only image math."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from oldphoto_gradio.masks import (
    PAINT_THRESHOLD,
    editor_to_mask,
    layer_coverage,
    layers_to_mask,
    mask_to_layer,
    photo_box,
)


def stroke_layer(size: tuple[int, int], box: tuple[int, int, int, int], alpha: int = 255,
                 color: tuple[int, int, int] = (255, 0, 64)) -> np.ndarray:
    """An RGBA layer like the editor's: transparent, one painted rectangle."""
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle(box, fill=(*color, alpha))
    return np.asarray(img)


def test_same_size_layer_is_taken_pixel_for_pixel():
    layer = stroke_layer((40, 30), (5, 6, 14, 9))
    mask = layers_to_mask([layer], (40, 30))
    assert mask.shape == (30, 40) and mask.dtype == bool
    expected = np.zeros((30, 40), bool)
    expected[6:10, 5:15] = True
    np.testing.assert_array_equal(mask, expected)


def test_nothing_painted_gives_none():
    assert layers_to_mask([stroke_layer((20, 10), (0, 0, 5, 5), alpha=0)], (20, 10)) is None
    assert layers_to_mask([], (20, 10)) is None
    assert editor_to_mask(None, (20, 10)) is None
    assert editor_to_mask({"background": None, "layers": [], "composite": None}, (20, 10)) is None


def test_transparency_decides_not_colour():
    """Colour under a transparent pixel is arbitrary (the canvas may leave anything there)."""
    layer = np.zeros((10, 10, 4), np.uint8)
    layer[..., :3] = 255  # white everywhere ...
    layer[2:4, 2:4, 3] = 255  # ... but painted only here
    layer[6:8, 6:8, 3] = PAINT_THRESHOLD - 1  # faint halo: not damage
    layer[0, 9, 3] = PAINT_THRESHOLD  # half-covered stroke edge: damage
    black = stroke_layer((10, 10), (5, 0, 6, 1), color=(0, 0, 0))  # a black stroke still counts
    mask = layers_to_mask([layer, black], (10, 10))
    assert mask[2:4, 2:4].all()
    assert not mask[6:8, 6:8].any()
    assert mask[0, 9]
    assert mask[0:2, 5:7].all()
    assert mask.sum() == 4 + 1 + 4


def test_opaque_black_and_white_mask_saved_with_alpha_uses_white():
    """An API client's mask saved as RGBA (opaque everywhere) must not mean "all damaged"."""
    layer = np.zeros((10, 10, 4), np.uint8)
    layer[..., 3] = 255
    layer[3:5, 3:5, :3] = 255
    assert layers_to_mask([layer], (10, 10)).sum() == 4
    assert layers_to_mask([Image.fromarray(layer, "RGBA")], (10, 10)).sum() == 4
    assert layers_to_mask([Image.fromarray(layer[..., 0], "L").convert("LA")], (10, 10)).sum() == 4


def test_semi_transparent_brush_counts():
    mask = layers_to_mask([stroke_layer((8, 8), (1, 1, 2, 2), alpha=204)], (8, 8))
    assert mask.sum() == 4


def test_layers_without_alpha_use_white_as_damage():
    grey = np.zeros((6, 6), np.uint8)
    grey[1, 1] = 255
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[4, 4] = (255, 255, 255)
    mask = layers_to_mask([grey, rgb, Image.fromarray(grey).convert("1")], (6, 6))
    assert mask.sum() == 2 and mask[1, 1] and mask[4, 4]
    assert layer_coverage(np.array([[True, False]])).tolist() == [[255, 0]]


def test_downscaled_canvas_maps_strokes_to_full_resolution():
    """The editor shows big photos downscaled; a stroke must land on the same place at full size."""
    canvas = stroke_layer((100, 75), (20, 30, 59, 39))  # x 20..59, y 30..39 at 1/4 scale
    mask = layers_to_mask([canvas], (400, 300))
    assert mask.shape == (300, 400)
    ys, xs = np.nonzero(mask)
    assert abs(xs.min() - 80) <= 2 and abs(xs.max() - 239) <= 2
    assert abs(ys.min() - 120) <= 2 and abs(ys.max() - 159) <= 2
    # smooth (bilinear + threshold), and about the right area: 160 x 40 px
    assert abs(int(mask.sum()) - 160 * 40) < 0.05 * 160 * 40


def test_upscaled_canvas_maps_back_down():
    canvas = stroke_layer((800, 600), (0, 0, 399, 599))  # left half
    mask = layers_to_mask([canvas], (200, 150))
    assert mask[:, :99].all() and not mask[:, 101:].any()


def test_letterboxed_canvas_ignores_the_margins():
    """A fixed canvas shows the photo fitted and centred; paint outside the photo is dropped."""
    photo = (200, 100)  # wide photo on a square canvas: bands above and below
    assert photo_box((300, 300), photo) == (0.0, 75.0, 300.0, 225.0)
    layer = np.zeros((300, 300, 4), np.uint8)
    layer[0:75, :, 3] = 255  # paint in the top band only
    assert layers_to_mask([layer], photo) is not None  # something painted ...
    assert not layers_to_mask([layer], photo).any()  # ... but not on the photo
    layer[75:150, 0:150, 3] = 255  # top-left quarter of the photo
    mask = layers_to_mask([layer], photo)
    assert mask[:50, :100].all() and not mask[51:, :].any() and not mask[:, 101:].any()


def test_several_layers_are_united_and_sizes_may_differ():
    a = stroke_layer((50, 50), (0, 0, 9, 9))
    b = stroke_layer((100, 100), (80, 80, 99, 99))
    mask = editor_to_mask({"background": None, "layers": [a, None, b], "composite": None}, (50, 50))
    assert mask[:10, :10].all() and mask[40:, 40:].all() and mask.sum() == 200


def test_layers_from_files_and_pil(tmp_path):
    path = tmp_path / "layer.png"
    Image.fromarray(stroke_layer((10, 10), (0, 0, 1, 1))).save(path)
    assert layers_to_mask([str(path)], (10, 10)).sum() == 4
    assert layers_to_mask([Image.open(path)], (10, 10)).sum() == 4


def test_bad_layers_are_refused():
    with pytest.raises(ValueError):
        layer_coverage(np.zeros((4, 4, 4), np.float32))
    with pytest.raises(ValueError):
        layer_coverage(np.zeros((4, 4, 5), np.uint8))


def test_mask_to_layer_round_trip():
    mask = np.zeros((30, 40), bool)
    mask[3:9, 10:30] = True
    layer = mask_to_layer(mask, (80, 60))
    assert layer.shape == (60, 80, 4) and layer.dtype == np.uint8
    assert (layer[..., 3][layer[..., 3] > 0] == 255).all()
    np.testing.assert_array_equal(layers_to_mask([layer], (40, 30)), mask)
