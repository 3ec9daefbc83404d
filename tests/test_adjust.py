"""The user's controls (strength, face_strength, scratch_threshold, mask_grow): oldphoto.stages.adjust
and ``Restorer.restore`` with them, on small real photos with seeded weights (CPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from oldphoto import Restorer
from oldphoto.errors import InputError
from oldphoto.stages import adjust, detect, warpback
from oldphoto.stages import faces as face_stage
from oldphoto.stages.resize import resize_if_needed

from .conftest import require_reference


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    src = require_reference("test_images", "old_w_scratch", "b.png")
    with Image.open(src) as im:
        return im.convert("RGB").resize((100, 75), Image.LANCZOS)  # not a multiple of 4 or 16


@pytest.fixture(scope="module")
def restorer(seeded_weights_dir) -> Restorer:
    return Restorer(device="cpu", weights_dir=seeded_weights_dir)


@pytest.fixture(scope="module")
def face_restorer(seeded_weights_dir) -> Restorer:
    """A "loud" seeded face detector (random weights find faces everywhere), so faces get blended."""
    from oldphoto.seeded import global_seeded_state_dict
    from oldphoto.weights import load_state_dict
    from oldphoto.weights.manifests import load_manifest

    def loud(component):
        if component == "retinaface_resnet50":
            return global_seeded_state_dict(load_manifest(component), 36)
        return load_state_dict(component, weights_dir=seeded_weights_dir)

    return Restorer(device="cpu", weights_loader=loud)


@pytest.fixture(scope="module")
def face_photo(photo) -> Image.Image:
    return photo.resize((160, 120), Image.LANCZOS)


@pytest.fixture(scope="module")
def face_default(face_restorer, face_photo):
    res = face_restorer.restore(face_photo, faces=True, max_faces=2)
    assert len(res.faces) == 2
    return res


def to_size(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The pipeline's final resize to the photo's size."""
    return resize_if_needed(img, size, Image.LANCZOS)


def reference_dilation(mask: np.ndarray, r: int) -> np.ndarray:
    """The definition: a pixel is set when a mask pixel lies within Euclidean distance r."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for y, x in zip(*np.nonzero(mask), strict=True):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dx * dx + dy * dy <= r * r and 0 <= y + dy < h and 0 <= x + dx < w:
                    out[y + dy, x + dx] = True
    return out


# -- defaults are today's results ---------------------------------------------------------------


def test_defaults_are_bit_identical_without_faces(restorer, photo):
    res = restorer.restore(photo, faces=False)
    explicit = restorer.restore(photo, faces=False, strength=1, face_strength=1.0, scratch_threshold=0.4, mask_grow=0)
    today = to_size(res.global_image, photo.size)  # the pipeline before the controls
    assert np.array_equal(np.asarray(res.image), np.asarray(today))
    assert np.array_equal(np.asarray(explicit.image), np.asarray(today))
    assert res.notes == [] and explicit.notes == []


def test_defaults_are_bit_identical_with_faces(face_restorer, face_photo, face_default):
    """Against the official face stage (``enhance_faces``: detect, enhance, paste) on the global result."""
    blended, found = face_stage.enhance_faces(
        np.asarray(face_default.global_image), detector=face_restorer.net("retinaface_resnet50"),
        generator=face_restorer.net("face_gen_256"), size=256, device=face_restorer.device, max_faces=2,
    )
    today = to_size(Image.fromarray(blended, "RGB"), face_photo.size)
    assert len(found) == 2
    assert np.array_equal(np.asarray(face_default.image), np.asarray(today))
    assert not np.array_equal(np.asarray(face_default.image),
                              np.asarray(to_size(face_default.global_image, face_photo.size)))


def test_default_scratch_threshold_is_todays_detection(restorer, photo):
    res = restorer.restore(photo, scratches="auto", faces=False)
    explicit = restorer.restore(photo, scratches="auto", faces=False, scratch_threshold=0.4)
    net = restorer.net("detection_unet")
    det = detect.detect(net, res.processed_input)
    import torch

    official = (torch.sigmoid(det.logits) >= 0.4).float()  # the official >= 0.4 on the sigmoid, at U-Net size
    official = torch.nn.functional.interpolate(official, det.mask.shape, mode="nearest")[0, 0].numpy() > 0
    assert np.array_equal(res.mask, official) and np.array_equal(explicit.mask, official)
    assert np.array_equal(np.asarray(res.image), np.asarray(explicit.image))
    lower = restorer.restore(photo, scratches="auto", faces=False, scratch_threshold=0.2)
    assert lower.mask.sum() > res.mask.sum() and (lower.mask | res.mask == lower.mask).all()
    assert any("scratch_threshold 0.2 (default 0.4)" in n for n in lower.notes)


# -- strength --------------------------------------------------------------------------------------


def test_strength_zero_returns_the_processed_input(restorer, photo):
    res = restorer.restore(photo, faces=False, strength=0)
    assert np.array_equal(np.asarray(res.image), np.asarray(to_size(res.processed_input, photo.size)))
    assert res.notes == ["Adjusted: strength 0 (default 1)."]


def test_strength_blends_linearly(restorer, photo):
    full = restorer.restore(photo, faces=False)
    p = np.asarray(full.processed_input).astype(np.float64)
    g = np.asarray(full.global_image).astype(np.float64)
    assert np.abs(g - p).max() > 20  # the two ends differ enough for the test to mean something
    for s in (0.25, 0.5, 0.8):
        mixed = np.asarray(adjust.compose(full.processed_input, full.global_image, [], strength=s)).astype(np.float64)
        assert np.abs(mixed - (p + s * (g - p))).max() <= 0.5
        res = restorer.restore(photo, faces=False, strength=s)
        want = adjust.compose(full.processed_input, full.global_image, [], strength=s, size=photo.size)
        assert np.array_equal(np.asarray(res.image), np.asarray(want))
        assert np.array_equal(np.asarray(res.global_image), np.asarray(full.global_image))  # networks unchanged


def test_strength_zero_still_enhances_faces(face_restorer, face_photo, face_default):
    res = face_default.reblend(strength=0)
    plain = to_size(face_default.processed_input, face_photo.size)
    assert not np.array_equal(np.asarray(res.image), np.asarray(plain))
    assert np.array_equal(np.asarray(res.reblend(face_strength=0).image), np.asarray(plain))


# -- face_strength -------------------------------------------------------------------------------


def test_face_strength_scales_each_blending_mask(face_default):
    base = np.asarray(face_default.global_image)
    faces = [(f.transform, f.enhanced) for f in face_default.faces]
    full: list[warpback.PasteDebug] = []
    half: list[warpback.PasteDebug] = []
    warpback.paste_faces(base, faces, debug=full)
    warpback.paste_faces(base, faces, debug=half, face_strength=0.5)
    for a, b in zip(full, half, strict=True):
        assert a.alpha.max() > 0.9
        assert np.array_equal(b.alpha, a.alpha * 0.5)
    none = warpback.paste_faces(base, faces, face_strength=0.0)
    assert np.array_equal(none, base)


def test_reblend_equals_a_fresh_restore(face_restorer, face_photo, face_default):
    """What the web app's sliders do (no network) gives the pixels of a restore with those values."""
    fresh = face_restorer.restore(face_photo, faces=True, max_faces=2, strength=0.6, face_strength=0.3)
    again = face_default.reblend(strength=0.6, face_strength=0.3)
    assert np.array_equal(np.asarray(fresh.image), np.asarray(again.image))
    assert fresh.notes == again.notes and any("face_strength 0.3 (default 1)" in n for n in again.notes)
    back = again.reblend(strength=1, face_strength=1)
    assert np.array_equal(np.asarray(back.image), np.asarray(face_default.image))
    assert back.notes == face_default.notes


# -- mask_grow -------------------------------------------------------------------------------------


@pytest.mark.parametrize("r", [1, 2, 5])
def test_grow_mask_matches_a_reference_dilation(r):
    rng = np.random.default_rng(r)
    mask = rng.random((23, 31)) > 0.97
    mask[0, 0] = mask[-1, 5] = True  # edges and corners
    assert np.array_equal(adjust.grow_mask(mask, r), reference_dilation(mask, r))
    assert np.array_equal(adjust.grow_mask(mask, 0), mask)
    assert not adjust.grow_mask(np.zeros((5, 5), bool), 3).any()


def test_mask_grow_dilates_the_given_mask_at_the_processing_size(restorer, photo):
    mask = np.zeros((75, 100), np.uint8)
    mask[30:33, 10:90] = 255
    plain = restorer.restore(photo, mask=mask, faces=False)
    grown = restorer.restore(photo, mask=mask, faces=False, mask_grow=3)
    assert np.array_equal(grown.mask, reference_dilation(plain.mask, 3))
    assert not np.array_equal(np.asarray(grown.image), np.asarray(plain.image))
    assert grown.notes == ["Adjusted: mask_grow 3 (default 0)."]
    auto = restorer.detect_scratches(photo, mask_grow=2)
    assert auto.sum() >= restorer.detect_scratches(photo).sum()


# -- bad values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("strength", 1.5, "strength must be between 0 and 1"),
        ("strength", -0.1, "strength must be between 0 and 1"),
        ("strength", math.nan, "strength must be between 0 and 1"),
        ("strength", "half", "strength must be a number between 0 and 1"),
        ("face_strength", 2, "face_strength must be between 0 and 1"),
        ("scratch_threshold", 1.2, "scratch_threshold must be between 0 and 1"),
        ("mask_grow", -1, "mask_grow must be a whole number of pixels from 0 to 64"),
        ("mask_grow", 2.5, "mask_grow must be a whole number of pixels from 0 to 64"),
        ("mask_grow", 65, "mask_grow must be a whole number of pixels from 0 to 64"),
    ],
)
def test_bad_values_are_refused_before_any_work(tmp_path, photo, option, value, message):
    empty = Restorer(device="cpu", weights_dir=tmp_path)  # no weights: the check must come first
    with pytest.raises(InputError, match=message):
        empty.restore(photo, **{option: value})
    if option in ("scratch_threshold", "mask_grow"):
        with pytest.raises(InputError, match=message):
            empty.detect_scratches(photo, **{option: value})


def test_the_default_threshold_is_written_once_per_dependency_set():
    """adjust (no torch) and bridge (stdlib only) repeat the official threshold; they must agree."""
    from oldphoto import bridge

    assert adjust.SCRATCH_THRESHOLD == detect.THRESHOLD == bridge.SCRATCH_THRESHOLD == adjust.Controls().scratch_threshold
