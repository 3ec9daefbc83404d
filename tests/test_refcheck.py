"""The Global stage reproduces the official golden outputs (refcheck on the public set)."""

from oldphoto.refcheck import run_dir

from .conftest import require_reference


def test_refcheck_global_golden_set_passes():
    golden = require_reference("global", "golden")
    lines: list[str] = []
    results = run_dir(golden, report=lines.append)
    failed = [line for r, line in zip(results, lines) if not r.passed]
    assert not failed, "\n".join(failed)
    ids = {r.case_id for r in results}
    # every kind of case was really run: networks, detection, the three restoration modes, weights
    for prefix in ("weights:", "det_unet", "chain_scratch", "chain_hr", "detect_full_size", "quality__", "scratch__", "hr__"):
        assert any(i.startswith(prefix) for i in ids), prefix
