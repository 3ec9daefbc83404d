"""User images of every common kind load as the RGB the user sees, or fail with a clear message."""

import io

import numpy as np
import pytest
from PIL import Image

from oldphoto.errors import InputError
from oldphoto.imageio import load_mask, load_rgb


def _png_bytes(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_rgba_drops_alpha_like_the_official_code():
    a = np.zeros((4, 5, 4), np.uint8)
    a[..., 0] = 200
    a[..., 3] = 0
    out = load_rgb(Image.fromarray(a, "RGBA"))
    assert out.mode == "RGB" and np.asarray(out)[0, 0].tolist() == [200, 0, 0]


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    a = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000)
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)
    out = np.asarray(load_rgb(p))
    assert out.shape == (4, 5, 3)
    assert out[..., 0].max() == round(57000 / 65535 * 255) and out[0, 1, 0] == round(3000 / 65535 * 255)


def test_cmyk_palette_grayscale_and_exif_rotation(tmp_path):
    cmyk = Image.new("CMYK", (6, 4), (0, 255, 255, 0))  # red
    assert np.asarray(load_rgb(_png_bytes(cmyk, "JPEG", quality=95)))[0, 0, 0] > 200
    pal = Image.new("RGB", (6, 4), (10, 200, 30)).convert("P")
    assert load_rgb(pal).mode == "RGB"
    assert np.asarray(load_rgb(Image.new("L", (3, 3), 77)))[1, 1].tolist() == [77, 77, 77]
    img = Image.new("RGB", (6, 4))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    rotated = load_rgb(_png_bytes(img, "JPEG", exif=exif.tobytes()))
    assert rotated.size == (4, 6)


def test_corrupt_truncated_and_missing_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="bad.png"):
        load_rgb(bad)
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(_png_bytes(Image.new("RGB", (64, 64), 5))[:80])
    with pytest.raises(InputError):
        load_rgb(trunc)
    with pytest.raises(InputError, match="not found"):
        load_rgb(tmp_path / "nope.png")


def test_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    import oldphoto.imageio as io_mod

    monkeypatch.setattr(io_mod, "MAX_PIXELS", 100)
    p = tmp_path / "big.png"
    Image.new("RGB", (20, 20)).save(p)
    with pytest.raises(InputError, match="too large"):
        load_rgb(p)


def test_mask_forms():
    m = np.zeros((8, 10), np.uint8)
    m[2:4] = 255
    assert load_mask(m, (10, 8))[2:4].all() and not load_mask(m, (10, 8))[0].any()
    assert load_mask(m.astype(bool), (20, 16)).shape == (16, 20)
    assert load_mask((m > 0).astype(np.uint8), (10, 8)).sum() == 20  # 0/1 masks
    with pytest.raises(InputError, match="aspect ratio"):
        load_mask(np.zeros((8, 8)), (10, 8))
