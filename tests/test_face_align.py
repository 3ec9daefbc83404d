"""Alignment and warp-back (face SPEC b, d): unit properties and bit-exact golden comparisons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oldphoto.stages import align, warpback
from tests.conftest import REFERENCE, require_reference

GOLDEN = REFERENCE / "face" / "golden"
WARPBACK_CASES = ["warpback256_a_invert", "warpback256_wsd_invert", "warpback256_acut_invert", "warpback512_a_invert"]


def _case(case_id: str) -> dict:
    index = json.loads(require_reference("face", "golden", "index.json").read_text())
    return next(c for c in index["cases"] if c["id"] == case_id)


# -- template and fit ------------------------------------------------------------------------------
def test_template_values_from_spec():
    t256 = align.template(256)
    assert t256.dtype == np.float32
    expected = np.array([[89, 108.5], [167, 108.5], [128, 147.5],
                         [104.59999847, 195.85998535], [151.39999390, 195.85998535]])
    np.testing.assert_allclose(t256, expected, rtol=0, atol=1e-7)
    assert t256[3, 1] != np.float32(195.86)  # the float32 arithmetic, not the decimal value
    np.testing.assert_allclose(align.template(512)[[0, 1, 3]], [[178, 217], [334, 217], [209.19999695, 391.71997070]],
                               atol=1e-6)


def test_similarity_recovers_an_exact_transform():
    theta, s, t = 0.3, 1.7, np.array([40.0, -12.5])
    rot = s * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    src = align.template(256).astype(np.float64)
    dst = src @ rot.T + t
    m = align.similarity(src, dst)
    np.testing.assert_allclose(m[:2, :2], rot, atol=1e-12)
    np.testing.assert_allclose(m[:2, 2], t, atol=1e-10)
    np.testing.assert_array_equal(m[2], [0, 0, 1])
    # a reflection in the data still gives a proper rotation (det > 0), as Umeyama's sign fix does
    m_ref = align.similarity(src, dst * np.array([-1.0, 1.0]))
    assert np.linalg.det(m_ref[:2, :2]) > 0


def test_float32_template_statistics_matter():
    """SPEC b: the official matrix needs the float32 mean/variances; float64 drifts by ~1e-6."""
    case = _case("warpback256_a_invert")
    face = case["faces"][0]
    lm = np.array(face["landmarks5_xy"], dtype=np.float64)
    official = np.array(face["similarity_crop_to_image"])
    ours = align.crop_transform(lm, 256)
    f64 = align.similarity(align.template(256).astype(np.float64), lm)
    assert np.abs(ours - official).max() <= 1e-12
    assert np.abs(f64 - official).max() > 1e-9


def test_clip_rule_of_skimage_018():
    out = np.array([0.0, 0.05, 0.5, 1.2, -0.1])
    # lo <= 0 <= hi: a plain clip
    np.testing.assert_array_equal(align.clip_like_skimage018(out, 0.0, 1.0), [0, 0.05, 0.5, 1.0, 0])
    # photo minimum > 0: exact zeros (fully outside) stay 0, partially outside values rise to lo
    np.testing.assert_array_equal(align.clip_like_skimage018(out, 0.1, 1.0), [0, 0.1, 0.5, 1.0, 0.1])


def test_warps_on_identity_and_half_pixel():
    img = np.arange(12, dtype=np.float64).reshape(3, 4)
    eye = np.eye(3)
    np.testing.assert_array_equal(align.warp_bilinear(img, eye, (3, 4)), img)
    np.testing.assert_array_equal(align.warp_bicubic(img, eye, (3, 4)), img)
    shift = np.array([[1, 0, 0.5], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    # x + 0.5: bilinear mean of neighbours; the right border reads the constant 0
    np.testing.assert_array_equal(align.warp_bilinear(img, shift, (3, 4))[0], [0.5, 1.5, 2.5, 1.5])
    # nearest rounds half away from zero: 0.5 -> 1, -0.5 -> -1 (outside -> 0)
    np.testing.assert_array_equal(align.warp_nearest(img, shift, (3, 4))[0], [1, 2, 3, 0])
    back = np.array([[1, 0, -0.5], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    # -0.5 -> -1 (outside), 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 (half to even would give 0, 2, 2)
    np.testing.assert_array_equal(align.warp_nearest(img, back, (3, 4))[0], [0, 1, 2, 3])


def test_img_as_ubyte_rounds_half_to_even():
    v = np.array([0.5, 1.5, 2.5, 254.5]) / 255
    np.testing.assert_array_equal(align.img_as_ubyte(v), [0, 2, 2, 254])


# -- warp-back building blocks ---------------------------------------------------------------------
def test_histogram_matching_lut_by_construction():
    src = np.zeros((4, 4, 1), dtype=np.uint8)
    src[:2] = 10  # half the pixels 10, half 20
    src[2:] = 20
    ref = np.zeros((4, 4, 1), dtype=np.uint8)
    ref[:1] = 50  # quarter 50, three quarters 200
    ref[1:] = 200
    out = warpback.match_histograms(src, ref)
    # cdf_src(10) = 0.5 -> smallest r with cdf_ref(r) >= 0.5 is 200; cdf_src(20) = 1 -> 200
    assert set(np.unique(out[:2])) == {200} and set(np.unique(out[2:])) == {200}
    ref[:2] = 50  # now cdf_ref(50) = 0.5 exactly: ">=" picks 50
    out = warpback.match_histograms(src, ref)
    assert set(np.unique(out[:2])) == {50} and set(np.unique(out[2:])) == {200}
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(warpback.match_histograms(img, img), img)


def test_gaussian_kernel_and_blur():
    k = warpback.gaussian_kernel(25)
    assert k.shape == (25,) and abs(k.sum() - 1) < 1e-15 and np.argmax(k) == 12
    sigma = ((25 - 1) * 0.5 - 1) * 0.3 + 0.8
    assert k[12] / k[11] == pytest.approx(np.exp(0.5 / sigma**2), rel=1e-12)
    img = np.zeros((40, 50))
    img[20, 25] = 1.0
    out = warpback.gaussian_blur(img)
    np.testing.assert_allclose(out[8:33, 13:38], np.outer(k, k), rtol=1e-12)  # separable impulse response
    # reflect-101 at the border: a constant image stays constant
    np.testing.assert_allclose(warpback.gaussian_blur(np.full((30, 30), 7.0)), 7.0, rtol=1e-13)


def test_erosion_is_a_25_square_min_that_ignores_the_border():
    rng = np.random.default_rng(1)
    m = (rng.random((40, 45)) > 0.02).astype(np.float64) * 255
    got = warpback.erode(m)
    i, j = 30, 3
    assert got[i, j] == m[max(i - 12, 0):i + 13, max(j - 12, 0):j + 13].min()
    full = np.full((30, 30), 255.0)
    np.testing.assert_array_equal(warpback.erode(full), full)  # the photo edge does not erode


def test_paste_without_faces_returns_the_photo():
    photo = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = warpback.paste_faces(photo, [])
    assert np.array_equal(out, photo) and out is not photo


# -- golden ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", WARPBACK_CASES)
def test_warpback_golden_bit_exact(case_id):
    case = _case(case_id)
    photo = np.load(GOLDEN / case["inputs"]["photo"]["file"])
    size = case["options"]["crop_size"]
    faces = []
    for face in case["faces"]:
        files = face["files"]
        m = align.crop_transform(np.array(face["landmarks5_xy"]), size)
        assert np.abs(m - np.array(face["similarity_crop_to_image"])).max() <= 1e-12
        assert np.array_equal(align.aligned_crop(photo, m, size), np.load(GOLDEN / files["stage2_crop"]["file"]))
        assert np.array_equal(align.aligned_reference(photo, m, size), np.load(GOLDEN / files["aligned_trunc_u8"]["file"]))
        if "aligned_float" in files:
            got = align.crop_float(photo, m, size, preserve_range=True).astype(np.float32)
            assert np.array_equal(got, np.load(GOLDEN / files["aligned_float"]["file"]))
        assert np.array_equal(align.forward_mask(photo.shape, m, size), np.load(GOLDEN / files["forward_mask"]["file"]))
        faces.append((m, np.load(GOLDEN / files["restored_face"]["file"])))

    debug: list[warpback.PasteDebug] = []
    final = warpback.paste_faces(photo, faces, debug=debug)
    for face, dbg in zip(case["faces"], debug):
        files = face["files"]

        def ref(name: str, files=files) -> np.ndarray:
            return np.load(GOLDEN / files[name]["file"])

        assert np.array_equal(dbg.matched, ref("matched_face"))
        assert np.array_equal(dbg.backward_mask, ref("backward_mask"))
        assert np.array_equal((dbg.eroded / 255).astype(np.uint8), ref("mask_eroded"))
        # float arrays are stored as float32 roundings of the official float64 values
        assert np.abs(dbg.warped - ref("warped_back")).max() <= 256 * 2.0**-24
        assert np.abs(dbg.alpha - ref("mask_blur")).max() <= 1e-7
        assert np.abs(dbg.blended_after - ref("blended_after")).max() <= 256 * 2.0**-24
    assert np.array_equal(final, np.load(GOLDEN / case["outputs"]["final"]["file"]))


def test_acut_case_exercises_the_clip_rule():
    """The photo minimum is > 0 there, so the 0.19+ clip ([0, hi]) would change the crop."""
    case = _case("warpback256_acut_invert")
    photo = np.load(GOLDEN / case["inputs"]["photo"]["file"])
    assert photo.min() > 0
    face = case["faces"][0]
    m = align.crop_transform(np.array(face["landmarks5_xy"]), 256)
    img = np.multiply(photo, 1.0 / 255, dtype=np.float64)
    raw = align.warp_bilinear(img, m, (256, 256))
    new_rule = align.img_as_ubyte(np.clip(raw, 0, img.max()))
    official = np.load(GOLDEN / face["files"]["stage2_crop"]["file"])
    assert np.array_equal(align.aligned_crop(photo, m, 256), official)
    assert not np.array_equal(new_rule, official)


def _paste_full_image(photo: np.ndarray, faces) -> np.ndarray:
    """The official computation on whole-photo arrays (no windows), for comparison."""
    current = photo.astype(np.float64)
    shape = photo.shape[:2]
    for m, restored in faces:
        size = restored.shape[0]
        matched = warpback.match_histograms(restored, align.aligned_reference(photo, m, size))
        warped = warpback.warp_back(matched, m, shape)
        back = warpback.backward_mask(align.forward_mask(shape, m, size), m, shape)
        _, alpha = warpback.blend_alpha(back)
        a = alpha[..., None]
        current = np.clip((warped * a + (1 - a) * current) / 255.0, 0.0, 1.0) * 255.0
    return align.img_as_ubyte(current / 255.0)


def test_windowed_paste_equals_whole_photo_computation():
    """A face in a big photo (window much smaller than the photo), one cut by the photo edge, and one
    entirely outside the photo."""
    rng = np.random.default_rng(5)
    photo = rng.integers(20, 230, (300, 420, 3), dtype=np.uint8)
    face = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    lm_mid = np.array([[200.0, 150.0], [230.0, 151.0], [215.0, 168.0], [204.0, 185.0], [227.0, 185.0]])
    lm_edge = lm_mid + np.array([-195.0, 120.0])  # face cut by the left border
    lm_out = lm_mid + np.array([900.0, 0.0])  # nowhere near the photo
    faces = [(align.crop_transform(lm, 256), face) for lm in (lm_mid, lm_edge, lm_out)]
    win = warpback.face_window(faces[0][0], 256, photo.shape[:2])
    assert (win[0].stop - win[0].start) * (win[1].stop - win[1].start) < photo.shape[0] * photo.shape[1] / 2
    got = warpback.paste_faces(photo, faces)
    assert np.array_equal(got, _paste_full_image(photo, faces))
    assert not np.array_equal(got, photo)
    only_outside = warpback.paste_faces(photo, faces[2:])
    assert np.array_equal(only_outside, photo)
