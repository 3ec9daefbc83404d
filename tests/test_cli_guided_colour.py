"""CLI and batch with a reference photo and with colour points (issue 24), seeded weights, in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from oldphoto.batch import manifest
from oldphoto.cli import main
from oldphoto.stages import guided

GUIDED = ["exemplar_vgg19", "exemplar_nonlocal", "exemplar_colornet", "siggraph17"]


@pytest.fixture(scope="module")
def wdir(guided_weights_dir):
    return guided_weights_dir


@pytest.fixture(autouse=True)
def small(monkeypatch):
    monkeypatch.setattr(guided, "PROCESS_PIXELS", 64 * 128)


def _img(path, w=96, h=64, colour=False, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, (h, w, 3 if colour else 1), dtype=np.uint8)
    a = np.repeat(a, 3, axis=2) if not colour else a
    Image.fromarray(a, "RGB").save(path)
    return path


def _run(args, wdir):
    return main([*args, "--weights-dir", str(wdir), "--no-faces", "-q"])


def test_restore_with_points_and_a_reference(tmp_path, wdir, capsys):
    photo = _img(tmp_path / "p.png")
    (tmp_path / "pts.json").write_text(json.dumps([[5, 5, "#00ff00"], {"x": 50, "y": 30, "color": "#123456"}]))
    assert _run(["restore", str(photo), "-o", str(tmp_path / "o1"), "--colorize", "points", "--hint", "10,12,#FF0000",
                 "--hints", str(tmp_path / "pts.json")], wdir) == 0
    assert Image.open(tmp_path / "o1" / "p.png").size == (96, 64)
    ref = _img(tmp_path / "ref.jpg", 120, 80, colour=True, seed=2)
    assert _run(["restore", str(photo), "-o", str(tmp_path / "o2"), "--colorize", "reference", "--reference",
                 str(ref)], wdir) == 0
    out = np.asarray(Image.open(tmp_path / "o2" / "p.png")).astype(int)
    assert np.abs(out[..., 0] - out[..., 2]).mean() > 1  # coloured


@pytest.mark.parametrize(("extra", "words"), [
    (["--colorize", "points", "--hint", "10;12;red"], "--hint '10;12;red': write it as X,Y,#RRGGBB"),
    (["--colorize", "points", "--hints", "HINTS"], "not valid JSON"),
    (["--colorize", "points", "--hints", "MISSING"], "file not found"),
    (["--colorize", "reference"], "--colorize reference needs --reference"),
    (["--reference", "p.png"], "--reference is only used with --colorize reference"),
    (["--hint", "1,1,#000000"], "only used with --colorize points"),
])
def test_bad_colour_options_stop_before_any_photo(tmp_path, wdir, capsys, extra, words):
    photo = _img(tmp_path / "p.png")
    (tmp_path / "bad.json").write_text("[[1, 2, '#ff0000']")
    extra = [str(tmp_path / "bad.json") if a == "HINTS" else str(tmp_path / "nope.json") if a == "MISSING"
             else str(photo) if a == "p.png" else a for a in extra]
    assert _run(["restore", str(photo), "-o", str(tmp_path / "o"), *extra], wdir) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_point_outside_fails_that_photo_only_and_writes_nothing(tmp_path, wdir, capsys):
    photo = _img(tmp_path / "p.png")
    assert _run(["restore", str(photo), "-o", str(tmp_path / "o"), "--colorize", "points", "--hint",
                 "200,10,#ff0000"], wdir) == 1
    err = capsys.readouterr().err
    assert "Colour point 1 at (200.0, 10.0) is outside the photo (96x64" in err and "Traceback" not in err
    assert list((tmp_path / "o").iterdir()) == []


def test_batch_reference_map_and_hints_map(tmp_path, wdir, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    _img(src / "a.png")
    _img(src / "sub" / "b.png", seed=3)
    ref = _img(tmp_path / "ref.png", 100, 60, colour=True, seed=4)
    (tmp_path / "refs.json").write_text(json.dumps({"sub/b.png": "ref.png"}))
    rc = main(["batch", str(src), str(tmp_path / "out"), "--weights-dir", str(wdir), "--no-faces", "-q",
               "--colorize", "reference", "--reference", str(tmp_path / "refs.json")])
    assert rc == 1  # a.png is not in the map: an error record for it, b.png done
    recs = {r["input"]: r for r in manifest.read(str(tmp_path / "out" / manifest.NAME))}
    assert recs["sub/b.png"]["status"] == "ok" and recs["a.png"]["status"] == "error"
    assert "not in the reference map" in recs["a.png"]["message"]
    assert (tmp_path / "out" / "sub" / "b.png").is_file() and not (tmp_path / "out" / "a.png").exists()
    # one reference for the whole folder
    assert main(["batch", str(src), str(tmp_path / "out2"), "--weights-dir", str(wdir), "--no-faces", "-q",
                 "--colorize", "reference", "--reference", str(ref)]) == 0
    # points per photo; a photo not in the map gets the model's automatic colour
    (tmp_path / "pts.json").write_text(json.dumps({"a.png": [[3, 4, "#ff8800"]]}))
    assert main(["batch", str(src), str(tmp_path / "out3"), "--weights-dir", str(wdir), "--no-faces", "-q",
                 "--colorize", "points", "--hints", str(tmp_path / "pts.json")]) == 0
    (tmp_path / "badmap.json").write_text(json.dumps({"a.png": "missing.png"}))
    capsys.readouterr()
    assert main(["batch", str(src), str(tmp_path / "out4"), "--weights-dir", str(wdir), "--no-faces", "-q",
                 "--colorize", "reference", "--reference", str(tmp_path / "badmap.json")]) == 2
    assert "the reference of 'a.png', missing.png, is not a file" in capsys.readouterr().err
