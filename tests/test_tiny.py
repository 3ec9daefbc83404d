"""Tiny photos: restored when every side reaches the mode's minimum, refused with that minimum named
otherwise (library, CLI, web API); never a traceback. The GIMP plug-in's case is in tests/gimp/."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from oldphoto import Restorer
from oldphoto.errors import InputError
from oldphoto.stages.resize import min_input_side

SIZES = [(1, 1), (1, 40), (40, 1), (3, 500), (7, 7), (15, 15), (24, 30)]  # W x H
MODES = {"quality": {}, "scratch": {"scratches": "auto"}, "hr": {"scratches": "auto", "hr": True}}


def tiny(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 7 % 256, yy * 5 % 256, (xx + yy) * 3 % 256], axis=2).astype(np.uint8)


@pytest.fixture(scope="module")
def restorer(seeded_weights_dir) -> Restorer:
    return Restorer(device="cpu", weights_dir=seeded_weights_dir)


def test_minimum_sides():
    """6 px (round-to-4 gives 8), 9 px (round-to-16 gives 16), 24 px (HR's patch attention needs 32)."""
    assert [min_input_side(m) for m in MODES] == [6, 9, 24]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", list(MODES))
def test_tiny_photo_restored_or_refused_with_the_minimum(restorer, mode, size):
    need = min_input_side(mode)
    kwargs = dict(MODES[mode])
    if mode == "hr":  # a small user mask: the seeded detector marks every pixel of a tiny photo
        mask = np.zeros(size[::-1], bool)
        mask[: size[1] // 3, : size[0] // 3] = True
        kwargs = {"mask": mask, "hr": True}
    faces = mode == "quality" and size == (7, 7)  # the face stage must cope with a tiny photo too
    if min(size) < need:
        with pytest.raises(InputError) as err:
            restorer.restore(tiny(size), faces=faces, **kwargs)
        msg = str(err.value)
        assert f"{size[0]}x{size[1]} px, too small" in msg and f"at least {need} px" in msg, msg
    else:
        res = restorer.restore(tiny(size), faces=faces, **kwargs)
        assert res.image.size == size and res.image.mode == "RGB"
        assert min(res.processed_input.size) >= {"quality": 8, "scratch": 16, "hr": 32}[mode]


def test_detect_scratches_refuses_too_small(restorer):
    with pytest.raises(InputError, match="at least 9 px"):
        restorer.detect_scratches(tiny((8, 100)))
    assert restorer.detect_scratches(tiny((9, 20))).shape == (20, 9)


def test_cli_reports_tiny_photos_on_one_line(tmp_path, seeded_weights_dir):
    for size in ((1, 1), (3, 500), (15, 15)):
        Image.fromarray(tiny(size)).save(tmp_path / f"t{size[0]}x{size[1]}.png")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "oldphoto.cli", "restore", str(tmp_path / "t1x1.png"), str(tmp_path / "t3x500.png"),
         str(tmp_path / "t15x15.png"), "-o", str(out), "--scratches", "auto", "--no-faces",
         "--weights-dir", str(seeded_weights_dir), "--device", "cpu", "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("too small for scratch repair" in e for e in errors), r.stderr
    assert "t1x1.png is 1x1 px" in errors[0] and "t3x500.png is 3x500 px" in errors[1]
    assert sorted(p.name for p in out.iterdir()) == ["t15x15.png"]  # nothing half-written for the others
    with Image.open(out / "t15x15.png") as im:
        assert im.size == (15, 15)


def test_web_api_says_the_photo_is_too_small(seeded_weights_dir, tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    from gradio_client.exceptions import AppError

    from tests.web_helpers import serve

    path = tmp_path / "stamp.png"
    Image.fromarray(tiny((3, 500))).save(path)
    with serve(seeded_weights_dir, max_side=160) as url:
        client = gradio_client.Client(url, verbose=False)
        with pytest.raises(AppError) as err:
            client.predict(photo=gradio_client.handle_file(str(path)), scratches="none", faces=False,
                           api_name="/restore")
    msg = str(err.value)
    assert "too small" in msg and "at least 6 px" in msg and "Traceback" not in msg, msg
