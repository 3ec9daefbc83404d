"""``oldphoto restore``: one output per good input, one clear line per bad one, non-zero exit."""

from pathlib import Path

import numpy as np
from PIL import Image

from oldphoto.cli import main

from .conftest import require_reference


def test_folder_with_a_corrupt_file(tmp_path, seeded_weights_dir, capsys):
    src = require_reference("test_images", "old")
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("a.png", "h.png"):
        with Image.open(src / name) as im:
            im.thumbnail((72, 72))
            im.save(inp / name.replace("h.png", "h.jpeg"))
    (inp / "broken.png").write_bytes(b"\x89PNG garbage")
    out = tmp_path / "out"
    rc = main(["restore", str(inp), "-o", str(out), "--weights-dir", str(seeded_weights_dir), "--no-faces", "-q",
               "--scratches", "auto", "--save-mask"])
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_mask.png", "h.png", "h_mask.png"]
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "broken.png" in lines[0] and "Traceback" not in err
    with Image.open(out / "h.png") as im, Image.open(inp / "h.jpeg") as orig:
        assert im.size == orig.size


def test_mask_option_and_missing_input(tmp_path, seeded_weights_dir, capsys):
    img = tmp_path / "p.png"
    Image.fromarray(np.full((40, 48, 3), 120, np.uint8)).save(img)
    mask = tmp_path / "m.png"
    m = np.zeros((40, 48), np.uint8)
    m[10:12] = 255
    Image.fromarray(m).save(mask)
    rc = main(["restore", str(img), "-o", str(tmp_path / "o"), "--mask", str(mask), "--weights-dir",
               str(seeded_weights_dir), "--no-faces", "-q"])
    assert rc == 0 and (tmp_path / "o" / "p.png").exists()
    rc = main(["restore", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o2"), "-q"])
    assert rc == 1 and "file not found" in capsys.readouterr().err


def test_exact_convs_and_half_flags(tmp_path, seeded_weights_dir, capsys):
    """--exact-convs (direct convolutions) and the default (Winograd on CPU) agree to a level or so;
    --half on the CPU is refused with a one-line reason and writes nothing."""
    src = require_reference("test_images", "old", "a.png")
    with Image.open(src) as im:
        im.convert("RGB").resize((96, 72)).save(tmp_path / "p.png")
    base = ["restore", str(tmp_path / "p.png"), "--weights-dir", str(seeded_weights_dir), "--no-faces", "-q",
            "--device", "cpu"]
    assert main([*base, "-o", str(tmp_path / "fast")]) == 0
    assert main([*base, "-o", str(tmp_path / "exact"), "--exact-convs"]) == 0
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "half"), "--half"]) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "Traceback" not in err
    assert not (tmp_path / "half" / "p.png").exists()
    with Image.open(tmp_path / "fast" / "p.png") as a, Image.open(tmp_path / "exact" / "p.png") as b:
        fast, exact = np.asarray(a, np.int16), np.asarray(b, np.int16)
    assert fast.shape == exact.shape == (72, 96, 3)
    assert np.abs(fast - exact).max() <= 2


def test_adjustment_options(tmp_path, seeded_weights_dir, capsys):
    """--strength 0 gives the input back (no faces); a bad value is one line naming the range and
    writes nothing."""
    img = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(img)
    base = ["restore", str(img), "--weights-dir", str(seeded_weights_dir), "--no-faces", "-q"]
    assert main([*base, "-o", str(tmp_path / "o"), "--strength", "0", "--scratches", "auto",
                 "--scratch-threshold", "0.3", "--mask-grow", "2", "--face-strength", "0.5"]) == 0
    with Image.open(tmp_path / "o" / "p.png") as out, Image.open(img) as orig:
        assert np.array_equal(np.asarray(out), np.asarray(orig))  # 48x32: multiples of 16, no resize
    err = capsys.readouterr().err
    assert "Adjusted: strength 0 (default 1), face_strength 0.5 (default 1), scratch_threshold 0.3" in err
    assert main([*base, "-o", str(tmp_path / "bad"), "--strength", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "strength must be between 0 and 1 (got 1.5)" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


def test_photo_loop_never_leaves_a_half_written_output(tmp_path, capsys):
    """The loop restore and colorize share: a failing save keeps the old file and removes the temp file;
    a failing photo is one error line and the next photo still gets written."""
    from types import SimpleNamespace

    from oldphoto.cli import photo_loop
    from oldphoto.errors import InputError

    out = tmp_path / "a.png"
    out.write_bytes(b"earlier result")

    class Exploding:
        def save(self, path, format=None):
            Path(path).write_bytes(b"half")
            raise OSError("disk full")

    try:
        photo_loop.save_png(Exploding(), out)
    except OSError:
        pass
    else:
        raise AssertionError("the save error must reach the caller")
    assert out.read_bytes() == b"earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]

    good = Image.new("RGB", (4, 3), (10, 20, 30))

    def run_one(path, progress):
        progress(0.5, "half way")
        if path.name == "bad.jpg":
            raise InputError("cannot read this file")
        return SimpleNamespace(image=good, notes=["a note"])

    outdir = tmp_path / "out"
    outdir.mkdir()
    files = [tmp_path / "bad.jpg", tmp_path / "x.jpeg", tmp_path / "sub" / "x.png"]
    failed = photo_loop.process_each(files, outdir, run_one, quiet=True, keep_alpha=False, oom_hint="-")
    assert failed == 1
    assert sorted(p.name for p in outdir.iterdir()) == ["x.png", "x_2.png"]
    err = capsys.readouterr().err
    assert f"error: {files[0]}: cannot read this file" in err
    assert err.count("note: ") == 2
    assert photo_loop.exit_status(failed, 3) == 1 and "1 of 3 input(s) failed" in capsys.readouterr().err

    (outdir / "x.png").unlink()
    (outdir / "x.png").mkdir()  # the output path cannot be written: that photo fails, the run goes on
    failed = photo_loop.process_each(files[1:], outdir, run_one, quiet=True, keep_alpha=False, oom_hint="-")
    assert failed == 1
    err = capsys.readouterr().err
    assert f"error: {files[1]}: cannot write {outdir / 'x.png'}" in err and "Traceback" not in err
    assert sorted(p.name for p in outdir.iterdir()) == ["x.png", "x_2.png"]
