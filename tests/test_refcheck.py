"""oldphoto reproduces the official golden outputs (refcheck on the public sets), and refcheck fails
when an output is wrong."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from oldphoto.refcheck import run_dir

from .conftest import require_reference

EXPECTED_KINDS = {
    "global": ("weights:", "det_unet", "chain_scratch", "chain_hr", "detect_full_size", "quality__", "scratch__", "hr__"),
    "face": ("weights:", "gen256_", "gen512_", "warpback256_", "warpback512_", "e2e256_", "e2e512_"),
}


NO_WINOGRAD = ("det_unet", "detect_", "warpback")
"""Cases whose networks have no Winograd part (the detection U-Net) or that run no network: the direct
run would repeat the default run's work exactly, so it leaves them out (the slowest test, issue 22)."""


@pytest.mark.timeout(1800)  # whole golden sets: ~8 min each on a 2-core machine at load 10
@pytest.mark.parametrize("exact_convs", [False, True], ids=["winograd", "direct"])
@pytest.mark.parametrize("part", ["global", "face"])
def test_refcheck_golden_set_passes(part, exact_convs):
    """Both convolution paths: the CPU default (Winograd where it is safe) and oneDNN's direct one."""
    from oldphoto.nets.winograd import FAST_PARTS

    assert "detection_unet" not in FAST_PARTS  # else NO_WINOGRAD is wrong
    golden = require_reference(part, "golden")
    index = json.loads((golden / "index.json").read_text())
    only = [c["id"] for c in index["cases"] if not c["id"].startswith(NO_WINOGRAD)] if exact_convs else None
    lines: list[str] = []
    results = run_dir(golden, report=lines.append, exact_convs=exact_convs, only=only)
    failed = [line for r, line in zip(results, lines) if not r.passed]
    assert not failed, "\n".join(failed)
    ids = {r.case_id for r in results}
    for prefix in EXPECTED_KINDS[part]:  # every kind of case was really run
        if not (exact_convs and prefix.startswith(NO_WINOGRAD)):
            assert any(i.startswith(prefix) for i in ids), prefix


def test_refcheck_cli_fails_on_a_wrong_output(tmp_path):
    golden = require_reference("global", "golden")
    index = json.loads((golden / "index.json").read_text())
    case = next(c for c in index["cases"] if c["id"] == "det_unet_48x80")
    (tmp_path / "net").mkdir()
    for rel in (case["inputs"]["x"], case["outputs"]["logits"]):
        shutil.copy(golden / rel, tmp_path / rel)
    index["cases"] = [case]
    (tmp_path / "index.json").write_text(json.dumps(index))
    cmd = [sys.executable, "-m", "oldphoto.refcheck", str(tmp_path)]
    ok = subprocess.run(cmd, capture_output=True, text=True)
    assert ok.returncode == 0 and "PASS  det_unet_48x80" in ok.stdout, ok.stdout + ok.stderr
    logits = np.load(tmp_path / case["outputs"]["logits"])
    logits[0, 0, 5, 7] += 0.01
    np.save(tmp_path / case["outputs"]["logits"], logits)
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 1 and "FAIL  det_unet_48x80" in bad.stdout, bad.stdout


def _copy_case(golden, case, tmp_path, files):
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(golden / rel, tmp_path / rel)


def test_refcheck_runs_a_set_without_intermediates(tmp_path):
    """Another run of the official code may omit intermediates: compare what is there, name what is not,
    and fail only a case that holds none of its defining outputs."""
    golden = require_reference("global", "golden")
    index = json.loads((golden / "index.json").read_text())
    by_id = {c["id"]: c for c in index["cases"]}
    det = json.loads(json.dumps(by_id["detect_full_size__old_a_210x318"]))
    qual = json.loads(json.dumps(by_id["quality__old_a_210x318"]))
    for case, drop in ((det, ("unet_input", "resized_input_png")), (qual, ("input_image_png", "origin_png"))):
        for k in drop:
            del case["outputs"][k]
        _copy_case(golden, case, tmp_path, [*case["inputs"].values(), *case["outputs"].values()])
    empty = {**json.loads(json.dumps(qual)), "id": "quality__no_outputs", "outputs": {}}
    index["cases"] = [det, qual, empty]
    (tmp_path / "index.json").write_text(json.dumps(index))
    r = subprocess.run([sys.executable, "-m", "oldphoto.refcheck", str(tmp_path)], capture_output=True, text=True)
    out = r.stdout
    assert "Traceback" not in out + r.stderr and "KeyError" not in out, out + r.stderr
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))}
    assert lines["detect_full_size__old_a_210x318"].startswith("PASS"), out
    assert "not in this golden set: resized_input_png, unet_input" in lines["detect_full_size__old_a_210x318"]
    assert lines["quality__old_a_210x318"].startswith("PASS"), out
    assert "not in this golden set: input_image_png, origin_png" in lines["quality__old_a_210x318"]
    assert lines["quality__no_outputs"].startswith("FAIL"), out
    assert "none of its defining outputs (raw_output / restored_image_png)" in lines["quality__no_outputs"]
    assert r.returncode == 1 and "2 passed, 1 failed" in out


def test_refcheck_still_fails_a_wrong_output_when_intermediates_are_missing(tmp_path):
    golden = require_reference("global", "golden")
    index = json.loads((golden / "index.json").read_text())
    case = next(c for c in index["cases"] if c["id"] == "quality__old_a_210x318")
    for k in ("input_image_png", "origin_png", "raw_output"):
        del case["outputs"][k]
    _copy_case(golden, case, tmp_path, [*case["inputs"].values(), *case["outputs"].values()])
    png = tmp_path / case["outputs"]["restored_image_png"]
    from PIL import Image

    arr = np.asarray(Image.open(png).convert("RGB")).copy()
    arr[:40] = 255 - arr[:40]
    Image.fromarray(arr).save(png)
    index["cases"] = [case]
    (tmp_path / "index.json").write_text(json.dumps(index))
    lines: list[str] = []
    results = run_dir(tmp_path, report=lines.append)
    assert not results[0].passed and "restored_image_png" in lines[0], lines


def test_refcheck_face_generator_case_without_activations(tmp_path):
    golden = require_reference("face", "golden")
    index = json.loads((golden / "index.json").read_text())
    case = next(c for c in index["cases"] if c["id"] == "gen256_random_A")
    del case["outputs"]["activations_first_channels"]
    del case["inputs"]["input"]
    _copy_case(golden, case, tmp_path, [case["inputs"]["input_u8"]["file"], case["outputs"]["output"]["file"],
                                        case["outputs"]["output_u8"]["file"]])
    index["cases"] = [case]
    (tmp_path / "index.json").write_text(json.dumps(index))
    lines: list[str] = []
    results = run_dir(tmp_path, report=lines.append)
    assert results[0].passed, lines
    assert "not in this golden set: activations_first_channels" in lines[0]
