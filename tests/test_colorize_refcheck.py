"""DDColor reproduces the official golden outputs (refcheck on the public colour set), and refcheck
fails when a colour output is wrong."""

import json
import shutil

import numpy as np

from oldphoto.refcheck import run_dir

from .conftest import require_reference

# the L model end to end is the slowest part (~10-20 s per case on 2 cores) and adds nothing that
# net_large_64x64_d (the L network, block by block) and the T end-to-end cases do not cover; the
# refcheck command line runs them (README "Colour": How faithful)
SLOW = {"e2e_large_s512_old_d_120x166", "e2e_large_s256_old_a_109x164"}


def test_refcheck_ddcolor_public_set_passes():
    golden = require_reference("colorize", "ddcolor", "golden")
    index = json.loads((golden / "index.json").read_text())
    wanted = [c["id"] for c in index["cases"] if c["id"] not in SLOW]
    lines: list[str] = []
    results = run_dir(golden, only=wanted, report=lines.append)
    failed = [line for r, line in zip(results, lines) if not r.passed]
    assert not failed, "\n".join(failed)
    ids = {r.case_id for r in results}
    assert {"weights:weights_check_seed36.json", "net_tiny_32x64_b", "net_large_64x64_d"} <= ids
    assert sum(i.startswith("e2e_") for i in ids) == len(wanted) - 2
    e2e = next(r for r in results if r.case_id == "e2e_tiny_s256_old_b_122x170")
    assert {c.name for c in e2e.checks if not c.absent} >= {"orig_L", "net_input", "ab_net", "ab_up", "output_png"}


def test_refcheck_ddcolor_networks_with_direct_convolutions():
    """The network cases also hold with oneDNN's direct 3x3 convolutions (``--exact-convs``), not only
    with the Winograd ones the CPU pipeline uses for the pixel decoder."""
    golden = require_reference("colorize", "ddcolor", "golden")
    index = json.loads((golden / "index.json").read_text())
    nets = [c["id"] for c in index["cases"] if c.get("kind") == "network"]
    assert nets
    lines: list[str] = []
    results = run_dir(golden, only=nets, report=lines.append, exact_convs=True)
    assert all(r.passed for r in results), "\n".join(lines)


def test_refcheck_ddcolor_fails_on_a_wrong_output(tmp_path):
    golden = require_reference("colorize", "ddcolor", "golden")
    index = json.loads((golden / "index.json").read_text())
    case = next(c for c in index["cases"] if c["id"] == "e2e_tiny_s64_tiny_d_5x3")
    rels = [case["inputs"]["photo"], *case["outputs"].values(), *case["intermediates"].values()]
    for rel in rels:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(golden / rel, tmp_path / rel)
    index["cases"] = [case]
    (tmp_path / "index.json").write_text(json.dumps(index))
    assert all(r.passed for r in run_dir(tmp_path, report=lambda s: None))
    ab = np.load(tmp_path / case["intermediates"]["ab_net"])
    ab[0, 1, 3, 4] += 0.01
    np.save(tmp_path / case["intermediates"]["ab_net"], ab)
    (res,) = run_dir(tmp_path, report=lambda s: None)
    assert not res.passed and any(c.name == "ab_net" and not c.passed for c in res.checks)
