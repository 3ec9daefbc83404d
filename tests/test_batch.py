"""``oldphoto batch`` on one machine: mirrored tree, manifest, resume after a kill, --force, --retry-errors."""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from oldphoto.batch import manifest
from oldphoto.cli import main
from oldphoto.errors import InputError

from .batch_helpers import (
    ARGS,
    BROKEN,
    GOOD,
    cli_env,
    comparable,
    decoded_ok,
    expected_outputs,
    one_torch_thread,
    pngs,
    records,
    snapshot,
    start_cli,
    wait_for_lines,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """In-process runs compare bytes with the 1-thread reference and CLI subprocesses."""
    with one_torch_thread():
        yield


def test_full_run_mirrors_the_tree_and_reports_each_broken_file(batch_tree, batch_reference, seeded_weights_dir,
                                                                capsys):
    out = batch_reference
    assert set(pngs(out)) == expected_outputs()
    for rel in GOOD:  # each output has its photo's size
        out_rel = rel.rsplit(".", 1)[0] + ".png" if rel != "x.png" else "x_2.png"
        with Image.open(batch_tree / rel) as a, Image.open(out / out_rel) as b:
            assert a.size == b.size and b.mode == "RGB"
    recs = records(out)
    assert len(recs) == 30 and {r["input"] for r in recs} == set(GOOD) | set(BROKEN)
    assert {r["input"] for r in recs if r["status"] == "error"} == set(BROKEN)
    for r in recs:
        assert set(r) == set(manifest.FIELDS) and r["size"] == (batch_tree / r["input"]).stat().st_size
        assert r["options"]["faces"] is False and r["options"]["scratches"] == "none"
        assert set(r["weights"]) == {"vae_a_quality", "vae_b_quality", "mapping_quality"}
    assert all(r["input"] in r["message"] for r in recs if r["status"] == "error")

    # a second run leaves everything alone, and says that three photos are still failing
    before_in, before_out = snapshot(batch_tree), {p: (out / p).stat().st_mtime_ns for p in pngs(out)}
    capsys.readouterr()
    rc = main(["batch", str(batch_tree), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS])
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.out.startswith("0 restored, 30 skipped, 0 failed (3 of the skipped failed in an earlier run")
    assert {p: (out / p).stat().st_mtime_ns for p in pngs(out)} == before_out
    assert snapshot(batch_tree) == before_in  # the input tree is never touched
    later = records(out)[30:]
    assert len(later) == 30 and {r["status"] for r in later} == {"skipped"}


def test_retry_errors_force_and_changed_inputs(tmp_path, batch_reference, seeded_weights_dir, capsys):
    """On a small copy: --retry-errors redoes only the failed photo, a changed photo is redone,
    other options redo everything, --force redoes everything, and the bytes never change."""
    inp, out = tmp_path / "in", tmp_path / "out"
    (inp / "sub").mkdir(parents=True)
    Image.fromarray(np.full((40, 36, 3), 90, np.uint8)).save(inp / "one.png")
    Image.fromarray(np.full((32, 48, 3), 160, np.uint8)).save(inp / "sub" / "two.jpg")
    (inp / "sub" / "bad.png").write_bytes(b"nope")
    run = ["batch", str(inp), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS]

    def summary(*extra: str) -> tuple[int, str]:
        capsys.readouterr()
        rc = main([*run, *extra])
        return rc, capsys.readouterr().out.strip()

    assert summary() == (1, "2 restored, 0 skipped, 1 failed")
    first = pngs(out)
    assert set(first) == {"one.png", "sub/two.png"}
    rc, line = summary("--retry-errors")
    assert (rc, line) == (1, "0 restored, 2 skipped, 1 failed")
    Image.fromarray(np.full((40, 36, 3), 120, np.uint8)).save(inp / "sub" / "bad.png")  # the user fixed it
    assert summary() == (0, "1 restored, 2 skipped, 0 failed")
    assert summary("--exact-convs") == (0, "3 restored, 0 skipped, 0 failed")  # other options: other results
    mtimes = {p: (out / p).stat().st_mtime_ns for p in first}
    assert summary("--exact-convs", "--force") == (0, "3 restored, 0 skipped, 0 failed")
    assert all((out / p).stat().st_mtime_ns != mtimes[p] for p in first)
    (out / "one.png").unlink()  # an output deleted by hand is made again
    assert summary("--exact-convs") == (0, "1 restored, 2 skipped, 0 failed")
    assert summary("--exact-convs") == (0, "0 restored, 3 skipped, 0 failed")
    capsys.readouterr()
    assert main([a for a in run if a != "-q"] + ["--exact-convs"]) == 0  # without --quiet: a bar over photos
    err = capsys.readouterr().err
    assert "3/3" in err and "photo" in err


def test_kill_in_the_middle_then_resume(tmp_path, batch_tree, batch_reference, seeded_weights_dir, capsys):
    """SIGKILL after some outputs: every PNG on disk is whole, the manifest reads back, and the rerun
    finishes the rest with the same bytes as an uninterrupted run and one record per photo."""
    out = tmp_path / "out"
    proc = start_cli(str(batch_tree), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS)
    try:
        wait_for_lines(proc, out / manifest.NAME, 10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ref = pngs(batch_reference)
    done = pngs(out)
    assert 5 <= len(done) < len(ref), "the kill came too late to test anything"
    for rel, data in done.items():  # no half-written PNG under a final name
        assert decoded_ok(out / rel) and data == ref[rel]
    first = records(out)
    assert 10 <= len(first) < 30 and len(done) >= sum(r["status"] == "ok" for r in first)
    # a torn last line (a kill inside the write) and a temporary file from a kill inside a PNG write
    with open(out / manifest.NAME, "ab") as f:
        f.write(b'{"input": "1950/p')
    (out / "1950" / ".p9.png.0badf00d.part").parent.mkdir(parents=True, exist_ok=True)
    (out / "1950" / ".p9.png.0badf00d.part").write_bytes(b"\x89PNG half")

    capsys.readouterr()
    rc = main(["batch", str(batch_tree), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS])
    line = capsys.readouterr().out.strip()
    assert rc == 1
    skipped_ok = sum(r["status"] == "ok" for r in first)
    skipped_err = sum(r["status"] == "error" for r in first)
    failed_now = 3 - skipped_err
    assert line.startswith(f"{27 - skipped_ok} restored, {skipped_ok + skipped_err} skipped, {failed_now} failed")
    assert pngs(out) == ref
    assert not list(out.rglob("*.part"))
    recs = records(out)
    assert comparable(manifest.latest_state(recs).values()) == comparable(manifest.latest_state(records(batch_reference)).values())
    settled = [r for r in recs if r["status"] != "skipped"]
    assert len(settled) == 30 and len({r["input"] for r in settled}) == 30  # nothing doubled, nothing missing


def test_interrupt_is_clean_and_resumable(tmp_path, seeded_weights_dir):
    """Ctrl-C (SIGINT) ends the run with a summary and exit status 130, and nothing else in the way."""
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for i in range(6):
        Image.fromarray(np.full((32, 32, 3), 30 * i, np.uint8)).save(inp / f"p{i}.png")
    args = [str(inp), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS]
    proc = start_cli(*args)
    try:
        wait_for_lines(proc, out / manifest.NAME, 1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr and " restored, " in stdout
    assert all(decoded_ok(p) for p in out.glob("*.png"))
    r = subprocess.run([sys.executable, "-m", "oldphoto.cli", "batch", *args], env=cli_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("*.png"))) == 6 and "0 failed" in r.stdout


def test_refuses_overlapping_folders_and_empty_input(tmp_path, seeded_weights_dir, capsys):
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(inp / "p.png")
    before = snapshot(inp)
    for out in (inp / "restored", inp, tmp_path):
        assert main(["batch", str(inp), str(out), "--weights-dir", str(seeded_weights_dir), *ARGS]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "may not be inside" in err and "Traceback" not in err
    assert snapshot(inp) == before
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), str(tmp_path / "o"), "--weights-dir", str(seeded_weights_dir),
                 *ARGS]) == 2
    assert "no image files found" in capsys.readouterr().err


def test_local_engine_never_imports_ray(tmp_path, seeded_weights_dir):
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(inp / "p.png")
    code = (
        "import sys; from oldphoto.cli import main; "
        f"rc = main(['batch', {str(inp)!r}, {str(tmp_path / 'out')!r}, '--weights-dir', {str(seeded_weights_dir)!r}, "
        "'--no-faces', '-q']); "
        "assert rc == 0, rc; print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow')))"
    )
    r = subprocess.run([sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_manifest_torn_tail_and_corruption(tmp_path):
    path = tmp_path / manifest.NAME
    with manifest.Writer(path) as w:
        w.append({"input": "a.png", "status": "ok"})
    path.write_bytes(path.read_bytes() + b'{"input": "b.png", "sta')
    assert [r["input"] for r in manifest.read(path)] == ["a.png"]
    with manifest.Writer(path) as w:  # opening cuts the torn tail, so the next line is whole
        w.append({"input": "c.png", "status": "error"})
    assert [r["input"] for r in manifest.read(path)] == ["a.png", "c.png"]
    path.write_bytes(b'{"input": "a.png", "status": "ok"}\nnot json\n{"input": "c.png", "status": "ok"}\n')
    with pytest.raises(InputError, match="line 2"):
        manifest.read(path)


def test_outputs_are_restore_outputs(tmp_path, batch_tree, batch_reference, seeded_weights_dir):
    """A batch PNG is byte for byte what `oldphoto restore` writes for the same photo and options."""
    rc = main(["restore", str(batch_tree / "1960"), "-o", str(tmp_path), "--weights-dir", str(seeded_weights_dir),
               *ARGS])
    assert rc == 1  # truncated.jpg
    for p in tmp_path.glob("*.png"):
        assert p.read_bytes() == (batch_reference / "1960" / p.name).read_bytes()


