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


@pytest.mark.parametrize("exact_convs", [False, True], ids=["winograd", "direct"])
@pytest.mark.parametrize("part", ["global", "face"])
def test_refcheck_golden_set_passes(part, exact_convs):
    """Both convolution paths: the CPU default (Winograd where it is safe) and oneDNN's direct one."""
    golden = require_reference(part, "golden")
    lines: list[str] = []
    results = run_dir(golden, report=lines.append, exact_convs=exact_convs)
    failed = [line for r, line in zip(results, lines) if not r.passed]
    assert not failed, "\n".join(failed)
    ids = {r.case_id for r in results}
    for prefix in EXPECTED_KINDS[part]:  # every kind of case was really run
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
