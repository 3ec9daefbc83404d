"""Restorer with colorize="reference" / "points" (issue 24), on seeded weights.

The Deep Exemplar cases run at a lowered processing size (``guided.PROCESS_PIXELS``) except the one
that checks a 768 x 432 photo against the official output.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from oldphoto.errors import InputError
from oldphoto.pipeline import Restorer
from oldphoto.stages import cielab, guided

from .conftest import require_reference

GUIDED = ["exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet", "siggraph17"]


@pytest.fixture(scope="module")
def restorer(guided_weights_dir) -> Restorer:
    return Restorer(weights_dir=guided_weights_dir)


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(guided, "PROCESS_PIXELS", 64 * 128)


def _exemplar_case(name: str):
    golden = require_reference("colorize", "exemplar", "golden", "e2e", name)
    return golden


def _photo(w: int = 120, h: int = 90, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    g = (x * 255 / w * 0.6 + y * 255 / h * 0.4 + rng.normal(0, 8, (h, w))).clip(0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([g] * 3, -1), "RGB")


def test_official_size_photo_gets_the_official_output(restorer):
    """A 768 x 432 photo (16:9, the official size) is coloured exactly as test.py colours it."""
    golden = _exemplar_case("e2e_a_astronaut")
    res = restorer.colorize(Image.open(golden / "target_centerpad.png"), colorize="reference",
                            reference=Image.open(golden / "ref_centerpad.png"))
    want = np.asarray(Image.open(golden / "output_rgb_u8.png")).astype(int)
    d = np.abs(np.asarray(res.image).astype(int) - want)
    assert d.max() <= 1 and (d > 0).mean() <= 0.001


def test_reference_keeps_the_photo_shape_and_lightness_and_reblends(restorer, small):
    golden = _exemplar_case("e2e_e_rocket_crop")  # a portrait photo: the official code would crop it
    photo, ref = Image.open(golden / "target.png"), Image.open(golden / "ref.png")
    res = restorer.colorize(photo, colorize="reference", reference=ref)
    assert res.image.size == photo.size
    got_l = cielab.rgb2lab(np.asarray(res.image))[..., 0]
    want_l = cielab.rgb2lab(np.asarray(photo.convert("RGB")))[..., 0]
    assert np.median(np.abs(got_l - want_l)) < 1.0  # the photo's own lightness (seeded colours clip often)
    a = np.asarray(res.image).astype(int)
    assert np.abs(a[..., 0] - a[..., 2]).mean() > 2  # it has colour
    grey = np.asarray(res.reblend(color_strength=0.0).image)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    half = restorer.colorize(photo, colorize="reference", reference=ref, color_strength=0.5)
    assert np.array_equal(np.asarray(res.reblend(color_strength=0.5).image), np.asarray(half.image))


def test_reference_notes_and_errors(restorer, small):
    photo = _photo()
    grey_ref = _photo(200, 60, seed=1)  # grey, and a panorama: two notes
    res = restorer.colorize(photo, colorize="reference", reference=grey_ref)
    assert any("no colour of its own" in n for n in res.notes)
    assert any("another shape" in n for n in res.notes)
    for ref, words in ((Image.new("RGB", (8, 40), "red"), "too small"),
                       (b"not an image", "Reference photo"),
                       ("/nonexistent/ref.jpg", "Reference photo")):
        with pytest.raises(InputError) as exc:
            restorer.colorize(photo, colorize="reference", reference=ref)
        assert words in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(InputError, match="needs a reference photo"):
        restorer.colorize(photo, colorize="reference")
    with pytest.raises(InputError, match="only used with colorize='reference'"):
        restorer.colorize(photo, colorize="points", reference=photo)
    with pytest.raises(InputError, match="only used with colorize='points'"):
        restorer.colorize(photo, colorize="auto", hints=[(1, 1, "#ff0000")])


def test_no_points_is_the_official_automatic_result(restorer):
    golden = require_reference("colorize", "siggraph17", "golden")
    photo = Image.open(golden / "e2e" / "inputs" / "e2e_auto_b_128x92.png")
    res = restorer.colorize(photo, colorize="points")
    want = np.asarray(Image.open(golden / "e2e" / "e2e_auto_b_128x92__siggraph17.png").convert("RGB")).astype(int)
    d = np.abs(np.asarray(res.image).astype(int) - want)
    assert d.max() <= 1 and (d > 0).mean() <= 0.005
    assert res.image.size == photo.size


def test_a_point_moves_the_colour_around_it(restorer):
    photo = _photo(128, 96)
    base = np.asarray(restorer.colorize(photo, colorize="points").image).astype(float)
    pts = [(32, 24, "#20c040")]
    res = restorer.colorize(photo, colorize="points", hints=pts)
    got = np.asarray(res.image).astype(float)
    near = np.abs(got[20:29, 28:37] - base[20:29, 28:37]).mean()
    assert near > 3, near
    assert res.notes == []


@pytest.mark.parametrize(("hints", "words"), [
    ([(10, 10, "#ff0000"), (128, 5, "#00ff00")], "Colour point 2 at (128, 5) is outside the photo (128x96"),
    ([(10, 10, "red")], "Colour point 1 at (10, 10) has a bad colour 'red'"),
    ([(10, 10, "#ff00")], "bad colour '#ff00'"),
    ([(10, "a", "#ff0000")], "Colour point 1 has a non-numeric position"),
    ([(-1, 3, "#ff0000")], "outside the photo"),
    ([(1, 2)], "Colour point 1 must be (x, y, '#rrggbb')"),
    ("10,10,#ff0000", "hints must be a list"),
])
def test_bad_points_name_the_point(restorer, hints, words):
    with pytest.raises(InputError) as exc:
        restorer.colorize(_photo(128, 96), colorize="points", hints=hints)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_two_colours_on_one_pixel_keep_the_later_with_a_note(restorer):
    res = restorer.colorize(_photo(128, 96), colorize="points",
                            hints=[(40.2, 30.7, "#FF0000"), (40, 30, "#0000ff"), (90, 60, "#00ff00")])
    assert any("Colour points 1 and 2 are on the same pixel (40, 30)" in n and "#0000ff" in n for n in res.notes)
    later = restorer.colorize(_photo(128, 96), colorize="points", hints=[(40, 30, "#0000ff"), (90, 60, "#00ff00")])
    assert np.array_equal(np.asarray(res.image), np.asarray(later.image))


def test_restore_then_points(restorer):
    """The colour stage after restoration: components listed, notes, and the result's size."""
    comps = restorer.components_for(scratches=False, hr=False, faces=False, colorize="reference")
    assert comps[-3:] == GUIDED[:3]
    photo = _photo(96, 64)
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    res = restorer.restore(buf.getvalue(), faces=False, colorize="points", hints=[(20, 20, "#c03020")])
    assert res.image.size == photo.size and res.uncolored is not None and res.color.model == "points"


def test_progress_creeps_and_cancel_stops_the_reference_stage(restorer, small):
    import threading

    from oldphoto.errors import Cancelled

    seen: list[float] = []
    photo, ref = _photo(), _photo(100, 80, seed=5).convert("RGB")
    restorer.colorize(photo, colorize="reference", reference=ref, progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len({round(f, 2) for f in seen if 0.05 < f < 0.95}) >= 5  # moves through the networks
    cancel = threading.Event()

    def stop_midway(frac, _msg):
        if frac > 0.3:
            cancel.set()

    with pytest.raises(Cancelled):
        restorer.colorize(photo, colorize="reference", reference=ref, progress=stop_midway, cancel=cancel)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compose_in_strips_equals_one_pass(monkeypatch, dtype):
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (600, 40, 3), dtype=np.uint8)
    pred = guided.GuidedPrediction("points", rng.normal(0, 40, (2, 64, 64)).astype(np.float32), dtype)
    strips = pred.compose(rgb, 0.8)
    monkeypatch.setattr(guided, "STRIP_ROWS", 10_000)
    whole = pred.compose(rgb, 0.8)
    d = np.abs(strips.astype(int) - whole.astype(int))
    assert d.max() <= 1 and (d > 0).mean() < 1e-3


def test_a_very_large_reference_is_box_reduced_first(monkeypatch):
    monkeypatch.setattr(guided, "REFERENCE_EXACT_PIXELS", 100 * 80)
    notes: list[str] = []
    big = Image.new("RGB", (300, 200), "red")
    small = guided.shrink_reference(big, notes)
    assert small.size == (100, 67) and len(notes) == 1 and "reduced 3x" in notes[0]
    assert guided.shrink_reference(small, notes) is small and len(notes) == 1
