"""Pixel bookkeeping of the GIMP plug-in (gimp_plugin/oldphoto_gimp/pixels.py), without GIMP.

Reference values are built with numpy, independently of the byte-slicing implementation.
"""

from __future__ import annotations

import numpy as np
import pytest

from oldphoto_gimp import pixels

RNG = np.random.default_rng(6)


@pytest.mark.parametrize(
    ("nick", "fmt", "size"),
    [
        ("u8-non-linear", "R'G'B'A u8", 1),
        ("u8-linear", "R'G'B'A u8", 1),
        ("u16-linear", "R'G'B'A u16", 2),
        ("u16-perceptual", "R'G'B'A u16", 2),
        ("u32-linear", "R'G'B'A u32", 4),
        ("half-non-linear", "R'G'B'A half", 2),
        ("float-linear", "R'G'B'A float", 4),
        ("double-perceptual", "R'G'B'A double", 8),
    ],
)
def test_native_format_per_precision(nick, fmt, size):
    assert pixels.native_rgba_format(nick) == fmt
    assert pixels.component_type(nick)[1] == size


def test_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="unknown GIMP precision"):
        pixels.component_type("u12-linear")


def test_rgba_to_rgb_and_back():
    rgba = RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    rgb = pixels.rgba_to_rgb(rgba.tobytes(), 7, 5)
    assert np.array_equal(np.frombuffer(rgb, np.uint8).reshape(5, 7, 3), rgba[..., :3])
    opaque = np.frombuffer(pixels.rgb_to_opaque_rgba(rgb, 7, 5), np.uint8).reshape(5, 7, 4)
    assert np.array_equal(opaque[..., :3], rgba[..., :3])
    assert (opaque[..., 3] == 255).all()


def test_wrong_buffer_size_is_an_error():
    with pytest.raises(ValueError, match="expected 140"):
        pixels.rgba_to_rgb(b"\0" * 139, 7, 5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.float16, np.float32, np.float64])
def test_splice_alpha_keeps_the_original_alpha_bit_exact(dtype):
    """The color of the restored layer with the alpha of the original, in the native type: no
    8-bit round trip for 16/32-bit alpha."""
    if np.issubdtype(dtype, np.floating):
        color = RNG.random((4, 6, 4)).astype(dtype)
        orig = RNG.random((4, 6, 4)).astype(dtype)
        orig[0, 0, 3] = np.asarray(1 / 3, dtype)  # not representable in 8 bits
    else:
        hi = np.iinfo(dtype).max
        color = RNG.integers(0, hi, (4, 6, 4), dtype=dtype, endpoint=True)
        orig = RNG.integers(0, hi, (4, 6, 4), dtype=dtype, endpoint=True)
    out = pixels.splice_alpha(color.tobytes(), orig.tobytes(), np.dtype(dtype).itemsize)
    got = np.frombuffer(out, dtype).reshape(4, 6, 4)
    assert np.array_equal(got[..., :3], color[..., :3])
    assert np.array_equal(got[..., 3], orig[..., 3])


def test_splice_alpha_checks_sizes():
    with pytest.raises(ValueError, match="alpha source"):
        pixels.splice_alpha(b"\0" * 8, b"\0" * 4, 1)
    with pytest.raises(ValueError, match="whole number"):
        pixels.splice_alpha(b"\0" * 6, b"\0" * 6, 1)


def _reference_mask(sel: np.ndarray, offsets, size) -> np.ndarray:
    ih, iw = sel.shape
    (ox, oy), (lw, lh) = offsets, size
    out = np.zeros((lh, lw), np.uint8)
    for y in range(lh):
        for x in range(lw):
            ix, iy = x + ox, y + oy
            if 0 <= ix < iw and 0 <= iy < ih and sel[iy, ix] >= 128:
                out[y, x] = 255
    return out


@pytest.mark.parametrize(
    ("offsets", "size"),
    [
        ((0, 0), (20, 15)),  # layer == canvas
        ((3, 4), (8, 6)),  # smaller layer inside the canvas
        ((-5, 2), (12, 9)),  # partly left of the canvas
        ((14, 10), (12, 9)),  # partly right of / below the canvas
        ((-3, -3), (30, 25)),  # larger than the canvas on every side
        ((40, 40), (5, 5)),  # entirely outside
    ],
)
def test_selection_to_layer_mask(offsets, size):
    sel = RNG.integers(0, 256, (15, 20), dtype=np.uint8)
    got = pixels.layer_mask_from_selection(sel.tobytes(), (20, 15), offsets, size)
    want = _reference_mask(sel, offsets, size)
    assert np.array_equal(np.frombuffer(got, np.uint8).reshape(size[1], size[0]), want)


@pytest.mark.parametrize(
    ("offsets", "size"),
    [((0, 0), (20, 15)), ((3, 4), (8, 6)), ((-5, 2), (12, 9)), ((14, 10), (12, 9)), ((-3, -3), (30, 25)),
     ((40, 40), (5, 5))],
)
def test_layer_mask_to_image_channel(offsets, size):
    """The "Scratch mask" channel: the layer's mask on the canvas, 0 where the layer is not."""
    mask = (RNG.integers(0, 2, (size[1], size[0])) * 255).astype(np.uint8)
    got = np.frombuffer(pixels.image_mask_from_layer_mask(mask.tobytes(), (20, 15), offsets, size), np.uint8)
    want = np.zeros((15, 20), np.uint8)
    ox, oy = offsets
    for y in range(size[1]):
        for x in range(size[0]):
            if 0 <= x + ox < 20 and 0 <= y + oy < 15:
                want[y + oy, x + ox] = mask[y, x]
    assert np.array_equal(got.reshape(15, 20), want)
    # and back: the selection of that channel is the layer's mask where the layer is on the canvas
    back = np.frombuffer(pixels.layer_mask_from_selection(got.tobytes(), (20, 15), offsets, size), np.uint8)
    assert np.array_equal(back.reshape(size[1], size[0]), _reference_mask(want, offsets, size))


def test_feathered_selection_counts_from_half():
    sel = np.array([[0, 127, 128, 255]], np.uint8)
    got = pixels.layer_mask_from_selection(sel.tobytes(), (4, 1), (0, 0), (4, 1))
    assert list(got) == [0, 0, 255, 255]


def test_mask_is_empty():
    assert pixels.mask_is_empty(bytes(10))
    assert not pixels.mask_is_empty(bytes(9) + b"\xff")
