"""The demo's documented API (``api_name="/restore"``) through ``gradio_client``, against the real app
served on 127.0.0.1 with seeded weights; plus each error a user can meet, as the client sees it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.web_helpers import serve, small_photo

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

MAX_SIDE = 160  # the test app's size cap, small so that CPU restorations stay quick


@pytest.fixture(scope="module")
def app_url(seeded_weights_dir):
    with serve(seeded_weights_dir, max_side=MAX_SIDE) as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    return small_photo(tmp_path_factory.mktemp("web") / "family.png", (128, 96))


def test_api_is_documented_under_restore(client):
    info = client.view_api(print_info=False, return_format="dict")
    endpoints = info["named_endpoints"]
    assert "/restore" in endpoints
    names = [p["parameter_name"] for p in endpoints["/restore"]["parameters"]]
    assert names == ["photo", "scratches", "painted", "faces", "hr", "strength", "face_strength",
                     "scratch_threshold", "mask_grow"]
    params = {p["parameter_name"]: p for p in endpoints["/restore"]["parameters"]}
    defaults = {k: params[k]["parameter_default"] for k in names[5:]}
    assert defaults == {"strength": 1, "face_strength": 1, "scratch_threshold": 0.4, "mask_grow": 0}
    assert all(params[k]["parameter_has_default"] for k in names[1:])
    # the page's helper events are not part of the public API
    assert set(endpoints) == {"/restore"}


def test_restore_with_detected_scratches(client, photo):
    slider, download, summary, mask, faces = client.predict(
        photo=handle_file(str(photo)), scratches="auto", faces=False, hr=False, api_name="/restore"
    )
    before, after = slider
    with Image.open(download) as out:
        assert out.format == "PNG" and out.size == (128, 96) and out.mode == "RGB"
    with Image.open(after if isinstance(after, str) else after["path"]) as shown:
        assert shown.size == (128, 96)
    assert "Restored 128×96 px" in summary and "scratch mask: detected" in summary
    with Image.open(mask) as m:  # the mask used is shown, white = damage, at the processing size
        assert m.mode == "L" and set(np.unique(np.asarray(m))) <= {0, 255}
    assert faces == [] or faces is None


def test_restore_with_a_painted_mask(client, photo, tmp_path):
    layer = Image.new("RGBA", (64, 48), (0, 0, 0, 0))  # painted on a half-size canvas
    ImageDraw.Draw(layer).line([(5, 5), (60, 40)], fill=(255, 0, 64, 255), width=3)
    layer_path = tmp_path / "layer.png"
    layer.save(layer_path)
    painted = {"background": None, "layers": [handle_file(str(layer_path))], "composite": None}
    _slider, download, summary, mask, _faces = client.predict(
        photo=handle_file(str(photo)), scratches="paint", painted=painted, faces=False, hr=False,
        api_name="/restore",
    )
    assert "scratch mask: user" in summary
    with Image.open(mask) as m:
        arr = np.asarray(m) > 127
    assert 0.01 < arr.mean() < 0.2  # the diagonal stroke, scaled up, not the whole photo
    with Image.open(download) as out:
        assert out.size == (128, 96)


def test_oversized_photo_is_downscaled_and_the_user_told(client, tmp_path):
    big = small_photo(tmp_path / "big.png", (320, 240), seed=1)
    _slider, download, summary, _mask, _faces = client.predict(
        photo=handle_file(str(big)), scratches="none", faces=False, api_name="/restore"
    )
    with Image.open(download) as out:
        assert out.size == (160, 120)
    assert "320×240" in summary and "downscaled to 160×120" in summary


def test_bad_file_gives_a_readable_message(client, tmp_path):
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is not an image at all")
    with pytest.raises(AppError) as err:
        client.predict(photo=handle_file(str(bad)), api_name="/restore")
    msg = str(err.value)
    assert "holiday.png" in msg and "not a readable image" in msg
    assert "/tmp/" not in msg and "Traceback" not in msg  # no server paths, no traceback


def test_truncated_file_gives_a_readable_message(client, photo, tmp_path):
    cut = tmp_path / "cut.png"
    cut.write_bytes(photo.read_bytes()[:200])
    with pytest.raises(AppError, match=r"cut\.png: the image file is corrupt or truncated"):
        client.predict(photo=handle_file(str(cut)), api_name="/restore")


def test_paint_without_painting_says_what_to_do(client, photo):
    with pytest.raises(AppError, match="nothing is painted yet"):
        client.predict(photo=handle_file(str(photo)), scratches="paint", api_name="/restore")


def test_missing_photo_says_what_to_do(client):
    with pytest.raises(AppError, match="Upload a photo first"):
        client.predict(photo=None, api_name="/restore")


def test_missing_weights_explain_how_to_get_them(tmp_path, photo):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    with serve(empty) as url:  # the page still loads (serve checks it) ...
        with pytest.raises(AppError) as err:  # ... and restoring explains what to do
            Client(url, verbose=False).predict(photo=handle_file(str(photo)), faces=False, api_name="/restore")
    msg = str(err.value)
    assert "model weights are not available" in msg
    assert "oldphoto weights download" in msg and "--weights-dir" in msg
    assert "&#" not in msg and "&lt;" not in msg  # plain text for API clients


def test_adjustments_are_optional_api_parameters(client, photo):
    """A call written before the adjustments existed (positional, five values) still works and gives
    the defaults' result; strength 0 gives the photo back (128x96 needs no resize); a bad value gets
    the library's message naming the range."""
    old_style = client.predict(handle_file(str(photo)), "none", None, False, False, api_name="/restore")
    explicit = client.predict(photo=handle_file(str(photo)), faces=False, strength=1, face_strength=1,
                              scratch_threshold=0.4, mask_grow=0, api_name="/restore")
    with Image.open(old_style[1]) as a, Image.open(explicit[1]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert "Adjusted" not in old_style[2]
    _slider, download, summary, _mask, _faces = client.predict(
        photo=handle_file(str(photo)), faces=False, strength=0, api_name="/restore"
    )
    with Image.open(download) as out, Image.open(photo) as src:
        assert np.array_equal(np.asarray(out), np.asarray(src.convert("RGB")))
    assert "Adjusted: strength 0 (default 1)." in summary
    with pytest.raises(AppError, match=r"mask_grow must be a whole number of pixels from 0 to 64"):
        client.predict(photo=handle_file(str(photo)), faces=False, mask_grow=2.5, api_name="/restore")
