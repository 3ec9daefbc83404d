"""Every resize of the pipeline gives Pillow 13.0.0's pixels, whatever Pillow is installed.

The expected outputs were made once with Pillow 13.0.0's own ``Image.resize`` (tests/data/
make_resize_fixtures.py). On Pillow <= 12 a plain ``Image.resize`` differs from them wherever
Pillow 13 runs the vertical pass first; ``oldphoto.stages.resize.resize`` must not.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oldphoto.stages import detect, restore
from oldphoto.stages import resize as rs

DATA = Path(__file__).resolve().parent / "data"
spec = importlib.util.spec_from_file_location("make_resize_fixtures", DATA / "make_resize_fixtures.py")
fx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fx)  # type: ignore[union-attr]
EXPECTED = np.load(DATA / "resize_pillow13.npz")

CASES = [
    (mode, name, w, h, ow, oh, None)
    for (w, h, ow, oh, _why) in fx.SIZES
    for mode in fx.MODES
    for name in fx.FILTERS
] + [("L", "bilinear", w, h, ow, oh, box) for (w, h, ow, oh, box) in fx.BOX_CASES]


def _check(got: np.ndarray, k: str) -> None:
    if f"full:{k}" in EXPECTED.files:
        want = EXPECTED[f"full:{k}"]
        assert got.shape == want.shape
        diff = got.astype(int) - want
        assert not diff.any(), f"{k}: {np.count_nonzero(diff)} values differ (max {np.abs(diff).max()})"
    corner = EXPECTED[f"corner:{k}"] if f"corner:{k}" in EXPECTED.files else None
    if corner is not None:
        part = got[: corner.shape[0], : corner.shape[1]].astype(int) - corner
        assert not part.any(), f"{k}: {np.count_nonzero(part)} of the corner's values differ"
    assert np.array_equal(fx.digest(got), EXPECTED[f"sha256:{k}"]), f"{k}: output differs from Pillow 13.0.0's"


@pytest.mark.parametrize("case", CASES, ids=lambda c: fx.key(*c[:6], c[6]))
def test_resize_matches_pillow13(case):
    mode, name, w, h, ow, oh, box = case
    img = Image.fromarray(fx.make_input(w, h, mode), mode)
    got = rs.resize(img, (ow, oh), fx.FILTERS[name], box=box)
    assert got.mode == mode and got.size == (ow, oh)
    _check(np.asarray(got), fx.key(mode, name, w, h, ow, oh, box))


def test_the_fixtures_catch_the_pass_order():
    """The data can fail: running the passes in the other order gives other pixels for an issue case."""
    img = Image.fromarray(fx.make_input(190, 258, "RGB"), "RGB")
    other = img.resize((190, 256), Image.BICUBIC).resize((192, 256), Image.BICUBIC)  # horizontal last = vertical first
    wrong = img.resize((192, 258), Image.BICUBIC).resize((192, 256), Image.BICUBIC)  # horizontal first
    assert not np.array_equal(np.asarray(other), np.asarray(wrong))
    k = fx.key("RGB", "bicubic", 190, 258, 192, 256)
    assert np.array_equal(fx.digest(np.asarray(other)), EXPECTED[f"sha256:{k}"])
    assert not np.array_equal(fx.digest(np.asarray(wrong)), EXPECTED[f"sha256:{k}"])


@pytest.mark.parametrize(
    ("src", "dst", "vertical"),
    [((190, 258), (192, 256), True), ((264, 369), (256, 352), True), ((100, 120), (92, 104), False),
     ((100, 121), (92, 104), True), ((298, 298), (296, 296), False), ((210, 318), (208, 320), False),
     ((97, 101), (97, 64), True), ((97, 101), (64, 101), False)],
)
def test_pass_order_rule(src, dst, vertical):
    assert rs.vertical_first(src, dst) is vertical


def test_pipeline_resizes_use_the_pinned_order():
    """quality's round-to-4, detection's full_size / scale_256: Pillow 13's pixels on an issue case."""
    img = Image.fromarray(fx.make_input(190, 258, "RGB"), "RGB")
    q = restore.resize_quality(img)  # 190x258 -> 192x256 (BILINEAR)
    _check(np.asarray(q), fx.key("RGB", "bilinear", 190, 258, 192, 256))
    f = detect.resize_full_size(img)  # 190x258 -> 192x256 (BICUBIC)
    _check(np.asarray(f), fx.key("RGB", "bicubic", 190, 258, 192, 256))
    img = Image.fromarray(fx.make_input(264, 369, "RGB"), "RGB")
    s = detect.resize_scale_256(img)
    assert s.size == (256, 352)
    _check(np.asarray(s), fx.key("RGB", "bicubic", 264, 369, 256, 352))
