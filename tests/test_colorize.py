"""The colour stage (DDColor): OpenCV pinned against fixtures, strip processing exact, library
semantics of color_strength / reblend / progress / cancel, and the CLI (colorize, restore, batch).

Networks run with seeded DDColor-T weights at the official 512 px; the golden comparison with the
official code is tests/test_colorize_refcheck.py.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from oldphoto.errors import Cancelled, InputError
from oldphoto.stages import colorize as cz

from .conftest import require_reference

DATA = Path(__file__).resolve().parent / "data"


# -- OpenCV: the numbers we rely on ------------------------------------------------------------------
def test_opencv_conversions_match_the_fixtures():
    """RGB->Lab of every 8-bit grey and of 4096 colours, Lab->RGB (out of gamut included) and the
    bilinear resize give OpenCV 5.1.0's values bit for bit (tests/data/make_opencv_fixtures.py)."""
    import cv2

    spec = importlib.util.spec_from_file_location("make_opencv_fixtures", DATA / "make_opencv_fixtures.py")
    fx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fx)  # type: ignore[union-attr]
    want = np.load(DATA / "opencv_lab.npz")
    x = {k: want[k] for k in ("greys", "colours", "lab", "photo")}
    got = fx.outputs(cv2, x)
    for name, arr in got.items():
        ref = want[name]
        assert arr.dtype == ref.dtype and arr.shape == ref.shape, name
        bad = np.count_nonzero(arr != ref)
        assert bad == 0, f"{name}: {bad} values differ from OpenCV {want['opencv_version']} (max {np.abs(arr - ref).max()})"
    # OpenCV's float Lab is not the textbook formula (SPEC §3): its a/b are multiples of 1/64
    assert np.all(got["colours_lab"][:, :, 1:] * 64 == np.round(got["colours_lab"][:, :, 1:] * 64))
    # our own helpers are these very calls
    assert np.array_equal(cz.to_float(x["photo"]), (x["photo"] / 255.0).astype(np.float32))


@pytest.mark.parametrize("src,out", [(256, 164), (256, 166), (256, 122), (512, 3000), (64, 5), (512, 512), (64, 37)])
def test_nearest_indices_are_torch_legacy_nearest(src, out):
    ab = torch.arange(2 * src * src, dtype=torch.float32).reshape(1, 2, src, src)
    want = F.interpolate(ab, size=(out, 7))[0, 0, :, 0].numpy().astype(np.int64) // src
    assert np.array_equal(cz.nearest_indices(src, out), want)


def test_compose_in_strips_is_bit_identical_to_one_pass(monkeypatch):
    import cv2

    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (83, 61, 3), dtype=np.uint8)
    ab = (rng.standard_normal((2, 64, 64)) * 40).astype(np.float32)
    lab = np.concatenate([cv2.cvtColor(cz.to_float(rgb), cv2.COLOR_RGB2Lab)[:, :, :1], cz.upsample_ab(ab, 83, 61)], 2)
    whole = (cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0).round().astype(np.uint8)  # the official order of ops
    monkeypatch.setattr(cz, "STRIP_ROWS", 7)
    ticks: list[float] = []
    assert np.array_equal(cz.compose(rgb, ab, tick=ticks.append), whole)
    assert ticks[-1] == 1.0 and len(ticks) == 12
    assert np.array_equal(cz.lightness(rgb), lab[:, :, 0])
    grey = cz.compose(rgb, ab, color_strength=0.0)
    assert np.array_equal(grey[:, :, 0], grey[:, :, 1]) and np.array_equal(grey[:, :, 1], grey[:, :, 2])


def test_is_grey():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    assert cz.is_grey(Image.fromarray(g, "L"))
    assert cz.is_grey(np.repeat(g[:, :, None], 3, axis=2))
    sepia = np.stack([g * 0.9 + 20, g * 0.75 + 10, g * 0.55], axis=2).clip(0, 255).astype(np.uint8)
    assert cz.is_grey(sepia)
    assert not cz.is_grey(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    colour = require_reference("test_images", "old", "f.png")
    assert not cz.is_grey(colour)


def test_bad_values_are_one_line_errors(color_restorer):
    photo = np.zeros((8, 8, 3), np.uint8)
    for kw, word in (({"colorize_model": "huge"}, "colorize_model"), ({"color_strength": 1.5}, "color_strength"),
                     ({"colorize": "maybe"}, "colorize")):
        with pytest.raises(InputError, match=word) as e:
            color_restorer.colorize(photo, **kw) if "colorize" not in kw else color_restorer.restore(photo, **kw)
        assert "\n" not in str(e.value)


# -- the Restorer ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def color_restorer(color_weights_dir):
    from oldphoto.pipeline import Restorer

    return Restorer(device="cpu", weights_dir=color_weights_dir)


@pytest.fixture(scope="module")
def photo():
    return Image.open(require_reference("colorize", "ddcolor", "golden", "e2e", "inputs", "grey1ch_b_23x37.png"))


@pytest.fixture(scope="module")
def colourised(color_restorer, photo):
    events: list[tuple[float, str]] = []
    res = color_restorer.colorize(photo, colorize_model="tiny", progress=lambda f, m: events.append((f, m)))
    return res, events


def test_colorize_is_the_official_pipeline_with_progress(colourised, photo):
    res, events = colourised
    rgb = np.asarray(photo.convert("RGB"))
    assert res.image.size == photo.size and res.color.model == "tiny" and res.color.ab.shape == (2, 512, 512)
    # the official post-processing of the network's own ab, and real colour
    assert np.array_equal(np.asarray(res.image), cz.compose(rgb, res.color.ab))
    out = np.asarray(res.image).astype(int)
    assert np.abs(out[:, :, 0] - out[:, :, 2]).mean() > 5
    assert not res.notes  # a grey photo: nothing to say
    fracs = [f for f, _ in events]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    assert sum(m.startswith("Colourising (tiny)") for _, m in events) > 20  # moves during the network
    assert "colorize" in res.timings


def test_color_strength_and_reblend(color_restorer, colourised, photo):
    res, _ = colourised
    assert np.array_equal(np.asarray(res.reblend(color_strength=1.0).image), np.asarray(res.image))
    grey = np.asarray(res.reblend(color_strength=0.0).image)
    assert np.array_equal(grey[:, :, 0], grey[:, :, 1]) and np.array_equal(grey[:, :, 1], grey[:, :, 2])
    # the grey photo: its own lightness (OpenCV's Lab round trip moves a level at most)
    assert np.abs(grey[:, :, 0].astype(int) - np.asarray(photo.convert("L")).astype(int)).max() <= 1
    half = res.reblend(color_strength=0.5)
    assert half.controls.color_strength == 0.5 and any("color_strength 0.5" in n for n in half.notes)
    fresh = color_restorer.colorize(photo, colorize_model="tiny", color_strength=0.5)
    assert np.array_equal(np.asarray(half.image), np.asarray(fresh.image))
    assert np.array_equal(np.asarray(half.reblend(color_strength=1.0).image), np.asarray(res.image))
    assert not half.reblend(color_strength=1.0).notes


def test_restore_then_colour_is_the_last_stage(color_restorer, colourised):
    """restore(colorize="auto") = restore() then the colour stage on its result; colour photos get a note."""
    from oldphoto.pipeline import COLOR_REPLACED_NOTE

    colour_photo = Image.open(require_reference("colorize", "ddcolor", "golden", "e2e", "inputs",
                                                "colour_synth_48x40.png"))
    plain = color_restorer.restore(colour_photo, faces=False)
    res = color_restorer.restore(colour_photo, faces=False, colorize="auto", colorize_model="tiny")
    assert np.array_equal(np.asarray(res.uncolored), np.asarray(plain.image))
    assert np.array_equal(np.asarray(res.image), cz.compose(np.asarray(plain.image), res.color.ab))
    assert COLOR_REPLACED_NOTE in res.notes and list(res.timings) == ["restore", "colorize"]
    # strength re-blends keep the predicted colour and say so
    weaker = res.reblend(strength=0.5)
    assert weaker.uncolored is not None and any("predicted for the earlier" in n for n in weaker.notes)
    assert np.array_equal(np.asarray(weaker.reblend(strength=1.0).image), np.asarray(res.image))


def test_cancel_during_colourisation(color_restorer, photo):
    stop = threading.Event()
    seen: list[str] = []

    def progress(frac: float, msg: str) -> None:
        seen.append(msg)
        if msg.startswith("Colourising (") and len(seen) > 5:
            stop.set()

    with pytest.raises(Cancelled):
        color_restorer.colorize(photo, colorize_model="tiny", progress=progress, cancel=stop)
    assert not any("applying colour" in m for m in seen)


# -- the command line -----------------------------------------------------------------------------
def _inputs(tmp: Path) -> Path:
    src = Image.open(require_reference("colorize", "ddcolor", "golden", "e2e", "inputs", "old_d_120x166.png"))
    src = src.convert("RGB").resize((30, 40))
    d = tmp / "in"
    d.mkdir()
    Image.fromarray(np.asarray(src.convert("L")).astype(np.uint16) * 257).save(d / "grey16.png")
    rgba = np.asarray(src.convert("RGBA")).copy()
    rgba[:10, :, 3] = 0
    Image.fromarray(rgba).save(d / "alpha.png")
    rotated = src.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated back by 90 degrees
    rotated.save(d / "exif.jpg", exif=exif.tobytes())
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return d


def test_cli_colorize_bad_inputs(tmp_path, color_weights_dir, capsys):
    from oldphoto.cli import main

    d = _inputs(tmp_path)
    out = tmp_path / "out"
    code = main(["colorize", str(d), "-o", str(out), "--colorize-model", "tiny", "--weights-dir",
                 str(color_weights_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "1 of 4 input(s) failed" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1 and "broken.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "exif.png", "grey16.png"]  # nothing partial
    a = Image.open(out / "alpha.png")
    assert a.mode == "RGBA" and a.size == (30, 40)
    assert np.array_equal(np.asarray(a)[:, :, 3], np.asarray(Image.open(d / "alpha.png"))[:, :, 3])
    assert Image.open(out / "exif.png").size == (30, 40)
    g = np.asarray(Image.open(out / "grey16.png")).astype(int)
    assert g.shape == (40, 30, 3) and np.abs(g[:, :, 0] - g[:, :, 2]).mean() > 3


def test_cli_restore_and_batch_with_colorize(tmp_path, color_weights_dir, capsys):
    from oldphoto.batch import manifest
    from oldphoto.cli import main

    src = tmp_path / "in"
    src.mkdir()
    Image.open(require_reference("colorize", "ddcolor", "golden", "e2e", "inputs", "grey1ch_b_23x37.png")).save(
        src / "p.png")
    common = ["--no-faces", "--colorize", "--colorize-model", "tiny", "--color-strength", "0.5",
              "--weights-dir", str(color_weights_dir), "-q"]
    assert main(["restore", str(src / "p.png"), "-o", str(tmp_path / "r"), *common]) == 0
    restored = np.asarray(Image.open(tmp_path / "r" / "p.png"))
    assert restored.shape == (37, 23, 3) and np.abs(restored[:, :, 0].astype(int) - restored[:, :, 2]).mean() > 2
    assert main(["batch", str(src), str(tmp_path / "b"), *common]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b" / "p.png")), restored)
    (rec,) = [json.loads(line) for line in (tmp_path / "b" / manifest.NAME).read_text().splitlines() if line.strip()]
    assert rec["status"] == "ok" and rec["options"]["colorize"] == "auto"
    assert rec["options"]["colorize_model"] == "tiny" and rec["options"]["color_strength"] == 0.5
    assert "ddcolor_paper_tiny" in rec["weights"]
    bad = main(["restore", str(src / "p.png"), "-o", str(tmp_path / "x"), "--colorize", "--color-strength", "2",
                "--weights-dir", str(color_weights_dir), "-q"])
    assert bad == 2 and "color_strength must be between 0 and 1" in capsys.readouterr().err


def test_memory_model_knows_the_colour_stage():
    from oldphoto import memory

    plain = memory.estimate_peak_bytes(6000, 4000, "quality")
    coloured = memory.estimate_peak_bytes(6000, 4000, "quality", colorize="ddcolor_modelscope")
    assert coloured - plain >= memory.weights_bytes(["ddcolor_modelscope"])  # its 0.9 GB of weights at least
    alone = memory.estimate_peak_bytes(6000, 4000, "colorize", colorize="ddcolor_paper_tiny")
    assert alone < memory.estimate_peak_bytes(6000, 4000, "colorize", colorize="ddcolor_modelscope")
    budget = memory.estimate_peak_bytes(3000, 2000, "colorize", colorize="ddcolor_paper_tiny")
    with pytest.raises(InputError, match=r"it would fit at about \d+x\d+ pixels") as e:
        memory.check_fits(6000, 4000, "colorize", colorize="ddcolor_paper_tiny", available=budget)
    import re

    w, h = map(int, re.search(r"fit at about (\d+)x(\d+)", str(e.value)).groups())
    assert 2800 <= w <= 3000 and memory.estimate_peak_bytes(w, h, "colorize", colorize="ddcolor_paper_tiny") <= budget
