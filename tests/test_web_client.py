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
def app_url(seeded_guided_weights_dir):
    with serve(seeded_guided_weights_dir, max_side=MAX_SIDE) as url:
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
                     "scratch_threshold", "mask_grow", "colorize", "colorize_model", "color_strength", "existing_color",
                     "reference", "hints"]
    params = {p["parameter_name"]: p for p in endpoints["/restore"]["parameters"]}
    defaults = {k: params[k]["parameter_default"] for k in names[5:]}
    assert defaults == {"strength": 1, "face_strength": 1, "scratch_threshold": 0.4, "mask_grow": 0,
                        "colorize": "none", "colorize_model": "modelscope", "color_strength": 1,
                        "existing_color": "grey-only", "reference": None, "hints": "[]"}
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


def _chroma(path) -> float:
    """Mean spread between an image's channels: 0 for a grey image."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.int16)
    return float((arr.max(axis=2) - arr.min(axis=2)).mean())


@pytest.fixture(scope="module")
def grey_photo(photo, tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "grandmother.png"
    with Image.open(photo) as im:
        im.convert("L").convert("RGB").save(out)
    return out


def test_colour_is_an_optional_api_parameter(client, grey_photo):
    """A grey photo comes back in colour with colorize="auto" (the tiny model keeps it quick), at the
    photo's size, with the summary saying so, and the before/after view shows that result; without
    the colour parameters nothing is colourised, and color_strength 0 gives a grey photo (Lab a = b = 0).
    (The seeded restoration networks themselves tint their output, so "without colour" is checked
    as "not the colour stage's output", not as "grey".)"""
    plain = client.predict(photo=handle_file(str(grey_photo)), faces=False, api_name="/restore")
    assert "colourised (" not in plain[2]
    slider, download, summary, _mask, _faces = client.predict(
        photo=handle_file(str(grey_photo)), faces=False, colorize="auto", colorize_model="tiny", api_name="/restore"
    )
    with Image.open(download) as out:
        assert out.size == (128, 96) and out.mode == "RGB"
    assert _chroma(download) > 2.0, "the colourised result is grey"
    after = slider[1] if isinstance(slider[1], str) else slider[1]["path"]
    with Image.open(after) as shown, Image.open(download) as png, Image.open(plain[1]) as grey_result:
        assert np.array_equal(np.asarray(shown), np.asarray(png)), "the before/after view is not the colour result"
        assert not np.array_equal(np.asarray(png), np.asarray(grey_result))
    assert "colourised (automatic, Tiny model)" in summary
    _s, grey, summary0, _m, _f = client.predict(
        photo=handle_file(str(grey_photo)), faces=False, colorize="auto", colorize_model="tiny", color_strength=0,
        api_name="/restore",
    )
    assert _chroma(grey) < 1.0 and "colour strength 0" in summary0
    with pytest.raises(AppError, match=r"huge is not in the list of choices: \['modelscope'"):
        client.predict(photo=handle_file(str(grey_photo)), colorize="auto", colorize_model="huge", api_name="/restore")


def test_a_colour_photo_is_only_recoloured_when_asked(client, photo):
    """The default keeps a colour photo's colour and says how to replace it; "replace" colourises it."""
    _s, kept, summary, _m, _f = client.predict(
        photo=handle_file(str(photo)), faces=False, colorize="auto", colorize_model="tiny", api_name="/restore"
    )
    assert "already has colour" in summary and "colourised (" not in summary
    plain = client.predict(photo=handle_file(str(photo)), faces=False, api_name="/restore")
    with Image.open(kept) as a, Image.open(plain[1]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))  # exactly the restoration without colour
    _s, replaced, summary, _m, _f = client.predict(
        photo=handle_file(str(photo)), faces=False, colorize="auto", colorize_model="tiny",
        existing_color="replace", api_name="/restore",
    )
    assert "colourised (automatic, Tiny model)" in summary and "already has colour" not in summary
    with Image.open(replaced) as a, Image.open(plain[1]) as b:
        assert not np.array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture
def small_guided(monkeypatch):
    """Deep Exemplar at a lowered processing size (the server runs in this process), for speed."""
    from oldphoto.stages import guided

    monkeypatch.setattr(guided, "PROCESS_PIXELS", 64 * 128)


def test_reference_and_points_are_optional_api_parameters(client, grey_photo, photo, small_guided):
    """colorize="reference" with a reference upload, and colorize="points" with hints as JSON text in
    the uploaded photo's pixels, both come back in colour at the photo's size; a point changes the
    colour around it (seeded weights: not to a known colour, but not the same as without it)."""
    _s, by_ref, summary, _m, _f = client.predict(
        photo=handle_file(str(grey_photo)), faces=False, colorize="reference", reference=handle_file(str(photo)),
        api_name="/restore")
    assert "colourised (from the reference photo" in summary
    with Image.open(by_ref) as out:
        assert out.size == (128, 96)
    assert _chroma(by_ref) > 1.0
    _s, none, _summary, _m, _f = client.predict(
        photo=handle_file(str(grey_photo)), faces=False, colorize="points", api_name="/restore")
    _s, pointed, summary, _m, _f = client.predict(
        photo=handle_file(str(grey_photo)), faces=False, colorize="points", hints='[[32, 24, "#20c040"]]',
        api_name="/restore")
    assert "colourised (with colour points" in summary
    with Image.open(none) as a, Image.open(pointed) as b:
        near = np.abs(np.asarray(b, float)[20:29, 28:37] - np.asarray(a, float)[20:29, 28:37]).mean()
    assert near > 3, near


def test_bad_reference_and_points_give_one_line_messages(client, grey_photo, tmp_path):
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"not a photo at all")
    with pytest.raises(AppError) as exc:
        client.predict(photo=handle_file(str(grey_photo)), colorize="reference", reference=handle_file(str(bad)),
                       api_name="/restore")
    msg = str(exc.value)
    assert "Reference photo:" in msg and "holiday.jpg" in msg and "Traceback" not in msg and "/tmp/" not in msg
    with pytest.raises(AppError, match="none is uploaded"):
        client.predict(photo=handle_file(str(grey_photo)), colorize="reference", api_name="/restore")
    with pytest.raises(AppError, match=r"Colour point 1 at \(500, 5\) is outside the photo \(128x96"):
        client.predict(photo=handle_file(str(grey_photo)), colorize="points", hints='[[500, 5, "#ff0000"]]',
                       api_name="/restore")
    with pytest.raises(AppError, match="bad colour 'red'"):
        client.predict(photo=handle_file(str(grey_photo)), colorize="points", hints='[[5, 5, "red"]]',
                       api_name="/restore")
    with pytest.raises(AppError, match="not valid JSON"):
        client.predict(photo=handle_file(str(grey_photo)), colorize="points", hints="5,5,#ff0000",
                       api_name="/restore")
